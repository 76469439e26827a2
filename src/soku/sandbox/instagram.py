"""A fake of the Instagram API with Instagram Login (`graph.instagram.com/v25.0`).

It follows /work/shared/platforms/instagram.md: containers `POST /{ig-id}/media` (an image
by `image_url`, a reel `media_type=REELS`, carousel items `is_carousel_item=true`, a carousel
`media_type=CAROUSEL` with `children`, a story `media_type=STORIES`) whose `status_code`
moves IN_PROGRESS → FINISHED (or ERROR, the reason in `status`, or EXPIRED after 24 h);
`POST /{ig-id}/media_publish` with its 24-hour quota (9 / 2207042);
`GET /{ig-id}/content_publishing_limit`; `GET /{id}` for a container, a media or the account
(`me`); `GET /{ig-id}/media` (since / until / cursors); `GET /refresh_access_token`; and the
sign-in (`instagram_oauth.py`). Every error is a Graph error. The API answers under any
`/vN.N` (or only the configured `version`); parameters come as query, form or JSON fields,
the token as `access_token` or a Bearer header. It fetches each media from its URL as
Instagram does, and refuses what Instagram refuses (`instagram_checks.py`).

A token the fake did not issue names a new sandbox account (`POST /_users` registers known
ones). Besides Instagram's paths: `/_inspect/posts`, `/_inspect/containers`, `/_faults`,
`/_config`, and the pages a permalink opens (`instagram_views.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from soku.sandbox.common import Fetched, control_routes, fake_app, fetch_media
from soku.sandbox.graph import (
    GraphError,
    graph_answer,
    graph_error_handlers,
    graph_fields,
    graph_params,
    page_start,
    time_param,
)
from soku.sandbox.graph_accounts import unsupported
from soku.sandbox.graph_fake import (
    GraphFake,
    fail_on_fault,
    limit_route,
    node_route,
    page_answer,
    page_limit,
    publish_route,
    refresh_handler,
    user_route,
)
from soku.sandbox.instagram_checks import Asked, asked, check_image, video_detail
from soku.sandbox.instagram_oauth import oauth_routes
from soku.sandbox.instagram_state import (
    CALL_KINDS,
    Container,
    FakeState,
    FaultSpec,
    User,
    publishing_limit,
)
from soku.sandbox.instagram_views import (
    container_view,
    described,
    inspected,
    post_view,
    web_routes,
)

# Faults of Instagram's own besides Graph's (`graph.GRAPH_FAULTS`).
_OWN_FAULTS: dict[str, Callable[[], GraphError]] = {
    "publishing_limit": publishing_limit,
    "restricted": lambda: GraphError(400, 4, "Restricted: suspected spam", 2207051),
    "container_unavailable": lambda: GraphError(400, 24, "Container unavailable", 2207008),
}


class InstagramFake(GraphFake[User, FaultSpec]):
    """What the routes share: gatekeeping, faults, media fetching and URLs."""

    state: FakeState
    own_faults = _OWN_FAULTS

    def __init__(self, public_url: str, media_origin: str) -> None:
        super().__init__(FakeState(), public_url, media_origin)

    async def fetch(self, ask: Asked) -> Fetched | None:
        """GETs the container's media as Instagram does; an image is checked at once."""
        config = self.state.config
        if ask.url is None or not config.fetch_media:
            return None
        limit = config.max_image_bytes if ask.image else config.max_video_bytes
        fetched = await fetch_media(ask.url, max_bytes=limit, keep=True,
                                    public_url=self.fetch_origin)  # fmt: skip
        if not ask.image:
            return video_detail(fetched)
        check_image(ask.url, fetched, config)
        return Fetched(True, fetched.content_type, fetched.size, fetched.sha256)


def create_instagram_fake(public_url: str = "", *, media_origin: str = "") -> FastAPI:
    """The fake as an ASGI app; `public_url` is where it is reachable (else the request's).

    With `media_origin` (a URL) it fetches media only from that URL's origin.
    """
    app = fake_app("Soku sandbox: Instagram API")
    fake = InstagramFake(public_url, media_origin)
    app.state.fake = fake.state
    graph_error_handlers(app)
    control_routes(app, fake.state, FaultSpec, CALL_KINDS)
    _sandbox_routes(app, fake)
    oauth_routes(app, fake)
    _refresh_route(app, fake)
    _container_routes(app, fake)
    _listing_routes(app, fake)
    web_routes(app, fake.state)
    # last: `/{version}/{id}` is the broadest path
    node_route(app, fake, fake.state, container_view, partial(post_view, fake.state), unsupported)
    return app


def _sandbox_routes(app: FastAPI, fake: InstagramFake) -> None:
    state = fake.state
    user_route(app, state)

    @app.get("/_inspect/posts")
    async def posts(request: Request) -> dict[str, Any]:
        base = fake.base_url(request)
        return {"posts": [inspected(state, post, base) for post in state.posts]}

    @app.get("/_inspect/containers")
    async def containers() -> dict[str, Any]:
        return {"containers": [described(c) for c in state.containers.values()]}


def _refresh_route(app: FastAPI, fake: InstagramFake) -> None:
    app.add_api_route("/refresh_access_token", refresh_handler(fake), methods=["GET"])


def _container_routes(app: FastAPI, fake: InstagramFake) -> None:
    state = fake.state

    @app.post("/{version}/{node}/media")
    async def create(request: Request, version: str, node: str) -> JSONResponse:
        fake.check_version(version)
        params = await graph_params(request)
        user = state.node_user(await fake.user(request, params), node)
        fault = await fake.fault("create", user.id)
        ask = asked(params, state.config)
        if ask.media_type == "CAROUSEL":
            state.carousel_children(user, ask.children)
        fetched = await fake.fetch(ask)
        made = Container(state.new_id(), user.id, ask.media_type, ask.caption, ask.url,
                         ask.is_carousel_item, ask.children, time.time(), fetched)  # fmt: skip
        container = state.add_container(made)
        fail_on_fault(state, container, fault)
        state.refresh_status(container)
        return graph_answer(request, {"id": container.id})

    publish_route(app, fake, "media_publish")


def _listing_routes(app: FastAPI, fake: InstagramFake) -> None:
    state = fake.state

    @app.get("/{version}/{node}/media")
    async def media(request: Request, version: str, node: str) -> JSONResponse:
        fake.check_version(version)
        params = dict(request.query_params)
        user = state.node_user(await fake.user(request, params), node)
        await fake.fault("list", user.id)
        limit = page_limit(params)
        since = time_param(params.get("since"), "since")
        posts = state.recent(user.id, since, time_param(params.get("until"), "until"))
        start = page_start(params.get("after"))
        base, fields = fake.base_url(request), graph_fields(params)
        return page_answer(
            request, params, posts, start, limit, lambda post: post_view(state, post, fields, base)
        )

    limit_route(app, fake, "content_publishing_limit", {"quota_usage"}, {})
