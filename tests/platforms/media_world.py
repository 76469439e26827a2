"""A platform's world whose fake fetches the suite's media store (`MediaServer`), and the
site that serves them with a video long enough to go up in several parts."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp

from soku.platforms.connector import Job
from tests.media_files import MediaServer
from tests.platforms.connector_world import Site, World, make_job, media_site


@dataclasses.dataclass
class MediaWorld(World):
    """The test's world: the fake and a client like the engine's, the media store."""

    media: MediaServer
    folder: Path

    def media_job(
        self,
        platform: str,
        account: Mapping[str, Any],
        text: str | None,
        images: tuple[str, ...] = (),
        video: str | None = None,
        **more: Any,
    ) -> Job:
        """A job of `account` posting these files of the store; `more`: as `make_job`'s."""
        return make_job(
            platform,
            account,
            text=text,
            image_urls=[self.media.url(name) for name in images],
            video_urls=[self.media.url(video)] if video else [],
            **more,
        )

    def file(self, name: str) -> bytes:
        return (self.folder / name).read_bytes()


@contextlib.asynccontextmanager
async def long_video_site(
    fake: ASGIApp, folder: Path, size: int
) -> AsyncIterator[Site[MediaServer]]:
    """`media_site`, and `long.mp4`: the store's clip padded with noise to `size` bytes."""
    async with media_site(fake, folder) as site:
        data = (folder / "clip.mp4").read_bytes()
        (folder / "long.mp4").write_bytes(data + os.urandom(size - len(data)))
        yield site
