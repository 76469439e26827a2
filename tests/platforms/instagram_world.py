"""The Instagram fake as the connector tests see it: its account, its media, its profile.

Instagram has no text-only post: a job names an image (`img1.jpg`) unless it names media.
Instagram takes JPEG images only, so carousels are made of the JPEG files (a query string
makes distinct URLs of one file).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from soku.platforms.connector import ErrorKind, Job
from soku.platforms.instagram_connector import InstagramConnector
from soku.sandbox.instagram import create_instagram_fake
from tests.media_files import MediaServer
from tests.platforms.connector_world import Site, World, fresh_fake, make_job, media_site
from tests.platforms.profile import (
    Errors,
    Processing,
    Profile,
    Reconcile,
    Refresh,
    Resume,
    Sample,
    graph_error_says_why,
)

USERNAME, TOKEN = "soku_instagram", "ig-access"
ACCOUNT = dict(account_id="instagram_main", username=USERNAME, access_token=TOKEN)
JPEGS = ("img1.jpg", "img5.jpg", "img1.jpg?n=3", "img5.jpg?n=4")


@dataclasses.dataclass
class Env(World):
    """The test's world: the fake and a client like the engine's, the media store, the user."""

    media: MediaServer
    folder: Path
    user_id: str

    def job(
        self,
        text: str | None = "Hello Instagram",
        images: tuple[str, ...] = (),
        video: str | None = None,
        **more: Any,
    ) -> Job:
        """`more`: `publishing_since`, or the account's fields this job changes."""
        if not images and not video:
            images = ("img1.jpg",)
        return make_job(
            "instagram",
            {**ACCOUNT, "platform_user_id": self.user_id},
            text=text,
            image_urls=[self.media.url(name) for name in images],
            video_urls=[self.media.url(video)] if video else [],
            **more,
        )

    async def containers(self) -> list[dict[str, Any]]:
        return list((await self.inspect("containers"))["containers"])

    def sha256(self, name: str) -> str:
        return hashlib.sha256((self.folder / name).read_bytes()).hexdigest()


def serve(folder: Path) -> contextlib.AbstractAsyncContextManager[Site[MediaServer]]:
    return media_site(create_instagram_fake(), folder)


@contextlib.asynccontextmanager
async def fresh(site: Site[MediaServer]) -> AsyncIterator[Env]:
    """A fresh fake that knows the account and its token."""
    async with fresh_fake(site.fake) as fake:
        user = await fake.add_user(username=USERNAME, access_token=TOKEN)
        yield Env(fake.http, site.fake, site.media, site.folder, user["id"])


def connector(fake: str, **options: Any) -> InstagramConnector:
    return InstagramConnector(fake, web_url=fake, poll_interval=0.01, **options)


PROFILE = Profile(
    platform="instagram",
    serve=serve,
    fresh=fresh,
    connector=connector,
    reconcile=Reconcile(
        found=(
            Sample("image", "Find me"),
            Sample("carousel", "Find me too", {"images": JPEGS[:2]}),
            Sample("reel", "Find the reel", {"video": "clip.mp4"}),
            Sample("no-caption", None, {"images": ("img5.jpg",)}, timed=False),
        ),
        staged={"images": ("img5.jpg",)},
    ),
    errors=Errors(
        label="Instagram",
        publish=(
            ({"status": 503}, ErrorKind.server_error, "server_error"),
            ({"error_code": "token_invalid"}, ErrorKind.reauth_required, "reauth_required"),
            ({"error_code": "permission_denied"}, ErrorKind.permanent, "permission_denied"),
            ({"error_code": "user_rate_limited"}, ErrorKind.rate_limited, "rate_limited"),
            ({"error_code": "restricted"}, ErrorKind.permanent, "restricted"),
        ),
        says_why=graph_error_says_why,
        slow=("create", {}),
        duplicate=None,  # the fake takes the same caption twice
        processing=(
            Processing(
                {"on": "status", "container_error": "Error: 2207026"},
                {"video": "clip.mp4"},
                "2207026",
                {"status_code": "ERROR"},
            ),
        ),
    ),
    resume=Resume(
        more={"images": JPEGS[:3]},
        stop_after="item_1_ready",
        fails_on="create",
        calls={"create": 4},  # three items and the carousel
    ),
    refresh=Refresh(
        sends="access_token",
        call="refresh",
        lifetime=dt.timedelta(seconds=5_183_944),  # about 60 days
        owner="user",
    ),
)
