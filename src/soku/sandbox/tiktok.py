"""A fake of TikTok's Content Posting API at TikTok's own paths, for sandbox accounts and tests.

It follows /work/shared/platforms/tiktok.md: creator info, Direct Post of a video (chunked
FILE_UPLOAD to the `upload_url` it hands out, or PULL_FROM_URL) and of photos (PULL_FROM_URL
only), the publish status going PROCESSING_* → PUBLISH_COMPLETE (the post id after
"moderation") or FAILED (`tiktok_posting.py`); the sign-in (`tiktok_oauth.py`); TikTok's
envelope `{"data", "error": {"code", "message", "log_id"}}` on every answer and error, its
per-minute limits per token (429 `rate_limit_exceeded` with Retry-After) and its daily cap.
What tiktok.md marks unsure is a knob of `/_config` (`tiktok_state.FakeConfig`).

Any bearer token the fake did not issue names a new sandbox creator (register creators and
tokens with `POST /_users`). Besides TikTok's paths: `/_inspect/posts`, `/_faults`,
`/_config` and the post pages `/@{username}/video/{id}` and `/@{username}/photo/{id}`.
"""

from __future__ import annotations

import asyncio
import html
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from soku.sandbox.common import control_routes, fake_app
from soku.sandbox.fault_gate import FakeGate
from soku.sandbox.tiktok_oauth import oauth_routes
from soku.sandbox.tiktok_posting import posting_routes, pull
from soku.sandbox.tiktok_state import (
    CALL_KINDS,
    Creator,
    FakeState,
    FaultSpec,
    OAuthError,
    Publish,
    TikTokError,
)

# The per-minute limits per token, by the config field that holds each (tiktok.md).
LIMITS = {"init": "init_per_minute", "creator_info": "creator_info_per_minute",
          "status": "status_per_minute"}  # fmt: skip


class NewCreator(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=r"^[A-Za-z0-9_.]{2,24}$")
    open_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    access_token: str | None = None
    refresh_token: str | None = None
    expires_in: float | None = Field(default=None, ge=0)  # 0: expired already


class TikTokFake(FakeGate[FakeState, FaultSpec]):
    """What the routes share: the state, the gate every API call passes, media pulling."""

    status_kinds = ("status",)

    def __init__(self, public_url: str, media_origin: str) -> None:
        super().__init__(FakeState(), public_url)
        self.fetch_origin = media_origin  # media pulled only from here when given

    async def gate(
        self, request: Request, kind: str, limit: str | None = None
    ) -> tuple[Creator, str, FaultSpec | None]:
        """The caller's bearer token, the call counted and throttled (by `limit`, a key of
        `LIMITS`), a fault applied; a fault that lets the call through first is returned."""
        state = self.state
        await asyncio.sleep(state.config.latency_ms / 1000)
        state.calls[kind] += 1
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        creator = state.creator_for(token.strip() if scheme.lower() == "bearer" else "")
        fault = await self.apply_fault(kind, creator.open_id)
        if limit is not None:
            state.throttle(token, limit, getattr(state.config, LIMITS[limit]))
        return creator, token, fault

    async def finish_fault(self, fault: FaultSpec | None) -> None:
        """A publish accepted, then its answer delayed and, if the fault says so, an error."""
        if fault is None or fault.accept_then_delay is None:
            return
        await asyncio.sleep(fault.accept_then_delay)
        error = fault.error()
        if error is not None:
            raise error

    async def pull(self, publish: Publish, image: bool) -> None:
        await pull(self.state, self.fetch_origin, publish, image)


def create_tiktok_fake(public_url: str = "", *, media_origin: str = "") -> FastAPI:
    """The fake as an ASGI app; `public_url` is where it is reachable (else from the request).
    With `media_origin` it pulls media only from that URL's origin, else from any http(s) URL."""
    app = fake_app("Soku sandbox: TikTok Content Posting API")
    fake = TikTokFake(public_url, media_origin)
    app.state.fake = fake.state
    _error_handlers(app)
    oauth_routes(app, fake)
    posting_routes(app, fake)
    control_routes(app, fake.state, FaultSpec, CALL_KINDS)
    _sandbox_routes(app, fake)
    return app


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TikTokError)
    async def tiktok_error(request: Request, exc: TikTokError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(OAuthError)
    async def oauth_error(request: Request, exc: OAuthError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        message = str(errors[0]["msg"]) if errors else "The request is invalid."
        return await tiktok_error(request, TikTokError("invalid_params", message))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # (U) TikTok's answer for an unknown path
        error = TikTokError("invalid_params", "The requested path does not exist.", exc.status_code)
        return await tiktok_error(request, error)


def _sandbox_routes(app: FastAPI, fake: TikTokFake) -> None:
    state = fake.state

    @app.post("/_users", status_code=201)
    async def add_creator(body: NewCreator) -> dict[str, Any]:
        creator = state.add_creator(body.username, body.open_id)
        expires = None if body.expires_in is None else time.time() + body.expires_in
        if body.access_token:
            state.tokens[body.access_token] = (creator.open_id, expires)
        if body.refresh_token:
            lifetime = state.config.refresh_lifetime_secs
            state.refresh_tokens[body.refresh_token] = (creator.open_id, time.time() + lifetime)
        return {"open_id": creator.open_id, "username": creator.username}

    @app.get("/_inspect/posts")
    async def posts(request: Request) -> dict[str, Any]:
        base = fake.base_url(request)
        shown = [p for p in state.publishes.values() if p.uploaded and not p.fail_reason]
        return {"posts": [_inspected(state, p, base) for p in shown]}

    @app.get("/_inspect/publishes")
    async def publishes() -> dict[str, Any]:
        return {"publishes": [_publish_view(p) for p in state.publishes.values()]}

    @app.get("/@{username}/{kind}/{post_id}", response_class=HTMLResponse)
    async def page(username: str, kind: str, post_id: str) -> HTMLResponse:
        found = next((p for p in state.publishes.values() if str(p.post_id) == post_id), None)
        creator = state.creators.get(found.open_id) if found else None
        if found is None or creator is None or creator.username != username:
            return HTMLResponse("<!doctype html><h1>Couldn't find this post</h1>", 404)
        e, text = html.escape, str(found.post_info.get("title") or found.post_info.get(
            "description") or "")  # fmt: skip
        items = "".join(f"<li><a href='{e(url)}'>{e(url)}</a></li>" for url in found.urls)
        return HTMLResponse(
            f"<!doctype html><meta charset=utf-8><title>@{e(username)} on TikTok</title>"
            f"<article><p>@{e(username)}</p><p class=text>{e(text)}</p><ul>{items}</ul>"
            f"<p>{e(found.kind)}, {e(str(found.post_info.get('privacy_level')))}</p></article>"
        )


def _publish_view(publish: Publish) -> dict[str, Any]:
    return {
        "publish_id": publish.id, "open_id": publish.open_id, "kind": publish.kind,
        "source": publish.source, "total_bytes": publish.total_bytes,
        "chunk_size": publish.chunk_size, "chunk_count": publish.chunk_count,
        "received": publish.received, "chunks": len(publish.chunks),
        "fail_reason": publish.fail_reason, "post_id": publish.post_id,
    }  # fmt: skip


def _inspected(state: FakeState, publish: Publish, base: str) -> dict[str, Any]:
    """A post as `/_inspect/posts` shows it: what was sent, and where it can be seen."""
    creator = state.creators[publish.open_id]
    info, photo = publish.post_info, publish.kind == "PHOTO"
    privacy = info.get("privacy_level") if state.config.audited else "SELF_ONLY"
    # a video's upload is known by its publish_id and its bytes' digest
    uploaded = {"id": publish.id, "bytes": publish.received, "sha256": publish.digest.hexdigest()}
    media: list[Any] = [*publish.urls] or [uploaded]
    return {
        "id": str(publish.post_id),
        "publish_id": publish.id,
        "open_id": creator.open_id,
        "username": creator.username,
        "kind": publish.kind,
        "text": str(info.get("description" if photo else "title") or ""),
        "privacy_level": privacy,
        "media": media,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(publish.created_at)),
        "url": f"{base}/@{creator.username}/{'photo' if photo else 'video'}/{publish.post_id}",
    }
