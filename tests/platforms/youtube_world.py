"""The YouTube fake as the connector tests see it: its channel, its videos, its sessions."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from soku.platforms.connector import ErrorKind, Job, PlatformError
from soku.platforms.youtube_connector import YouTubeConnector
from soku.platforms.youtube_upload import QUANTUM
from soku.sandbox.youtube import create_youtube_fake
from tests.media_files import MediaServer
from tests.platforms.connector_world import Site, fresh_fake
from tests.platforms.media_world import MediaWorld, long_video_site
from tests.platforms.profile import Errors, Profile, Reconcile, Refresh, Resume, Sample

CHANNEL, TOKEN, REFRESH = "UCsokuSandboxChannel00", "yt-access", "1//yt-refresh"
ACCOUNT = dict(account_id="yt_main", access_token=TOKEN, refresh_token=REFRESH)
CHUNK = QUANTUM  # the connector's chunk here, so a small video has several
LONG_BYTES = 3 * CHUNK + 1_234  # four chunks: three sent by `upload`, the last by `publish`


@dataclasses.dataclass
class Env(MediaWorld):
    """The channel's jobs and upload sessions."""

    def job(self, text: str | None = "Hello YouTube", video: str = "clip.mp4", **more: Any) -> Job:
        """A job of the channel's account: `more` gives `publishing_since` or account fields."""
        account = {**ACCOUNT, "platform_user_id": CHANNEL}
        return self.media_job("youtube", account, text, video=video, **more)

    async def sessions(self) -> list[dict[str, Any]]:
        return list((await self.inspect("sessions"))["sessions"])

    async def expire_sessions(self) -> None:
        response = await self.http.post(f"{self.fake}/_expire_sessions")
        assert response.status_code == 200, response.text


def serve(folder: Path) -> AbstractAsyncContextManager[Site[MediaServer]]:
    """The fake and the media store (`MediaServer`'s files, and a video of four chunks)."""
    return long_video_site(create_youtube_fake(), folder, LONG_BYTES)


@contextlib.asynccontextmanager
async def fresh(site: Site[MediaServer]) -> AsyncIterator[Env]:
    """A fresh fake that knows the channel and its tokens."""
    async with fresh_fake(site.fake) as fake:
        await fake.add_user(id=CHANNEL, title="Soku Channel", access_token=TOKEN,
                            refresh_token=REFRESH)  # fmt: skip
        yield Env(fake.http, site.fake, site.media, site.folder)


def connector(fake: str, **options: Any) -> YouTubeConnector:
    return YouTubeConnector(
        fake,
        upload_url=f"{fake}/upload/youtube/v3/videos",
        token_url=f"{fake}/token",
        web_url=fake,
        chunk_bytes=CHUNK,
        poll_seconds=0,
        **{"max_processing_wait": 0.0, **options},
    )


def _says_why(error: PlatformError) -> bool:
    """Google's envelope: the reason of its first error."""
    return bool(error.raw["error"]["errors"][0]["reason"])


# YouTube's processing is read after the publish (the video exists only then), so the
# contract's processing failure of a step does not apply: test_youtube_connector has it.
PROFILE = Profile(
    platform="youtube",
    serve=serve,
    fresh=fresh,
    connector=connector,
    reconcile=Reconcile(
        found=(Sample("video", "Find me"), Sample("long-video", "Find me", {"video": "long.mp4"})),
        staged={"video": "long.mp4"},
    ),
    errors=Errors(
        label="YouTube",
        # (a quota's wait is until midnight Pacific: test_youtube_connector checks it)
        publish=(
            ({"status": 429, "retry_after": 7}, ErrorKind.rate_limited, "rate_limited"),
            ({"error_code": "forbidden"}, ErrorKind.permanent, "forbidden"),
            ({"status": 400}, ErrorKind.permanent, "bad_request"),
        ),
        says_why=_says_why,
        slow=("insert", {}),
        duplicate=None,  # YouTube takes the same video twice
        processing=(),
    ),
    resume=Resume(
        more={"video": "long.mp4"},
        stop_after="session",
        fails_on="chunk",
        calls={"insert": 1, "chunk": 3, "publish": 1},
    ),
    refresh=Refresh(
        sends="refresh_token",
        call="token",
        lifetime=dt.timedelta(seconds=3599),
        owner="channel_id",
        credentials=({"client_id": "soku-app", "client_secret": "s3cret"}, "invalid_client"),
    ),
)
