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

from soku.sandbox.common import Fetched, fetch_media
from soku.sandbox.graph import GraphError, invalid_parameter
from soku.sandbox.graph_fake import GraphFake, limit_route, refresh_handler
from soku.sandbox.graph_state import Container, Post
from soku.sandbox.threads_oauth import oauth_routes
from soku.sandbox.threads_state import FakeConfig, FakeState, FaultSpec, User
from soku.sandbox.threads_web import web_routes

MEDIA_TYPES = ("TEXT", "IMAGE", "VIDEO", "CAROUSEL")
MAX_IMAGE_BYTES = 8 * 1024 * 1024  # threads.md "Constraints" [S]
MAX_VIDEO_BYTES = 1024**3  # ≤ 1 GB (threads.md "Constraints" [S])
EARLIEST_SINCE = 1688540400  # `since` must be at least this (Threads user reference)
# Threads reports its reply quota too; the fake posts no replies.
_REPLIES = {"reply_quota_usage": 0, "reply_config": {"quota_total": 1000, "quota_duration": 86400}}


class ThreadsFake(GraphFake[User, FakeConfig, FaultSpec]):
    """The Graph container fake (`GraphFake`) as Threads': its edges, checks, media fetching
    and pages."""

    state: FakeState
    title = "Soku sandbox: Threads API"
    fault_model = FaultSpec
    edge, publish_edge = "threads", "threads_publish"
    container_names = ("status", "error_message", "text")
    earliest_since = EARLIEST_SINCE

    def __init__(self, public_url: str, media_origin: str) -> None:
        super().__init__(FakeState(), public_url, media_origin)

    async def make(self, user: User, params: dict[str, str]) -> Container:
        media_type, text, item, url, children = _checked(params)
        fetched = None
        if url and self.state.config.fetch_media:
            fetched = await self.fetch(url, media_type == "IMAGE")
        if fetched is not None and not fetched.ok and media_type == "IMAGE":
            # The message Postiz meets (threads.md); its code and subcode are not confirmed.
            message = f"The media could not be fetched from this URI: {url}"
            raise GraphError(400, 100, message, 2207052)
        container = self.state.create(user, media_type, text, url, item, children)
        container.fetched = fetched
        return container

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

    def own_routes(self, app: FastAPI) -> None:
        web_routes(app, self.state)
        oauth_routes(app, self)
        refresh = refresh_handler(self)
        app.add_api_route("/refresh_access_token", refresh, methods=["GET"])

        @app.get("/{version}/refresh_access_token")
        async def versioned(request: Request, version: str) -> JSONResponse:
            self.check_version(version)
            return await refresh(request)

        limit_route(app, self, "threads_publishing_limit", {"quota_usage", "config"}, _REPLIES)

    def container_view(self, container: Container, fields: set[str]) -> dict[str, Any]:
        return self.state.container_view(container, fields)

    def post_view(self, post: Post, fields: set[str], base: str) -> dict[str, Any]:
        return self.state.post_view(post, fields, base)

    def inspected(self, post: Post, base: str) -> dict[str, Any]:
        return self.state.inspected(post, base)


def create_threads_fake(public_url: str = "", *, media_origin: str = "") -> FastAPI:
    """The fake as an ASGI app; `public_url` is where it is reachable (else from the request).

    With `media_origin` (a URL) it fetches media only from that URL's origin, else from any
    http(s) URL.
    """
    return ThreadsFake(public_url, media_origin).app()


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
