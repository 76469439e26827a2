"""The Threads fake as the connector tests see it: its account, its media, its profile."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path
from typing import Any

from soku.platforms.connector import ErrorKind, Job
from soku.platforms.threads_connector import ThreadsConnector
from soku.sandbox.threads import create_threads_fake
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

USERNAME, TOKEN = "soku_threads", "th-access"
ACCOUNT = dict(account_id="threads_main", username=USERNAME, access_token=TOKEN)


class Env(GraphEnv):
    """The Threads account's world."""

    platform = "threads"
    account = ACCOUNT

    def job(
        self,
        text: str | None = "Hello Threads",
        images: tuple[str, ...] = (),
        video: str | None = None,
        **more: Any,
    ) -> Job:
        """`more`: `publishing_since`, or the account's fields this job changes."""
        return self.media_job(text, images, video, **more)


def serve(folder: Path) -> contextlib.AbstractAsyncContextManager[Site[MediaServer]]:
    return media_site(create_threads_fake(), folder)


def fresh(site: Site[MediaServer]) -> contextlib.AbstractAsyncContextManager[Env]:
    return fresh_env(site, Env, USERNAME, TOKEN)


def connector(fake: str, **options: Any) -> ThreadsConnector:
    return ThreadsConnector(fake, web_url=fake, poll_interval=0.01, **options)


PROFILE = Profile(
    platform="threads",
    serve=serve,
    fresh=fresh,
    connector=connector,
    reconcile=Reconcile(
        found=(
            Sample("text", "Find me"),
            Sample("carousel", "Find me too", {"images": ("img1.jpg", "img2.png")}),
            Sample("no-text", None, {"images": ("img5.jpg",)}, timed=False),
        ),
        staged={"images": ("img1.jpg",)},
    ),
    errors=Errors(
        label="Threads",
        publish=(
            ({"status": 503}, ErrorKind.server_error, "server_error"),
            ({"error_code": "token_invalid"}, ErrorKind.reauth_required, "reauth_required"),
            ({"error_code": "permission_denied"}, ErrorKind.permanent, "permission_denied"),
            ({"error_code": "user_rate_limited"}, ErrorKind.rate_limited, "rate_limited"),
        ),
        says_why=graph_error_says_why,
        slow=("create", {}),
        duplicate=None,  # the fake takes the same text twice
        processing=(
            Processing(
                {"on": "status", "container_error": "INVALID_DURATION"},
                {"video": "clip.mp4"},
                "INVALID_DURATION",
                {"status": "ERROR"},
            ),
        ),
    ),
    resume=Resume(
        more={"images": ("img1.jpg", "img2.png", "img4.gif")},
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
