"""The generic fake platform: one stand-in social API for every sandbox account.

It behaves like a real platform closely enough to drive the delivery engine: bearer tokens,
media uploads whose videos process asynchronously, publishing, a recent-posts listing for
reconciliation, token refresh with rotation, a per-user rate limit, and faults injected
through `/_faults`. `/_inspect` shows what it received. See `generic_state.py` for its memory.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import secrets
from typing import Any, Literal
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from soku.sandbox.common import apply_fault, control_routes, fake_app, public_base
from soku.sandbox.generic_state import (
    CALL_KINDS,
    CallKind,
    FakeError,
    FakeState,
    FaultSpec,
    iso,
)


class MediaUpload(BaseModel):
    url: str = Field(min_length=1)
    kind: Literal["image", "video"]


class NewPost(BaseModel):
    text: str | None = None
    media_ids: list[str] = Field(default_factory=list)
    platform: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")


class GenericFake:
    """The fake's behaviour shared by its routes: gatekeeping, answers and URLs."""

    def __init__(self, public_url: str) -> None:
        self.state = FakeState()
        self.public_url = public_url.rstrip("/")

    def base_url(self, request: Request) -> str:
        return public_base(self.public_url, request)

    async def gate(self, request: Request, kind: CallKind, user_id: str | None) -> FaultSpec | None:
        """Counts the call, checks token and rate limit, applies the next matching fault.

        Returns the fault when the route must finish applying it (a publish accepted before
        its answer is delayed, a media check that fails processing); raises any other one.
        """
        self.state.calls[kind] += 1
        if kind != "refresh":
            await asyncio.sleep(self.state.config.latency_ms / 1000)
            _require_bearer(request)
            request.state.rate_headers = self.state.rate_headers(user_id or "")
        return await apply_fault(
            self.state.faults, kind, user_id, ("media_status",), error=FaultSpec.error
        )


def _require_bearer(request: Request) -> None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise FakeError(
            401, "invalid_token", "Send an access token: Authorization: Bearer <token>."
        )


def answer(request: Request, content: Any, status: int = 200) -> JSONResponse:
    headers: dict[str, str] = getattr(request.state, "rate_headers", {})
    return JSONResponse(content, status_code=status, headers=headers)


def create_generic_fake(public_url: str = "") -> FastAPI:
    """The fake as an ASGI app; `public_url` is where it is reachable (else from the request)."""
    app = fake_app("Soku generic sandbox platform")
    fake = GenericFake(public_url)
    app.state.fake = fake.state
    _error_handlers(app)
    _auth_routes(app, fake)
    _media_routes(app, fake)
    _post_routes(app, fake)
    _inspect_routes(app, fake)
    control_routes(app, fake.state, FaultSpec, CALL_KINDS)
    return app


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FakeError)
    async def fake_error(request: Request, exc: FakeError) -> Response:
        headers = {**getattr(request.state, "rate_headers", {}), **exc.headers}
        if exc.plain_text:
            return PlainTextResponse(echo(request, exc), status_code=exc.status, headers=headers)
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        return await fake_error(request, FakeError(400, "invalid_request", problems))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
        return await fake_error(request, FakeError(exc.status_code, code, str(exc.detail)))


def echo(request: Request, exc: FakeError) -> str:
    """A plain-text error that quotes the request, its token as sent and on its own."""
    authorization = request.headers.get("authorization", "")
    token = authorization.partition(" ")[2]
    return (
        f"{exc.status} {exc.code}: {exc.message}\n"
        f"Request: {request.method} {request.url.path}?{request.url.query}\n"
        f"Authorization: {authorization}\nRefused token: {token}\n"
    )


def _auth_routes(app: FastAPI, fake: GenericFake) -> None:
    @app.post("/oauth/token")
    async def token(request: Request) -> JSONResponse:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        await fake.gate(request, "refresh", None)
        if form.get("grant_type", [""])[0] != "refresh_token":
            raise FakeError(400, "unsupported_grant_type", "Use grant_type=refresh_token.")
        if not form.get("refresh_token", [""])[0]:
            raise FakeError(400, "invalid_grant", "The refresh_token is missing.")
        tokens = {
            "access_token": f"sandbox-{secrets.token_urlsafe(16)}",
            "refresh_token": f"sandbox-refresh-{secrets.token_urlsafe(16)}",
            "expires_in": 3600,
            "token_type": "bearer",
        }
        return answer(request, tokens)


def _media_routes(app: FastAPI, fake: GenericFake) -> None:
    state = fake.state

    @app.post("/v1/users/{user_id}/media", status_code=201)
    async def upload(request: Request, user_id: str, body: MediaUpload) -> JSONResponse:
        await fake.gate(request, "media", user_id)
        item = state.add_media(user_id, body.url, body.kind)
        return answer(request, {"id": item.id, "status": item.status}, 201)

    @app.get("/v1/media/{media_id}")
    async def media_status(request: Request, media_id: str) -> JSONResponse:
        known = state.media.get(media_id)
        fault = await fake.gate(request, "media_status", known.user_id if known else None)
        if known is None:
            raise FakeError(404, "not_found", f"No media {media_id!r}.")
        if fault is not None:
            known.status = "failed"
        item = state.poll_media(media_id)
        content: dict[str, Any] = {"id": item.id, "status": item.status, "check_after_secs": 0}
        if item.status == "failed":
            content["error"] = {"code": "processing_failed", "message": "Could not process it."}
        return answer(request, content)


def _post_routes(app: FastAPI, fake: GenericFake) -> None:
    state = fake.state

    @app.post("/v1/users/{user_id}/posts", status_code=201)
    async def publish(request: Request, user_id: str, body: NewPost) -> JSONResponse:
        fault = await fake.gate(request, "publish", user_id)
        base = fake.base_url(request)
        post = state.add_post(user_id, body.platform, body.text, body.media_ids, base)
        if fault is not None and fault.accept_then_delay is not None:
            await asyncio.sleep(fault.accept_then_delay)
            error = fault.error()
            if error is not None:
                raise error
        created = {"id": post.id, "url": post.url, "created_at": iso(post.created_at)}
        return answer(request, created, 201)

    @app.get("/v1/users/{user_id}/posts")
    async def recent(
        request: Request, user_id: str, since: str | None = None, limit: int = 20
    ) -> JSONResponse:
        await fake.gate(request, "list", user_id)
        if not 1 <= limit <= 100:
            raise FakeError(400, "invalid_request", "limit must be between 1 and 100.")
        posts = state.list_posts(user_id, _parse_since(since), limit)
        return answer(request, {"data": [post.listing() for post in posts]})

    @app.get("/p/{post_id}", response_class=HTMLResponse)
    async def page(post_id: str) -> HTMLResponse:
        post = state.find_post(post_id)
        if post is None:
            return HTMLResponse("<!doctype html><title>Not found</title><h1>No such post</h1>", 404)
        media = "".join(f"<li>{html.escape(m)}</li>" for m in post.media_ids)
        return HTMLResponse(
            "<!doctype html><meta charset=utf-8>"
            f"<title>Post {html.escape(post.id)}</title>"
            f"<article><p class=text>{html.escape(post.text or '')}</p><ul>{media}</ul>"
            f"<p>on <b>{html.escape(post.platform)}</b> by {html.escape(post.user_id)}, "
            f"{iso(post.created_at)}</p></article>"
        )


def _parse_since(since: str | None) -> dt.datetime | None:
    if not since:
        return None
    try:
        moment = dt.datetime.fromisoformat(since)
    except ValueError:
        raise FakeError(400, "invalid_request", "since must be an ISO 8601 time.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _inspect_routes(app: FastAPI, fake: GenericFake) -> None:
    state = fake.state

    @app.get("/_inspect/posts")
    async def posts() -> dict[str, Any]:
        return {
            "posts": [
                {
                    **post.listing(),
                    "user_id": post.user_id,
                    "media": [state.media[m].describe() for m in post.media_ids],
                }
                for post in state.posts
            ]
        }
