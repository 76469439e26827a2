"""A fake of the Threads API (`graph.threads.net/v1.0`), for sandbox accounts and tests.

It follows /work/shared/platforms/threads.md (Meta's Threads docs and official Postman
collection): media containers `POST /{user}/threads` (TEXT, IMAGE, VIDEO, CAROUSEL with
`is_carousel_item` children) whose `status` moves IN_PROGRESS → FINISHED (or ERROR with an
`error_message`, or EXPIRED after 24 h), `POST /{user}/threads_publish` with the 250-per-24 h
quota, `GET /{user}/threads_publishing_limit`, the sign-in (`threads_oauth.py`: the consent
page `/oauth/authorize`, `POST /oauth/access_token`, the long-lived exchange
`GET /access_token`), `GET /{id}` for a container, a thread or a
user (`me`), `GET /{user}/threads` (since / until / cursors), the long-lived token refresh
`GET /refresh_access_token`, and Graph error bodies. The API answers under any `/vN.N`
(or only the configured `version`); parameters come as query or form fields; the token as
`access_token` or a Bearer header. Threads fetches media from the URL it is given, and so does
the fake: an image it cannot fetch is refused at once, a video ends in FAILED_DOWNLOADING_VIDEO.

Any token the fake did not issue names a new sandbox user (register known ones with
`POST /_users`). Besides Threads' paths: `/_inspect/posts`, `/_inspect/containers`,
`/_faults`, `/_config`, and the pages `/@{username}` and `/@{username}/post/{shortcode}`
(`threads_web.py`). Its memory lives in `threads_state.py`.
"""

from __future__ import annotations

import dataclasses
import io
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from PIL import Image, UnidentifiedImageError

from soku.sandbox.common import Fetched, control_routes, fake_app, fetch_media
from soku.sandbox.graph import (
    GraphError,
    graph_answer,
    graph_error_handlers,
    graph_fields,
    graph_params,
    invalid_parameter,
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
from soku.sandbox.threads_oauth import oauth_routes
from soku.sandbox.threads_state import (
    CALL_KINDS,
    Container,
    FakeState,
    FaultSpec,
    User,
)
from soku.sandbox.threads_web import web_routes

MEDIA_TYPES = ("TEXT", "IMAGE", "VIDEO", "CAROUSEL")
MAX_IMAGE_BYTES = 8 * 1024 * 1024  # threads.md "Constraints" [S]
MAX_VIDEO_BYTES = 1024**3  # ≤ 1 GB (threads.md "Constraints" [S])
EARLIEST_SINCE = 1688540400  # `since` must be at least this (Threads user reference)


class ThreadsFake(GraphFake[User, FaultSpec]):
    """The fake's behaviour shared by its routes: gatekeeping, media fetching and URLs."""

    state: FakeState

    def __init__(self, public_url: str, media_origin: str) -> None:
        super().__init__(FakeState(), public_url, media_origin)

    async def fetch(self, url: str, image: bool) -> Fetched:
        """GETs a media URL as Threads does; an image must open as one and weigh ≤ 8 MB."""
        limit = MAX_IMAGE_BYTES if image else MAX_VIDEO_BYTES
        fetched = await fetch_media(url, max_bytes=limit, keep=image, public_url=self.fetch_origin)
        if fetched.ok and image:
            try:
                with Image.open(io.BytesIO(fetched.data)) as opened:
                    opened.verify()
            except (UnidentifiedImageError, OSError):
                return Fetched(False, fetched.content_type, fetched.size, detail="not an image")
        return dataclasses.replace(fetched, data=b"")  # what was received is known by its hash


def create_threads_fake(public_url: str = "", *, media_origin: str = "") -> FastAPI:
    """The fake as an ASGI app; `public_url` is where it is reachable (else from the request).

    With `media_origin` (a URL) it fetches media only from that URL's origin, else from any
    http(s) URL.
    """
    app = fake_app("Soku sandbox: Threads API")
    fake = ThreadsFake(public_url, media_origin)
    app.state.fake = fake.state
    graph_error_handlers(app)
    control_routes(app, fake.state, FaultSpec, CALL_KINDS)
    _sandbox_routes(app, fake)
    web_routes(app, fake.state)
    oauth_routes(app, fake)
    _refresh_routes(app, fake)
    _container_routes(app, fake)
    _listing_route(app, fake)
    _limit_route(app, fake)
    state = fake.state
    # last: `/{version}/{id}` is the broadest path
    node_route(app, fake, state, state.container_view, state.post_view, unsupported)
    return app


def _sandbox_routes(app: FastAPI, fake: ThreadsFake) -> None:
    state = fake.state
    user_route(app, state)

    @app.get("/_inspect/posts")
    async def posts(request: Request) -> dict[str, Any]:
        base = fake.base_url(request)
        return {"posts": [state.inspected(post, base) for post in state.posts]}

    @app.get("/_inspect/containers")
    async def containers() -> dict[str, Any]:
        return {"containers": [_described(c) for c in state.containers.values()]}


def _described(container: Container) -> dict[str, Any]:
    return {
        "id": container.id, "user_id": container.user_id, "media_type": container.media_type,
        "status": container.status, "error_message": container.error_message,
        "text": container.text, "url": container.url, "children": container.children,
        "is_carousel_item": container.is_carousel_item, "media_id": container.media_id,
    }  # fmt: skip


def _refresh_routes(app: FastAPI, fake: ThreadsFake) -> None:
    refresh = refresh_handler(fake)
    app.add_api_route("/refresh_access_token", refresh, methods=["GET"])

    @app.get("/{version}/refresh_access_token")
    async def versioned(request: Request, version: str) -> JSONResponse:
        fake.check_version(version)
        return await refresh(request)


def _container_routes(app: FastAPI, fake: ThreadsFake) -> None:
    state = fake.state

    @app.post("/{version}/{node}/threads")
    async def create(request: Request, version: str, node: str) -> JSONResponse:
        fake.check_version(version)
        params = await graph_params(request)
        user = state.node_user(await fake.user(request, params), node)
        fault = await fake.fault("create", user.id)
        media_type, text, item, url, children = _checked(params)
        fetched = None
        if url and state.config.fetch_media:
            fetched = await fake.fetch(url, media_type == "IMAGE")
        if fetched is not None and not fetched.ok and media_type == "IMAGE":
            # The message Postiz meets (threads.md); its code and subcode are not confirmed.
            message = f"The media could not be fetched from this URI: {url}"
            raise GraphError(400, 100, message, 2207052)
        container = state.create(user, media_type, text, url, item, children)
        container.fetched = fetched
        fail_on_fault(state, container, fault)
        state.refresh_status(container)
        return graph_answer(request, {"id": container.id})

    publish_route(app, fake, "threads_publish")


def _checked(params: dict[str, str]) -> tuple[str, str, bool, str | None, list[str]]:
    """A container's media type, text, carousel-item flag, media URL and children."""
    media_type, text = params.get("media_type", ""), params.get("text", "").strip()
    item = params.get("is_carousel_item", "false").lower() == "true"
    if media_type not in MEDIA_TYPES:
        raise invalid_parameter("(#100) Param media_type must be one of " + ", ".join(MEDIA_TYPES))
    if media_type == "TEXT" and not text:
        raise invalid_parameter("(#100) The parameter text is required")
    if item and media_type not in ("IMAGE", "VIDEO"):
        raise invalid_parameter("(#100) Only IMAGE and VIDEO can be carousel items")
    children = [c.strip() for c in params.get("children", "").split(",") if c.strip()]
    if media_type != "CAROUSEL" and children:
        raise invalid_parameter("(#100) Param children is for CAROUSEL only")
    wanted = {"IMAGE": "image_url", "VIDEO": "video_url"}.get(media_type)
    url = params.get(wanted, "") if wanted else None
    if wanted and not re.match(r"^https?://", url or ""):
        raise invalid_parameter(f"(#100) The parameter {wanted} is required")
    return media_type, text, item, url, children


def _listing_route(app: FastAPI, fake: ThreadsFake) -> None:
    state = fake.state

    @app.get("/{version}/{node}/threads")
    async def threads(request: Request, version: str, node: str) -> JSONResponse:
        fake.check_version(version)
        params = dict(request.query_params)
        user = state.node_user(await fake.user(request, params), node)
        await fake.fault("list", user.id)
        limit = page_limit(params)
        since, until = (
            time_param(params.get("since"), "since"),
            time_param(params.get("until"), "until"),
        )
        if since is not None and since < EARLIEST_SINCE:
            raise invalid_parameter(f"(#100) Param since must be at least {EARLIEST_SINCE}")
        posts = state.recent(user.id, since, until)
        start = page_start(params.get("after"))
        base, fields = fake.base_url(request), graph_fields(params)
        return page_answer(
            request, params, posts, start, limit, lambda post: state.post_view(post, fields, base)
        )


def _limit_route(app: FastAPI, fake: ThreadsFake) -> None:
    # Threads reports its reply quota too; the fake posts no replies.
    replies = {
        "reply_quota_usage": 0,
        "reply_config": {"quota_total": 1000, "quota_duration": 86400},
    }
    limit_route(app, fake, "threads_publishing_limit", {"quota_usage", "config"}, replies)
