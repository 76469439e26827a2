"""A fake of the X API v2 at X's own paths, for sandbox accounts and the connector's tests.

It follows the X API v2 as the OpenAPI file v2.167 (docs.x.com, 2026-08) and
/work/shared/platforms/x.md describe it: OAuth 2.0 with PKCE (the consent page
`/i/oauth2/authorize`, the code and refresh grants with rotating refresh tokens; in
`x_oauth.py`), `POST /2/tweets`, the simple image upload `POST /2/media/upload`, the dedicated
chunked upload endpoints (`/2/media/upload/initialize`, `/{id}/append`, `/{id}/finalize`) with
`GET /2/media/upload?command=STATUS` polling, `GET /2/users/me`, `GET /2/users/{id}/tweets`,
`x-rate-limit-*` headers on every API answer with a 429 past the limit, and X's error bodies
(problems with title, detail, type and status; OAuth errors on the token path).

Any bearer token is accepted: one the fake did not issue names a new sandbox user (register
known users and tokens with `POST /_users`). Besides X's paths: `/_inspect` (what it received),
`/_faults` (errors, delays, accepted-then-slow publishes), `/_config`, and the permalink page
`/{username}/status/{id}`. Its memory lives in `x_state.py`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import html
import io
import re
from typing import Annotated, Any, Literal, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from soku.sandbox.common import control_routes, fake_app
from soku.sandbox.fault_gate import FakeGate, bearer
from soku.sandbox.x_faults import (
    CALL_KINDS,
    STATUS_KINDS,
    CallKind,
    FaultSpec,
    XError,
    invalid_request,
)
from soku.sandbox.x_oauth import oauth_routes
from soku.sandbox.x_state import FakeState, User

MAX_IMAGE_BYTES = 5 * 1024 * 1024  # images ≤ 5 MB (x.md "Constraints")
IMAGE_CATEGORIES = ("tweet_image", "tweet_gif", "dm_image", "dm_gif")
_ID = r"^[0-9]{1,19}$"
_MEDIA_TYPES = (
    r"^(video/(mp4|webm|mp2t|quicktime)|image/(jpeg|pjpeg|gif|png|webp|bmp|tiff)|text/(srt|vtt))$"
)
Category = Literal[
    "amplify_video", "tweet_gif", "tweet_image", "tweet_video", "dm_gif", "dm_image", "dm_video",
    "subtitles",
]  # fmt: skip
T = TypeVar("T", bound=BaseModel)


class TweetMedia(BaseModel):
    model_config = ConfigDict(extra="forbid")

    media_ids: list[Annotated[str, Field(pattern=_ID)]] = Field(min_length=1, max_length=4)
    tagged_user_ids: list[Annotated[str, Field(pattern=_ID)]] = Field(default=[], max_length=10)


class NewTweet(BaseModel):
    """The body of `POST /2/tweets` (additionalProperties false; unused fields accepted)."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = None
    media: TweetMedia | None = None
    reply: dict[str, Any] | None = None
    quote_tweet_id: str | None = Field(default=None, pattern=_ID)
    reply_settings: Literal["following", "mentionedUsers", "subscribers", "verified"] | None = None
    made_with_ai: bool | None = None
    paid_partnership: bool | None = None
    nullcast: bool | None = None


class UploadInit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    media_type: str = Field(pattern=_MEDIA_TYPES)
    total_bytes: int = Field(ge=0, le=17179869184)
    media_category: Category
    additional_owners: list[str] = []
    shared: bool = False


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=r"^[A-Za-z0-9_]{1,15}$")
    name: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None


class XFake(FakeGate[FakeState, FaultSpec]):
    """The fake's behaviour shared by its routes: the gate with X's rate limits, and views."""

    status_kinds = STATUS_KINDS

    async def gate(self, request: Request, kind: CallKind) -> tuple[User, FaultSpec | None]:
        """Counts the call, checks the token and the rate limit, applies the next fault."""
        await self.admit(kind)
        user = self.state.user_for_token(bearer(request, _no_token))
        request.state.rate_headers = self.state.rate_headers(user.id, kind)
        return user, await self.apply_fault(kind, user.id)


def _no_token() -> XError:
    return XError(401, {"title": "Unauthorized", "type": "about:blank", "status": 401,
                        "detail": "Unauthorized"})  # fmt: skip


def answer(request: Request, content: Any, status: int = 200) -> JSONResponse:
    headers: dict[str, str] = getattr(request.state, "rate_headers", {})
    return JSONResponse(content, status_code=status, headers=headers)


def _parse(model: type[T], data: Any) -> T:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise invalid_request("The body must be JSON.") from None


async def _part(form: Any, name: str) -> bytes:
    value = form.get(name)
    if not isinstance(value, UploadFile):
        raise invalid_request(f"The {name} part is required.", name)
    return await value.read()


def image_facts(data: bytes) -> tuple[str, tuple[int, int]]:
    if len(data) > MAX_IMAGE_BYTES:
        raise invalid_request(f"File size exceeds {MAX_IMAGE_BYTES} bytes.", "media")
    try:
        with Image.open(io.BytesIO(data)) as image:
            return f"image/{(image.format or 'unknown').lower()}", image.size
    except (UnidentifiedImageError, OSError):
        raise invalid_request("The media type is unrecognized.", "media") from None


def _time(value: str | None, name: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid_request(f"{name} must be an RFC 3339 time.", name) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def create_x_fake(public_url: str = "") -> FastAPI:
    """The fake as an ASGI app; `public_url` is where it is reachable (else from the request)."""
    app = fake_app("Soku sandbox: X API v2")
    fake = XFake(FakeState(), public_url)
    app.state.fake = fake.state
    _error_handlers(app)
    oauth_routes(app, fake)
    _tweet_routes(app, fake)
    _timeline_route(app, fake)
    _media_routes(app, fake)
    _chunked_routes(app, fake)
    _user_route(app, fake)
    _inspect_routes(app, fake)
    control_routes(app, fake.state, FaultSpec, CALL_KINDS)
    _page_route(app, fake)  # last: its path is the broadest
    return app


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(XError)
    async def x_error(request: Request, exc: XError) -> JSONResponse:
        headers = {**getattr(request.state, "rate_headers", {}), **exc.headers}
        return JSONResponse(exc.body, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "parameters": {".".join(str(p) for p in e["loc"] if p != "body"): []},
                "message": e["msg"],
            }
            for e in exc.errors()
        ]
        error = invalid_request(errors[0]["message"] if errors else "Invalid request.")
        error.body["errors"] = errors
        return await x_error(request, error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = {"errors": [{"message": "Sorry, that page does not exist", "code": 34}]}
        return JSONResponse(body, status_code=exc.status_code)


def _tweet_routes(app: FastAPI, fake: XFake) -> None:
    state = fake.state

    @app.post("/2/tweets", status_code=201)
    async def create(request: Request) -> JSONResponse:
        user, fault = await fake.gate(request, "publish")
        body = _parse(NewTweet, await _json(request))
        post = state.add_post(user.id, body.text, body.media.media_ids if body.media else [])
        if fault is not None and fault.accept_then_delay is not None:
            await asyncio.sleep(fault.accept_then_delay)
            error = fault.error("publish")
            if error is not None:
                raise error
        return answer(request, {"data": state.tweet_view(post)}, 201)

    @app.get("/2/users/me")
    async def me(request: Request) -> JSONResponse:
        user, _ = await fake.gate(request, "me")
        return answer(request, {"data": user.view()})


def _timeline_route(app: FastAPI, fake: XFake) -> None:
    state = fake.state

    @app.get("/2/users/{user_id}/tweets")
    async def timeline(request: Request, user_id: str) -> JSONResponse:
        await fake.gate(request, "list")
        query = request.query_params
        if not re.match(_ID, user_id):
            raise invalid_request("The id must be a user id.", "id")
        limit, offset = query.get("max_results", "10"), query.get("pagination_token", "0")
        if not limit.isdigit() or not 5 <= int(limit) <= 100:
            raise invalid_request("max_results must be between 5 and 100.", "max_results")
        if not offset.isdigit():
            raise invalid_request("The pagination_token is invalid.", "pagination_token")
        since = _time(query.get("start_time"), "start_time")
        posts = state.recent_posts(user_id, since, _time(query.get("end_time"), "end_time"))
        page = posts[int(offset) : int(offset) + int(limit)]
        fields = set(query.get("tweet.fields", "").split(","))
        meta: dict[str, Any] = {"result_count": len(page)}
        body: dict[str, Any] = {"meta": meta}
        if page:
            body["data"] = [state.tweet_view(post, fields) for post in page]
            meta.update(newest_id=page[0].id, oldest_id=page[-1].id)
        if int(offset) + int(limit) < len(posts):
            meta["next_token"] = str(int(offset) + int(limit))
        return answer(request, body)


def _media_routes(app: FastAPI, fake: XFake) -> None:
    state = fake.state

    @app.post("/2/media/upload")
    async def upload(request: Request) -> JSONResponse:
        user, _ = await fake.gate(request, "media")
        form = await request.form()
        category = form.get("media_category")
        if category not in IMAGE_CATEGORIES:
            message = f"media_category must be one of {', '.join(IMAGE_CATEGORIES)} here."
            raise invalid_request(message, "media_category")
        data = await _part(form, "media")
        media_type, size = image_facts(data)
        kind = "animated_gif" if category.endswith("gif") else "photo"
        item = state.add_media(user.id, kind, media_type, len(data))
        item.state, item.size, item.sha256 = "succeeded", size, hashlib.sha256(data).hexdigest()
        return answer(request, {"data": state.media_view(item)})

    @app.get("/2/media/upload")
    async def status(request: Request, media_id: str = "", command: str = "STATUS") -> JSONResponse:
        user, fault = await fake.gate(request, "status")
        if command != "STATUS" or not re.match(_ID, media_id):
            raise invalid_request("Send command=STATUS and a media_id.", "media_id")
        item = state.check(user.id, media_id, fail=fault is not None)
        return answer(request, {"data": state.media_view(item)})


def _chunked_routes(app: FastAPI, fake: XFake) -> None:
    state = fake.state

    @app.post("/2/media/upload/initialize")
    async def initialize(request: Request) -> JSONResponse:
        user, _ = await fake.gate(request, "initialize")
        body = _parse(UploadInit, await _json(request))
        category = body.media_category
        kind = {"tweet_gif": "animated_gif", "amplify_video": "amplify_video"}.get(category)
        kind = kind or ("photo" if body.media_type.startswith("image/") else "video")
        item = state.add_media(user.id, kind, body.media_type, body.total_bytes)
        return answer(request, {"data": state.media_view(item)})

    @app.post("/2/media/upload/{media_id}/append")
    async def append(request: Request, media_id: str) -> JSONResponse:
        user, _ = await fake.gate(request, "append")
        form = await request.form()
        index = form.get("segment_index")
        if not isinstance(index, str) or not index.isdigit():
            raise invalid_request("segment_index must be an integer.", "segment_index")
        state.append(user.id, media_id, int(index), await _part(form, "media"))
        expires_at = int(state.owned(user.id, media_id).expires_at)
        return answer(request, {"data": {"expires_at": expires_at}})

    @app.post("/2/media/upload/{media_id}/finalize")
    async def finalize(request: Request, media_id: str) -> JSONResponse:
        user, _ = await fake.gate(request, "finalize")
        item = state.finalize(user.id, media_id)
        return answer(request, {"data": state.media_view(item)})


def _user_route(app: FastAPI, fake: XFake) -> None:
    state = fake.state

    @app.post("/_users", status_code=201)
    async def add_user(body: NewUser) -> dict[str, Any]:
        user = state.add_user(body.username, body.name)
        if body.access_token:
            state.tokens[body.access_token] = (user.id, None)
        if body.refresh_token:
            state.refresh_tokens[body.refresh_token] = user.id
        return {"data": user.view()}


def _inspect_routes(app: FastAPI, fake: XFake) -> None:
    state = fake.state

    @app.get("/_inspect/posts")
    async def posts(request: Request) -> dict[str, Any]:
        base = fake.base_url(request)
        return {"posts": [state.inspected(post, base) for post in state.posts]}


def _page_route(app: FastAPI, fake: XFake) -> None:
    @app.get("/{username}/status/{post_id}", response_class=HTMLResponse)
    async def page(username: str, post_id: str) -> HTMLResponse:
        """The permalink: x.com shows a post under any username in the path; so does this."""
        post = fake.state.find_post(post_id)
        if post is None:
            return HTMLResponse("<!doctype html><h1>This post doesn't exist</h1>", 404)
        user, media = fake.state.users[post.user_id], fake.state.media
        items = "".join(f"<li>{media[m].kind} {m}</li>" for m in post.media_ids)
        return HTMLResponse(
            f"<!doctype html><meta charset=utf-8><title>{html.escape(user.name)} on X</title>"
            f"<article><p>{html.escape(user.name)} @{user.username}</p>"
            f"<p class=text>{html.escape(post.text)}</p><ul>{items}</ul></article>"
        )
