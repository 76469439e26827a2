"""The TikTok fake as the connector tests see it: its creator, the media it pulls, its chunks."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from soku.platforms.connector import Job
from soku.platforms.tiktok_connector import TikTokConnector
from soku.sandbox.tiktok import create_tiktok_fake
from tests.media_files import MediaServer
from tests.platforms.connector_world import Sandboxes, Site, fresh_fake
from tests.platforms.media_world import MediaWorld, long_video_site

OPEN_ID, USERNAME, TOKEN, REFRESH = "-000creator", "soku_creator", "act.tk-access", "rft.tk-refresh"
ACCOUNT = dict(account_id="tt_main", access_token=TOKEN, refresh_token=REFRESH)
CHUNK = 100_000  # the chunk size here, so a small video has several chunks
VIDEO_BYTES = 3 * CHUNK + 4_321  # three chunks, the last one larger
PHOTOS = ("img1.jpg", "img3.webp")  # TikTok takes JPEG and WebP photos, not PNG


@dataclasses.dataclass
class Env(MediaWorld):
    """The creator's jobs."""

    def job(
        self,
        text: str | None = "Hello TikTok",
        images: tuple[str, ...] = (),
        video: str | None = None,
        **more: Any,
    ) -> Job:
        """`more`: `publishing_since`, or account fields."""
        account = {**ACCOUNT, "platform_user_id": OPEN_ID, "username": USERNAME}
        return self.media_job("tiktok", account, text, images, video, **more)


def serve(folder: Path) -> AbstractAsyncContextManager[Site[MediaServer]]:
    """The fake and the media store (`MediaServer`'s files, and a video of three chunks)."""
    return long_video_site(create_tiktok_fake(), folder, VIDEO_BYTES)


@contextlib.asynccontextmanager
async def world(sandboxes: Sandboxes) -> AsyncIterator[Env]:
    """A fresh fake that knows the creator and their tokens, taking chunks of `CHUNK` bytes."""
    site = await sandboxes.site("tiktok", serve)
    async with fresh_fake(site.fake) as fake:
        tokens = {"access_token": TOKEN, "refresh_token": REFRESH}
        await fake.add_user(username=USERNAME, open_id=OPEN_ID, **tokens)
        env = Env(fake.http, site.fake, site.media, site.folder)
        await env.config(min_chunk_bytes=CHUNK)
        yield env


def connector(fake: str, **options: Any) -> TikTokConnector:
    token_url = f"{fake}/v2/oauth/token/"
    options = {"poll_seconds": 0, "chunk_bytes": CHUNK, **options}
    return TikTokConnector(fake, token_url=token_url, web_url=fake, **options)
