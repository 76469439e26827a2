"""A fake of the Facebook Pages Graph API at Graph's own paths, for sandbox accounts and tests.

It follows /work/shared/platforms/facebook.md (Graph API v25.0; any `v<major>.<minor>` is
accepted): `POST /{page-id}/feed` (message, attached_media), `POST /{page-id}/photos` (url or
multipart source, published true or false), `POST /{page-id}/videos` (file_url or source),
`POST /{video-id}` (published), `GET /{id}?fields=…` for posts, photos and videos (a video's
`status.video_status`: processing, then ready or error), `GET /{page-id}/published_posts`,
`/feed` and `/videos` and `GET /me/accounts` with limit/after (and since/until), and
Facebook Login's dialog and token endpoint (`facebook_oauth.py`). Parameters come as query,
form or JSON; the token as `access_token` or an `Authorization: OAuth|Bearer`
header. Answers carry `X-App-Usage` and `X-Business-Use-Case-Usage`; errors are Graph errors.

Media is fetched from the URL given, as Facebook does (off with `fetch_media: false`). A Page
token the fake did not issue is adopted for the Page it is first used with. Besides Graph's
paths: `/_faults`, `/_config`, `/_inspect/posts`, `/_inspect/uploads`, `/_pages`, and the
public pages a post's URL points at (`facebook_web.py`). Requests are read by
`facebook_params.py`, objects shown by `facebook_views.py`; its memory lives in
`facebook_state.py`.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from soku.sandbox.common import apply_fault, control_routes, fake_app, fetch_media, public_base
from soku.sandbox.facebook_oauth import oauth_routes
from soku.sandbox.facebook_params import (
    G,
    attached_ids,
    flag,
    image_ok,
    read_params,
    requested_fields,
    text_param,
)
from soku.sandbox.facebook_state import CALL_KINDS, CallKind, FakeState, FaultSpec, Post, Video
from soku.sandbox.facebook_views import inspected, node_view, post_view
from soku.sandbox.facebook_web import web_routes
from soku.sandbox.graph import (
    GraphError,
    access_token,
    graph_error_handlers,
    invalid_parameter,
    page_cursors,
    page_start,
    time_param,
)

MAX_VIDEO_BYTES = 10 * 1024**3  # 10 GB (facebook.md "Constraints", [S])


class NewPage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str | None = None
    access_token: str | None = None
    user_token: str | None = None  # a user token whose /me/accounts lists this Page


class FacebookFake:
    """The fake's behaviour shared by its routes: gatekeeping, media fetching, answers."""

    def __init__(self, public_url: str, media_origin: str) -> None:
        self.state = FakeState()
        self.public_url = public_url.rstrip("/")
        # media fetched only from this origin when one is given (see common.fetch_media)
        self.fetch_origin = media_origin

    async def gate(
        self, request: Request, kind: CallKind, params: dict[str, Any], page_id: str | None
    ) -> tuple[str, FaultSpec | None]:
        """Counts the call, checks the token and the Page's quota, applies the next fault.

        Returns the Page and any fault the route must finish applying (a publish accepted
        before its answer is delayed, a status read that fails processing).
        """
        state = self.state
        state.calls[kind] += 1
        await asyncio.sleep(state.config.latency_ms / 1000)
        token = access_token(request, params)
        page = state.page_for_token(token, page_id) if page_id is not None else token
        if page_id is not None:
            request.state.usage_headers = state.count_call(page)
        fault = await apply_fault(state.faults, kind, page_id, ("status",), error=FaultSpec.error)
        return page, fault

    async def fetch(self, url: str, limit: int, keep: bool) -> tuple[int, bytes, str | None]:
        """What Facebook would get at `url`: its size, its bytes (when `keep`), or why not."""
        if not self.state.config.fetch_media:
            return 0, b"", None
        got = await fetch_media(url, max_bytes=limit, keep=keep, public_url=self.fetch_origin)
        if got.ok and got.content_type.startswith("text/html"):
            return 0, b"", "the URL serves a web page, not media"
        if not got.ok and got.detail.startswith("HTTP "):
            return 0, b"", f"the server answered {got.detail.removeprefix('HTTP ')}"
        return got.size, got.data, (None if got.ok else got.detail)

    async def finish(self, fault: FaultSpec | None) -> None:
        """A publish accepted, then answered late (and maybe with an error) as a fault says."""
        if fault is not None and fault.accept_then_delay is not None:
            await asyncio.sleep(fault.accept_then_delay)
            error = fault.error()
            if error is not None:
                raise error

    def answer(self, request: Request, content: Any) -> JSONResponse:
        headers: dict[str, str] = getattr(request.state, "usage_headers", {})
        return JSONResponse(content, headers=headers)


def create_facebook_fake(public_url: str = "", *, media_origin: str = "") -> FastAPI:
    """The fake as an ASGI app; `public_url` is where it is reachable (else from the request).

    With `media_origin` (a URL) it fetches media only from that URL's origin, else from any
    http(s) URL.
    """
    app = fake_app("Soku sandbox: Facebook Pages")
    fake = FacebookFake(public_url, media_origin)
    app.state.fake = fake.state

    @app.middleware("http")
    async def background_processing(request: Request, call_next: Any) -> Any:
        fake.state.settle()  # what Facebook did meanwhile, seen by this request
        return await call_next(request)

    graph_error_handlers(app)
    control_routes(app, fake.state, FaultSpec, CALL_KINDS)
    _control_extras(app, fake)
    oauth_routes(app, fake)  # before `/{version}/{node}/{edge}`, which would take its paths
    _feed_route(app, fake)
    _photo_route(app, fake)
    _video_routes(app, fake)
    _node_route(app, fake)
    _edge_route(app, fake)
    web_routes(app, fake.state)  # last: its paths are the broadest
    return app


def _control_extras(app: FastAPI, fake: FacebookFake) -> None:
    state = fake.state

    @app.post("/_pages", status_code=201)
    async def add_page(body: NewPage) -> dict[str, Any]:
        name = body.name or f"Sandbox Page {body.id}"
        token = state.add_page(body.id, name, body.access_token, body.user_token)
        return {"id": body.id, "name": name, "access_token": token}

    @app.get("/_inspect/posts")
    async def posts(request: Request) -> dict[str, Any]:
        base = public_base(fake.public_url, request)
        return {"posts": [inspected(state, post, base) for post in state.posts]}

    @app.get("/_inspect/uploads")
    async def uploads() -> dict[str, Any]:
        photos = [{"id": p.id, "page": p.page_id, "url": p.url, "published": p.published,
                   "post_id": p.post_id} for p in state.photos.values()]  # fmt: skip
        videos = [{"id": v.id, "page": v.page_id, "url": v.url, "state": v.state,
                   "published": v.published, "post_id": v.post_id}
                  for v in state.videos.values()]  # fmt: skip
        return {"photos": photos, "videos": videos}


def _feed_route(app: FastAPI, fake: FacebookFake) -> None:
    state = fake.state

    @app.post(G + "/{node}/feed")
    async def feed(request: Request) -> JSONResponse:
        params = await read_params(request)
        page, fault = await fake.gate(request, "publish", params, request.path_params["node"])
        photos = state.attachable(page, attached_ids(params))
        post = state.add_post(page, text_param(params, "message"), [p.id for p in photos], None)
        await fake.finish(fault)
        fields = requested_fields(params)  # fields=id,permalink_url answers both at once
        base = public_base(fake.public_url, request)
        return fake.answer(
            request, post_view(state, post, fields, base) if fields else {"id": post.id}
        )


def _photo_route(app: FastAPI, fake: FacebookFake) -> None:
    state = fake.state

    @app.post(G + "/{node}/photos")
    async def photos(request: Request) -> JSONResponse:
        params = await read_params(request)
        published = flag(params, "published")
        kind: CallKind = "publish" if published else "photo"
        page, fault = await fake.gate(request, kind, params, request.path_params["node"])
        url, source = params.get("url"), params.get("source")
        limit = state.config.max_photo_bytes
        if isinstance(source, bytes):
            url, size, data, problem = None, len(source), source, None
        elif isinstance(url, str) and url:
            size, data, problem = await fake.fetch(url, limit, keep=True)
        else:
            raise GraphError(400, 324, "(#324) Requires upload file")
        if size > limit:
            message = f"(#100) Photos should be smaller than {limit // 1024 // 1024} MB"
            raise GraphError(400, 100, message, subcode=1366046)
        if problem or (data and not image_ok(data)):
            raise GraphError(400, 324, "(#324) Missing or invalid image file")
        caption = text_param(params, "caption", "message")
        photo = state.add_photo(page, url, size, caption, published)
        await fake.finish(fault)
        body = {"id": photo.id} | ({"post_id": photo.post_id} if photo.post_id else {})
        return fake.answer(request, body)


def _video_routes(app: FastAPI, fake: FacebookFake) -> None:
    state = fake.state

    @app.post(G + "/{node}/videos")
    async def videos(request: Request) -> JSONResponse:
        params = await read_params(request)
        page, _ = await fake.gate(request, "video", params, request.path_params["node"])
        url, source = params.get("file_url"), params.get("source")
        if isinstance(source, bytes):
            url, size, problem = "", len(source), None
        elif isinstance(url, str) and url:
            size, _, problem = await fake.fetch(url, MAX_VIDEO_BYTES, keep=False)
        else:
            raise invalid_parameter("(#100) Requires one of the params: file_url, source")
        description = text_param(params, "description")
        if len(description) > 63_206:
            raise invalid_parameter("(#100) The description is too long")
        video = state.add_video(page, url, size, description, text_param(params, "title"), problem)
        if flag(params, "published") and not problem:
            state.publish_video(video)
        return fake.answer(request, {"id": video.id})

    @app.post(G + "/{node}")
    async def update(request: Request) -> JSONResponse:
        params = await read_params(request)
        access_token(request, params)
        item = state.owned(request.path_params["node"])
        if not isinstance(item, Video):
            raise invalid_parameter("(#100) This sandbox updates videos only")
        _, fault = await fake.gate(request, "publish", params, item.page_id)
        if "description" in params:
            item.description = text_param(params, "description")
        if flag(params, "published", item.published):
            state.publish_video(item)
        await fake.finish(fault)
        return fake.answer(request, {"success": True})


def _node_route(app: FastAPI, fake: FacebookFake) -> None:
    state = fake.state

    @app.get(G + "/{node}")
    async def read(request: Request) -> JSONResponse:
        params, node = await read_params(request), request.path_params["node"]
        access_token(request, params)
        fields = requested_fields(params)
        if node in state.page_names and not state.find_post(node):
            await fake.gate(request, "read", params, node)
            return fake.answer(request, {"id": node, "name": state.page_names[node]})
        item = state.owned(node)
        kind: CallKind = "status" if isinstance(item, Video) and "status" in fields else "read"
        _, fault = await fake.gate(request, kind, params, item.page_id)
        if isinstance(item, Video) and kind == "status":
            state.check(item, fail=fault is not None)
        base = public_base(fake.public_url, request)
        return fake.answer(request, node_view(state, item, fields, base))


def _edge_route(app: FastAPI, fake: FacebookFake) -> None:
    state = fake.state

    @app.get(G + "/{node}/{edge}")
    async def listing(request: Request) -> JSONResponse:
        params = await read_params(request)
        node, edge = request.path_params["node"], request.path_params["edge"]
        if (node, edge) == ("me", "accounts"):
            user_token, _ = await fake.gate(request, "accounts", params, None)
            offset, limit = _window(params)
            pages = state.user_pages.get(user_token, [])
            listed = state.accounts(pages[offset : offset + limit])
            body = _paged(request, fake, listed, offset, len(pages))
            return fake.answer(request, state.padded("accounts", body))
        if edge not in ("published_posts", "feed", "posts", "videos"):
            raise GraphError(400, 2500, f"Unknown path components: /{edge}")
        page, _ = await fake.gate(request, "list", params, node)
        offset, limit = _window(params)
        since, until = (
            time_param(params.get("since"), "since"),
            time_param(params.get("until"), "until"),
        )
        base, fields = public_base(fake.public_url, request), requested_fields(params)
        items: list[Post] | list[Video] = state.recent_posts(page, since, until)
        if edge == "videos":
            items = sorted((v for v in state.videos.values() if v.page_id == page),
                           key=lambda v: v.created_at, reverse=True)  # fmt: skip
        chunk = [node_view(state, item, fields, base) for item in items[offset : offset + limit]]
        body = _paged(request, fake, chunk, offset, len(items))
        return fake.answer(request, body)


def _window(params: dict[str, Any]) -> tuple[int, int]:
    """Where a listing's answer starts (its `after` cursor) and how many items it holds."""
    limit, offset = str(params.get("limit", "25")), page_start(params.get("after"))
    if not limit.isdigit() or not 1 <= int(limit) <= 100:
        raise invalid_parameter("(#100) Param limit must be between 1 and 100")
    return offset, int(limit)


def _paged(
    request: Request, fake: FacebookFake, chunk: list[dict[str, Any]], offset: int, total: int
) -> dict[str, Any]:
    """One answer of a listing: its items from `offset` of `total`, with Graph's `paging`
    (the cursors, and `next` while more follow, without the token)."""
    body: dict[str, Any] = {"data": chunk}
    if chunk:
        cursors = page_cursors(offset, len(chunk))
        body["paging"] = {"cursors": cursors}
        if offset + len(chunk) < total:
            query = {k: v for k, v in request.query_params.items() if k != "access_token"}
            query["after"] = cursors["after"]
            path = "/".join(request.path_params[name] for name in ("version", "node", "edge"))
            base = public_base(fake.public_url, request)
            body["paging"]["next"] = f"{base}/{path}?{urlencode(query)}"
    return body
