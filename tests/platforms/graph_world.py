"""What the worlds of the Graph container fakes (Threads, Instagram) share: the account's
jobs, the containers the fake made, the media's hashes and a fresh fake that knows the account.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from soku.platforms.connector import Job
from tests.media_files import MediaServer
from tests.platforms.connector_world import Site, World, fresh_fake, make_job


@dataclasses.dataclass
class GraphEnv(World):
    """The test's world: the fake and a client like the engine's, the media store, the user."""

    platform: ClassVar[str]
    account: ClassVar[dict[str, Any]]

    media: MediaServer
    folder: Path
    user_id: str

    def media_job(
        self, text: str | None, images: tuple[str, ...], video: str | None, **more: Any
    ) -> Job:
        """`more`: `publishing_since`, or the account's fields this job changes."""
        return make_job(
            self.platform,
            {**self.account, "platform_user_id": self.user_id},
            text=text,
            image_urls=[self.media.url(name) for name in images],
            video_urls=[self.media.url(video)] if video else [],
            **more,
        )

    async def containers(self) -> list[dict[str, Any]]:
        return list((await self.inspect("containers"))["containers"])

    def sha256(self, name: str) -> str:
        return hashlib.sha256((self.folder / name).read_bytes()).hexdigest()


E = TypeVar("E", bound=GraphEnv)


@contextlib.asynccontextmanager
async def fresh_env(
    site: Site[MediaServer], env: type[E], username: str, token: str
) -> AsyncIterator[E]:
    """A fresh fake that knows the account and its token."""
    async with fresh_fake(site.fake) as fake:
        user = await fake.add_user(username=username, access_token=token)
        yield env(fake.http, site.fake, site.media, site.folder, user["id"])
