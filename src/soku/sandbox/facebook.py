"""A fake of the Facebook Pages Graph API at Graph's own paths, for sandbox accounts and tests.

It follows /work/shared/platforms/facebook.md (Graph API v25.0; any `v<major>.<minor>` is
accepted): `POST /{page-id}/feed` (message, attached_media), `POST /{page-id}/photos` (url or
multipart source, published true or false), `POST /{page-id}/videos` (file_url or source),
`POST /{video-id}` (published), `GET /{id}?fields=…` for posts, photos and videos (a video's
`status.video_status`: processing, then ready or error), `GET /{page-id}/published_posts`,
`/feed` and `/videos` with since/until/limit/after, and `GET /me/accounts`. Parameters come
as query, form or JSON; the token as `access_token` or an `Authorization: OAuth|Bearer`
header. Answers carry `X-App-Usage` and `X-Business-Use-Case-Usage`; errors are Graph errors.

Media is fetched from the URL given, as Facebook does (off with `fetch_media: false`). A Page
token the fake did not issue is adopted for the Page it is first used with. Besides Graph's
paths: `/_faults`, `/_config`, `/_inspect/posts`, `/_inspect/uploads`, `/_pages`, and the
public pages a post's URL points at. Its memory lives in `facebook_state.py`.
"""

from __future__ import annotations

import asyncio
import base64
import html
import re
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.convertors import Convertor, register_url_convertor

from soku.sandbox.common import control_routes, fetch_media, public_base
from soku.sandbox.facebook_state import (
    CALL_KINDS,
    CallKind,
    FakeState,
    FaultSpec,
    Photo,
    Post,
    Video,
    attached_ids,
    check_fields,
    flag,
    graph_time,
    image_ok,
    moment,
    photo_values,
    read_params,
    requested_fields,
    text_param,
    video_link,
    video_values,
)
from soku.sandbox.graph import GraphError, access_token, graph_error_handlers, invalid_parameter

MAX_VIDEO_BYTES = 10 * 1024**3  # 10 GB (facebook.md "Constraints", [S])
# The fields each node answers; asking for another is error 100, as on Graph.
POST_FIELDS = frozenset({"id", "message", "created_time", "updated_time", "permalink_url",
                         "attachments", "is_published", "from"})  # fmt: skip
PHOTO_FIELDS = frozenset({"id", "created_time", "name", "link", "page_story_id"})
VIDEO_FIELDS = frozenset({"id", "description", "title", "created_time", "updated_time",
                          "published", "permalink_url", "status", "length"})  # fmt: skip


class _Version(Convertor[str]):
    """A Graph API version segment, `v25.0`; other first segments are the fake's web pages."""

    regex = r"v[0-9]+\.[0-9]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("graph_version", _Version())
G = "/{version:graph_version}"


class NewPage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str | None = None
    access_token: str | None = None
    user_token: str | None = None  # a user token whose /me/accounts lists this Page


class FacebookFake:
    """The fake's behaviour shared by its routes: gatekeeping, media fetching, views."""

    def __init__(self, public_url: str, own_media_only: bool) -> None:
        self.state = FakeState()
        self.public_url = public_url.rstrip("/")
        # mounted by the service: fetch only from its own origin (see common.fetch_media)
        self.fetch_origin = self.public_url if own_media_only else ""

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
        fault = state.faults.take(kind, page_id)
        if fault is None or fault.accept_then_delay is not None:
            return page, fault
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if kind == "status" and fault.error_code == "processing_failed":
            return page, fault
        error = fault.error()
        if error is not None:
            raise error
        return page, None

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

    # --- views ---------------------------------------------------------------------------------

    def post_url(self, base: str, post: Post) -> str:
        if post.video_id:
            return base + video_link(self.state.videos[post.video_id])
        return f"{base}/{post.page_id}/posts/{post.id.rpartition('_')[2]}"

    def view(self, item: Post | Photo | Video, fields: set[str], base: str) -> dict[str, Any]:
        if isinstance(item, Post):
            return self.post_view(item, fields or {"id", "message", "created_time"}, base)
        if isinstance(item, Photo):
            known, values = PHOTO_FIELDS, photo_values(item, base)
            fields = fields or {"id", "created_time", "name"}
        else:
            known, values = VIDEO_FIELDS, video_values(item)
            fields = fields or {"id", "description", "created_time"}
        check_fields(fields, known, type(item).__name__)
        return {name: values[name] for name in ("id", *sorted(fields)) if name in values}

    def post_view(self, post: Post, fields: set[str], base: str) -> dict[str, Any]:
        check_fields(fields, POST_FIELDS, "Post")
        values: dict[str, Any] = {
            "id": post.id,
            "created_time": graph_time(post.created_at),
            "updated_time": graph_time(post.created_at),
            "permalink_url": self.post_url(base, post),
            "is_published": True,
            "from": {"name": self.state.page_names.get(post.page_id, ""), "id": post.page_id},
        }
        if post.message:
            values["message"] = post.message
        if post.photo_ids or post.video_id:
            values["attachments"] = {"data": [self.attachment(post, base)]}
        return {name: values[name] for name in ("id", *sorted(fields)) if name in values}

    def attachment(self, post: Post, base: str) -> dict[str, Any]:
        """A post's attachment as Graph shows it: a photo, an album of photos, or a video."""
        url = self.post_url(base, post)
        if post.video_id:
            target = {"id": post.video_id, "url": url}
            return {"media_type": "video", "type": "video_inline", "target": target, "url": url}
        photos = [
            {"media_type": "photo", "type": "photo", "target": {"id": photo_id}, "url": url}
            for photo_id in post.photo_ids
        ]
        if len(photos) == 1:
            return photos[0]
        album = {"id": post.id.rpartition("_")[2], "url": url}
        return {"media_type": "album", "type": "album", "target": album, "url": url,
                "subattachments": {"data": photos}}  # fmt: skip

    def inspected(self, post: Post, base: str) -> dict[str, Any]:
        """A post as `/_inspect/posts` shows it: what was sent, and where it can be seen."""
        media = [
            {"id": p, "kind": "photo", "url": self.state.photos[p].url} for p in post.photo_ids
        ]
        if post.video_id:
            video = self.state.videos[post.video_id]
            media.append({"id": video.id, "kind": "video", "url": video.url})
        created, url = graph_time(post.created_at), self.post_url(base, post)
        return {"id": post.id, "page": post.page_id, "text": post.message, "media": media,
                "created_time": created, "url": url}  # fmt: skip


def create_facebook_fake(public_url: str = "", *, own_media_only: bool = False) -> FastAPI:
    """The fake as an ASGI app; `public_url` is where it is reachable (else from the request).

    With `own_media_only` it fetches media only from `public_url`'s origin.
    """
    app = FastAPI(title="Soku sandbox: Facebook Pages", docs_url=None, redoc_url=None)
    fake = FacebookFake(public_url, own_media_only)
    app.state.fake = fake.state

    @app.middleware("http")
    async def background_processing(request: Request, call_next: Any) -> Any:
        fake.state.settle()  # what Facebook did meanwhile, seen by this request
        return await call_next(request)

    graph_error_handlers(app)
    control_routes(app, fake.state, FaultSpec, CALL_KINDS)
    _control_extras(app, fake)
    _publish_routes(app, fake)
    _read_routes(app, fake)
    _web_routes(app, fake)  # last: its paths are the broadest
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
        return {"posts": [fake.inspected(post, base) for post in state.posts]}

    @app.get("/_inspect/uploads")
    async def uploads() -> dict[str, Any]:
        photos = [{"id": p.id, "page": p.page_id, "url": p.url, "published": p.published,
                   "post_id": p.post_id} for p in state.photos.values()]  # fmt: skip
        videos = [{"id": v.id, "page": v.page_id, "url": v.url, "state": v.state,
                   "published": v.published, "post_id": v.post_id}
                  for v in state.videos.values()]  # fmt: skip
        return {"photos": photos, "videos": videos}


def page_html(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<article>{body}</article>"
    )


def missing_page() -> HTMLResponse:
    return HTMLResponse("<!doctype html><h1>This content isn't available</h1>", 404)


def _publish_routes(app: FastAPI, fake: FacebookFake) -> None:
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
            request, fake.post_view(post, fields, base) if fields else {"id": post.id}
        )

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


def _read_routes(app: FastAPI, fake: FacebookFake) -> None:
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
        return fake.answer(request, fake.view(item, fields, base))

    @app.get(G + "/{node}/{edge}")
    async def listing(request: Request) -> JSONResponse:
        params = await read_params(request)
        node, edge = request.path_params["node"], request.path_params["edge"]
        if (node, edge) == ("me", "accounts"):
            user_token, _ = await fake.gate(request, "accounts", params, None)
            return fake.answer(request, {"data": state.accounts(user_token)})
        if edge not in ("published_posts", "feed", "posts", "videos"):
            raise GraphError(400, 2500, f"Unknown path components: /{edge}")
        page, _ = await fake.gate(request, "list", params, node)
        limit, offset = str(params.get("limit", "25")), _offset(params.get("after"))
        if not limit.isdigit() or not 1 <= int(limit) <= 100:
            raise invalid_parameter("(#100) Param limit must be between 1 and 100")
        since, until = moment(params.get("since"), "since"), moment(params.get("until"), "until")
        base, fields = public_base(fake.public_url, request), requested_fields(params)
        items: list[Post] | list[Video] = state.recent_posts(page, since, until)
        if edge == "videos":
            items = sorted((v for v in state.videos.values() if v.page_id == page),
                           key=lambda v: v.created_at, reverse=True)  # fmt: skip
        chunk = items[offset : offset + int(limit)]
        body: dict[str, Any] = {"data": [fake.view(item, fields, base) for item in chunk]}
        if chunk:
            cursors = {"before": _cursor(offset), "after": _cursor(offset + len(chunk) - 1)}
            body["paging"] = {"cursors": cursors}
            if offset + len(chunk) < len(items):
                query = {k: v for k, v in params.items() if k != "access_token"}
                query["after"] = cursors["after"]
                path = f"/{request.path_params['version']}/{node}/{edge}"
                body["paging"]["next"] = f"{base}{path}?{urlencode(query)}"
        return fake.answer(request, body)


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{index}".encode()).decode()


def _offset(cursor: Any) -> int:
    """Where a page after `cursor` starts; cursors are opaque, as on Graph."""
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(str(cursor).encode()).decode()
    except ValueError:
        text = ""
    if not re.fullmatch(r"offset:[0-9]+", text):
        raise invalid_parameter("(#100) Param after is not a valid cursor")
    return int(text.partition(":")[2]) + 1


def _web_routes(app: FastAPI, fake: FacebookFake) -> None:
    """The public pages a post's or a video's URL opens on www.facebook.com."""
    state = fake.state

    def show_post(post: Post | None) -> HTMLResponse:
        if post is None:
            return missing_page()
        name = state.page_names.get(post.page_id, post.page_id)
        media = "".join(f"<li>photo {p}</li>" for p in post.photo_ids)
        media += f"<li>video {post.video_id}</li>" if post.video_id else ""
        body = f"<p>{html.escape(name)}</p><p class=text>{html.escape(post.message)}</p>"
        return page_html(f"{name} | Facebook", body + f"<ul>{media}</ul>")

    def show_video(video_id: str) -> HTMLResponse:
        video = state.videos.get(video_id)
        return show_post(state.find_post(video.post_id) if video and video.post_id else None)

    @app.get("/reel/{video_id}", response_class=HTMLResponse)
    async def reel(video_id: str) -> HTMLResponse:
        return show_video(video_id)

    @app.get("/{page_id}/videos/{video_id}", response_class=HTMLResponse)
    @app.get("/{page_id}/videos/{video_id}/", response_class=HTMLResponse)
    async def video(page_id: str, video_id: str) -> HTMLResponse:
        return show_video(video_id)

    @app.get("/{page_id}/posts/{local_id}", response_class=HTMLResponse)
    async def post(page_id: str, local_id: str) -> HTMLResponse:
        return show_post(state.find_post(f"{page_id}_{local_id}"))

    @app.get("/{object_id}", response_class=HTMLResponse)
    async def by_id(object_id: str) -> HTMLResponse:
        """`https://www.facebook.com/{post-id}` (or a video id) opens the post too."""
        if object_id in state.videos:
            return show_video(object_id)
        return show_post(state.find_post(object_id))
