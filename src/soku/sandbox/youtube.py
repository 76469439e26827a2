"""A fake of the YouTube Data API v3 at Google's own paths, for sandbox accounts and tests.

It follows /work/shared/platforms/youtube.md: the resumable `videos.insert` (a session opened
with the video resource, chunks answered 308 with `Range`, the last one 201 with the video,
questions `bytes */total`, sessions that expire into 404), `videos.list` with `status` and
`processingDetails` going processing → succeeded (or failed), Google's OAuth 2.0 and
`channels.list?mine=true` (`youtube_oauth.py`), the daily quota in either documented model
(`quotaExceeded`), a channel's upload cap (`uploadLimitExceeded`) and Google's error envelope.
Unverified facts are knobs (`/_config`: see `youtube_state.FakeConfig`).

Any bearer token is accepted: one the fake did not issue names a new sandbox channel (register
channels and tokens with `POST /_users`). Besides Google's paths: `/_inspect/posts` (the
videos), `/_faults`, `/_config`, `/_expire_sessions` and the watch page `/watch?v={id}`.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from soku.sandbox.common import control_routes, fake_app
from soku.sandbox.youtube_faults import CALL_KINDS, FaultSpec, YouTubeError, api_error
from soku.sandbox.youtube_gate import YouTubeFake
from soku.sandbox.youtube_oauth import oauth_routes
from soku.sandbox.youtube_state import FakeState
from soku.sandbox.youtube_videos import describe, listing_routes, video_routes


class NewChannel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    title: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None


def create_youtube_fake(public_url: str = "") -> FastAPI:
    """The fake as an ASGI app; `public_url` is where it is reachable (else from the request)."""
    app = fake_app("Soku sandbox: YouTube Data API v3")
    fake = YouTubeFake(FakeState(), public_url)
    app.state.fake = fake.state
    _error_handlers(app)
    oauth_routes(app, fake)
    video_routes(app, fake)
    listing_routes(app, fake)
    _control_routes(app, fake)
    control_routes(app, fake.state, FaultSpec, CALL_KINDS)
    return app


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(YouTubeError)
    async def youtube_error(request: Request, exc: YouTubeError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        message = str(errors[0]["msg"]) if errors else "Bad Request"
        return await youtube_error(request, api_error(400, "badRequest", message, "global"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        reason = "notFound" if exc.status_code == 404 else "badRequest"
        error = api_error(exc.status_code, reason, str(exc.detail), "global")
        return await youtube_error(request, error)


def _control_routes(app: FastAPI, fake: YouTubeFake) -> None:
    state = fake.state

    @app.post("/_users", status_code=201)
    async def add_channel(body: NewChannel) -> dict[str, Any]:
        channel = state.add_channel(body.id, body.title)
        if body.access_token:
            state.tokens[body.access_token] = (channel.id, None)
        if body.refresh_token:
            lasting = state.config.refresh_lifetime_secs
            expires = None if lasting is None else time.time() + lasting
            state.refresh_tokens[body.refresh_token] = (channel.id, expires)
        return {"id": channel.id, "title": channel.title, "handle": channel.handle}

    @app.post("/_expire_sessions")
    async def expire_sessions() -> dict[str, int]:
        """Every upload session not yet complete expires now (its URI answers 404)."""
        open_sessions = [s for s in state.sessions.values() if not s.video_id]
        for session in open_sessions:
            session.expires_at = 0.0
        return {"expired": len(open_sessions)}

    @app.get("/_inspect/posts")
    async def posts(request: Request) -> dict[str, Any]:
        base = fake.base_url(request)
        return {"posts": [describe(video, base) for video in state.videos.values()]}

    @app.get("/_inspect/sessions")
    async def sessions() -> dict[str, Any]:
        return {"sessions": [
            {"channel_id": s.channel_id, "received": s.received, "total": s.total,
             "puts": [list(p) for p in s.puts], "video_id": s.video_id or None}
            for s in state.sessions.values()
        ]}  # fmt: skip
