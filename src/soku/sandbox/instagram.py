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
from typing import Any

from fastapi import FastAPI

from soku.sandbox.common import Fetched, fetch_media
from soku.sandbox.graph import GraphError
from soku.sandbox.graph_fake import GraphFake, limit_route, refresh_handler
from soku.sandbox.graph_state import Container, Post, publishing_limit
from soku.sandbox.instagram_checks import Asked, asked, check_image, video_detail
from soku.sandbox.instagram_oauth import oauth_routes
from soku.sandbox.instagram_state import FakeConfig, FakeState, FaultSpec, User
from soku.sandbox.instagram_views import container_view, inspected, post_view, web_routes


class InstagramFake(GraphFake[User, FakeConfig, FaultSpec]):
    """The Graph container fake (`GraphFake`) as Instagram's: its edges, checks, faults, media
    fetching and pages."""

    state: FakeState
    title = "Soku sandbox: Instagram API"
    fault_model = FaultSpec
    edge, publish_edge = "media", "media_publish"
    container_names = ("status_code", "status", "caption")
    own_faults = {
        "publishing_limit": publishing_limit,
        "restricted": lambda: GraphError(400, 4, "Restricted: suspected spam", 2207051),
        "container_unavailable": lambda: GraphError(400, 24, "Container unavailable", 2207008),
    }

    def __init__(self, public_url: str, media_origin: str) -> None:
        super().__init__(FakeState(), public_url, media_origin)

    async def make(self, user: User, params: dict[str, str]) -> Container:
        state = self.state
        ask = asked(params, state.config)
        if ask.media_type == "CAROUSEL":
            state.carousel_children(user, ask.children)
        fetched = await self.fetch(ask)
        made = Container(state.new_id(), user.id, ask.media_type, ask.caption, ask.url,
                         ask.is_carousel_item, ask.children, time.time(), fetched)  # fmt: skip
        return state.add_container(made)

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

    def own_routes(self, app: FastAPI) -> None:
        oauth_routes(app, self)
        app.add_api_route("/refresh_access_token", refresh_handler(self), methods=["GET"])
        limit_route(app, self, "content_publishing_limit", {"quota_usage"}, {})
        web_routes(app, self.state)

    def container_view(self, container: Container, fields: set[str]) -> dict[str, Any]:
        return container_view(container, fields)

    def post_view(self, post: Post, fields: set[str], base: str) -> dict[str, Any]:
        return post_view(self.state, post, fields, base)

    def inspected(self, post: Post, base: str) -> dict[str, Any]:
        return inspected(self.state, post, base)


def create_instagram_fake(public_url: str = "", *, media_origin: str = "") -> FastAPI:
    """The fake as an ASGI app; `public_url` is where it is reachable (else the request's).

    With `media_origin` (a URL) it fetches media only from that URL's origin.
    """
    return InstagramFake(public_url, media_origin).app()
