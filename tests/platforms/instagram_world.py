"""The Instagram fake as the connector tests see it: its account, its media, its profile.

Instagram has no text-only post: a job names an image (`img1.jpg`) unless it names media.
Instagram takes JPEG images only, so carousels are made of the JPEG files (a query string
makes distinct URLs of one file).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path
from typing import Any

from soku.platforms.connector import ErrorKind, Job
from soku.platforms.instagram_connector import InstagramConnector
from soku.sandbox.instagram import create_instagram_fake
from tests.media_files import MediaServer
from tests.platforms.connector_world import Site, media_site
from tests.platforms.graph_world import GraphEnv, fresh_env
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


class Env(GraphEnv):
    """The Instagram account's world; a job that names no media posts `img1.jpg`."""

    platform = "instagram"
    account = ACCOUNT

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
        return self.media_job(text, images, video, **more)


def serve(folder: Path) -> contextlib.AbstractAsyncContextManager[Site[MediaServer]]:
    return media_site(create_instagram_fake(), folder)


def fresh(site: Site[MediaServer]) -> contextlib.AbstractAsyncContextManager[Env]:
    return fresh_env(site, Env, USERNAME, TOKEN)


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
