"""The Facebook fake as the connector tests see it: its Page, its media, its profile.

The media are served by `tests.media_files.MediaServer`, standing in for our media store's
public URLs, which the fake fetches as Facebook does.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from soku.platforms.connector import AccountAccess, ErrorKind, Job
from soku.platforms.facebook_connector import FacebookConnector
from soku.sandbox.facebook import create_facebook_fake
from tests.media_files import MediaServer
from tests.platforms.connector_world import Site, World, fresh_fake, make_job, media_site
from tests.platforms.profile import (
    Errors,
    Profile,
    Reconcile,
    Refresh,
    Resume,
    Sample,
    graph_error_says_why,
)

PAGE, TOKEN, USER_TOKEN = "104857600012345", "page-token", "long-lived-user-token"
ACCOUNT = dict(account_id="fb_main", platform_user_id=PAGE, access_token=TOKEN)


@dataclasses.dataclass
class Env(World):
    """The test's world: the fake and a client like the engine's, the media server."""

    media: MediaServer

    def job(
        self, text: str | None = "Hello", images: int = 0, video: str | None = None, **more: Any
    ) -> Job:
        """`images` distinct image URLs; `more`: `publishing_since`, or account fields."""
        return make_job(
            "facebook",
            ACCOUNT,
            text=text,
            image_urls=self.media.images(images),
            video_urls=[self.media.url(video)] if video else [],
            **more,
        )

    async def uploads(self) -> dict[str, Any]:
        return dict(await self.inspect("uploads"))

    async def refreshable(self) -> AccountAccess:
        """The Page as a login that manages it lists it: its user token is the refresh token."""
        body = {"id": PAGE, "name": "Soku Page", "user_token": USER_TOKEN}
        assert (await self.http.post(f"{self.fake}/_pages", json=body)).status_code == 201
        return self.job(refresh_token=USER_TOKEN).account


def serve(folder: Path) -> contextlib.AbstractAsyncContextManager[Site[MediaServer]]:
    return media_site(create_facebook_fake(), folder)


@contextlib.asynccontextmanager
async def fresh(site: Site[MediaServer]) -> AsyncIterator[Env]:
    async with fresh_fake(site.fake) as fake:
        yield Env(fake.http, site.fake, site.media)


def connector(fake: str, **options: Any) -> FacebookConnector:
    return FacebookConnector(fake, video_url=fake, web_url=fake, **options)


PROFILE = Profile(
    platform="facebook",
    serve=serve,
    fresh=fresh,
    connector=connector,
    reconcile=Reconcile(
        found=(
            Sample("text", "Find me"),
            Sample("photo", "One picture", {"images": 1}),
            Sample("photos", "Several pictures", {"images": 2}),
            Sample("no-text", None, {"images": 3}, timed=False),
        ),
        staged={"images": 2},  # a single photo is uploaded with the post
    ),
    errors=Errors(
        label="Facebook",
        publish=(
            (
                {"error_code": "rate_limited", "retry_after": 30},
                ErrorKind.rate_limited,
                "rate_limited",
            ),
            ({"error_code": "page_rate_limited"}, ErrorKind.rate_limited, "rate_limited"),
            ({"status": 503, "retry_after": 7}, ErrorKind.server_error, "server_error"),
            ({"error_code": "token_invalid"}, ErrorKind.reauth_required, "reauth_required"),
            ({"error_code": "permission_denied"}, ErrorKind.permanent, "permission_denied"),
        ),
        says_why=graph_error_says_why,
        slow=("photo", {"images": 2}),
        duplicate=(400, lambda first: {"error": {"code": 506}}),
        processing=(),  # a video is fetched after the publish: see its own test
    ),
    resume=Resume(more={"images": 3}, stop_after="photo_0", fails_on="photo", calls={"photo": 3}),
    refresh=Refresh(sends="refresh_token", call="accounts", lifetime=None, owner="page"),
)
