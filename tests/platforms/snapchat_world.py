"""The Snapchat fake as the connector tests see it: its profile, its media, its posts."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from soku.platforms.connector import Job
from soku.platforms.snapchat_connector import SnapchatConnector
from soku.sandbox.snapchat import create_snapchat_fake
from tests.media_files import MediaServer
from tests.platforms.connector_world import Site, fresh_fake, media_site
from tests.platforms.media_world import MediaWorld

PROFILE_ID, USERNAME = "5b0e3c2a-8d1f-4c55-9e0a-0f6b1d2c3e4f", "soku_snaps"
TOKEN, REFRESH = "snap-access", "snap-refresh"
ACCOUNT = dict(account_id="sc_main", access_token=TOKEN, refresh_token=REFRESH,
               username=USERNAME)  # fmt: skip
PART = 4096  # the connector's part size here, so the clip (some 20 KB) has several parts


@dataclasses.dataclass
class Env(MediaWorld):
    """The profile's jobs and the media it made."""

    def job(
        self,
        text: str | None = "Hello Snapchat",
        image: str | None = None,
        video: str | None = "clip.mp4",
        profile: str | None = PROFILE_ID,
        **more: Any,
    ) -> Job:
        """A video job by default; `image` makes it an image one. `more`: `publishing_since`
        or account fields."""
        images = (image,) if image else ()
        shown = video if video and not image else None
        account = {**ACCOUNT, "platform_user_id": profile}
        return self.media_job("snapchat", account, text, images, shown, **more)

    async def media_made(self) -> list[dict[str, Any]]:
        return list((await self.inspect("media"))["media"])


@contextlib.asynccontextmanager
async def serve(folder: Path) -> AsyncIterator[Site[MediaServer]]:
    async with media_site(create_snapchat_fake(), folder) as site:
        yield site


@contextlib.asynccontextmanager
async def fresh(site: Site[MediaServer]) -> AsyncIterator[Env]:
    """A fresh fake that knows the profile and its tokens."""
    async with fresh_fake(site.fake) as fake:
        await fake.add_user(id=PROFILE_ID, username=USERNAME, access_token=TOKEN,
                            refresh_token=REFRESH)  # fmt: skip
        yield Env(fake.http, site.fake, site.media, site.folder)


def connector(fake: str, **options: Any) -> SnapchatConnector:
    token_url = f"{fake}/login/oauth2/access_token"
    settings: dict[str, Any] = {"part_bytes": PART, "poll_seconds": 0, **options}
    return SnapchatConnector(fake, token_url=token_url, web_url=fake, **settings)
