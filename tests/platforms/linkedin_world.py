"""The LinkedIn fake as the connector tests see it: its member, its media, its profile."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from soku.platforms.connector import ErrorKind, Job, PlatformError
from soku.platforms.linkedin_connector import LinkedInConnector
from soku.sandbox.linkedin import create_linkedin_fake
from tests.media_files import MediaServer
from tests.platforms.connector_world import Site, fresh_fake
from tests.platforms.media_world import MediaWorld, long_video_site
from tests.platforms.profile import (
    Errors,
    Processing,
    Profile,
    Reconcile,
    Refresh,
    Resume,
    Sample,
)

MEMBER, TOKEN, REFRESH = "m3mb3r", "li-access", "li-refresh"
ACCOUNT = dict(account_id="li_main", access_token=TOKEN, refresh_token=REFRESH)
ORG = "urn:li:organization:4242"
PART = 100_000  # the fake's part size here, so a small video has several parts
VIDEO_BYTES = 3 * PART + 4_321  # four parts
IMAGES = ("img1.jpg", "img2.png", "img4.gif")  # LinkedIn takes JPG, PNG and GIF


@dataclasses.dataclass
class Env(MediaWorld):
    """The member's jobs (or, with `author`, an organisation's)."""

    def job(
        self,
        text: str | None = "Hello LinkedIn",
        images: tuple[str, ...] = (),
        video: str | None = None,
        author: str | None = MEMBER,
        **more: Any,
    ) -> Job:
        """`author`: the account's user id; `more`: `publishing_since`, or account fields."""
        account = {**ACCOUNT, "platform_user_id": author}
        return self.media_job("linkedin", account, text, images, video, **more)


def serve(folder: Path) -> AbstractAsyncContextManager[Site[MediaServer]]:
    """The fake and the media store (`MediaServer`'s files, and a video of four parts)."""
    return long_video_site(create_linkedin_fake(), folder, VIDEO_BYTES)


@contextlib.asynccontextmanager
async def fresh(site: Site[MediaServer]) -> AsyncIterator[Env]:
    """A fresh fake that knows the member and their tokens, cutting videos in small parts."""
    async with fresh_fake(site.fake) as fake:
        tokens = {"access_token": TOKEN, "refresh_token": REFRESH}
        await fake.add_user(id=MEMBER, name="Soku Member", **tokens)
        world = Env(fake.http, site.fake, site.media, site.folder)
        await world.config(part_bytes=PART)
        yield world


def connector(fake: str, **options: Any) -> LinkedInConnector:
    oauth = f"{fake}/oauth/v2/accessToken"
    return LinkedInConnector(fake, oauth_url=oauth, web_url=fake, poll_seconds=0, **options)


def _says_why(error: PlatformError) -> bool:
    raw = error.raw
    return bool(raw["status"] == error.http_status and raw["message"] in error.message)


PROFILE = Profile(
    platform="linkedin",
    serve=serve,
    fresh=fresh,
    connector=connector,
    reconcile=Reconcile(
        found=(
            Sample("text", "Find (me) #now"),
            Sample("organization-images", "Find me", {"images": IMAGES[:2], "author": ORG}),
            Sample("video", "Find me", {"video": "clip.mp4"}),
        ),
        staged={"images": IMAGES[:1]},
    ),
    errors=Errors(
        label="LinkedIn",
        publish=(
            ({"error_code": "token_revoked"}, ErrorKind.reauth_required, "token_revoked"),
            ({"error_code": "forbidden"}, ErrorKind.permanent, "forbidden"),
            ({"error_code": "no_permission"}, ErrorKind.permanent, "no_permission"),
            ({"status": 400}, ErrorKind.permanent, "invalid_request"),
            ({"status": 426}, ErrorKind.permanent, "version_sunset"),
        ),
        says_why=_says_why,
        slow=("image_upload", {"images": IMAGES[:1]}),
        duplicate=(
            422,
            lambda first: {
                "message": f"Content is a duplicate of {first.platform_post_id}",
                "status": 422,
            },
        ),
        processing=(
            Processing(
                {"on": "video_status"},
                {"video": "clip.mp4"},
                "could not be processed",
                {"status": "PROCESSING_FAILED"},
            ),
            Processing(
                {"on": "image_status"},
                {"images": IMAGES[:2]},
                "could not be processed",
                {"status": "PROCESSING_FAILED"},
            ),
        ),
    ),
    resume=Resume(
        more={"video": "long.mp4"},
        stop_after="part_1",
        fails_on="video_part",
        calls={"video_init": 1, "video_part": 4, "video_finalize": 1},
    ),
    refresh=Refresh(
        sends="refresh_token",
        call="token",
        lifetime=dt.timedelta(days=60),
        owner="member_id",
        credentials=({"client_id": "soku-app", "client_secret": "s3cret"}, "invalid_client"),
    ),
)
