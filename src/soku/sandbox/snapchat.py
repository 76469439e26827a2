"""A fake of Snapchat's Public Profile API at Snapchat's own paths, for sandbox accounts and tests.

It follows /work/shared/platforms/snapchat.md: OAuth 2.0 at accounts.snapchat.com's paths
(`snapchat_oauth.py`: the consent page `/login/oauth2/authorize`, the token endpoint
`/login/oauth2/access_token` with the authorization code and refresh grants); the profile
(`GET /v1/public_profiles/my_profile`); media containers uploaded encrypted in parts and
finalized, then posted to the Story or Spotlight (`snapchat_media.py`, checked by
`snapchat_checks.py`); Snapchat's envelope on every answer, errors included.

Any bearer token is accepted: one the fake did not issue names a new sandbox profile, which
becomes the profile it first posts as (register profiles and tokens with `POST /_users`).
Besides Snapchat's paths: `/_inspect/posts`, `/_inspect/media`, `/_faults`, `/_config`, and
the profile page `/@{name}` (the only link Snapchat gives a post). Its memory lives in
`snapchat_state.py`, its errors and faults in `snapchat_faults.py`.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from soku.sandbox.common import control_routes, fake_app
from soku.sandbox.snapchat_faults import CALL_KINDS, FaultSpec, SnapError, api_error
from soku.sandbox.snapchat_gate import SnapchatFake
from soku.sandbox.snapchat_media import media_routes
from soku.sandbox.snapchat_oauth import oauth_routes
from soku.sandbox.snapchat_state import FakeState, Post


class NewProfile(BaseModel):
    """A profile registered by a test, with the tokens it is known by."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=100)
    username: str | None = Field(default=None, max_length=40)
    access_token: str | None = None
    refresh_token: str | None = None


def create_snapchat_fake(public_url: str = "") -> FastAPI:
    """The fake as an ASGI app; `public_url` is where it is reachable (else from the request)."""
    app = fake_app("Soku sandbox: Snapchat Public Profile API")
    fake = SnapchatFake(FakeState(), public_url)
    app.state.fake = fake.state
    _error_handlers(app)
    oauth_routes(app, fake)
    media_routes(app, fake)
    _control_routes(app, fake)
    control_routes(app, fake.state, FaultSpec, CALL_KINDS)
    _profile_page(app, fake)
    return app


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SnapError)
    async def snap_error(request: Request, exc: SnapError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"msg": "Invalid request", "loc": ()}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        error = api_error(400, "INVALID_REQUEST", f"{first['msg']} ({where or 'body'})")
        return await snap_error(request, error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "NOT_FOUND" if exc.status_code == 404 else "INVALID_REQUEST"
        return await snap_error(request, api_error(exc.status_code, code, str(exc.detail)))


def _control_routes(app: FastAPI, fake: SnapchatFake) -> None:
    state = fake.state

    @app.post("/_users", status_code=201)
    async def add_profile(body: NewProfile) -> dict[str, Any]:
        profile = state.add_profile(body.id, body.username)
        if body.access_token:
            state.tokens[body.access_token] = (profile.id, None)
        if body.refresh_token:
            state.refresh_tokens[body.refresh_token] = profile.id
        return profile.view()

    @app.get("/_inspect/posts")
    async def posts(request: Request) -> dict[str, Any]:
        base = fake.base_url(request)
        return {"posts": [_inspected(state, post, base) for post in state.posts]}

    @app.get("/_inspect/media")
    async def media() -> dict[str, Any]:
        return {"media": [item.describe() for item in state.media.values()]}


def _inspected(state: FakeState, post: Post, base: str) -> dict[str, Any]:
    """A post as `/_inspect/posts` shows it: what was sent, what a viewer sees, where."""
    profile = state.profiles.get(post.profile_id)
    username = profile.username if profile else ""
    return {
        "id": post.id,
        "kind": post.kind,
        "profile_id": post.profile_id,
        "username": username,
        "text": post.body.get("description"),  # a Story has no text
        "name": state.media[post.media_id].name,  # the media's, as the profile's owner sees it
        "body": post.body,
        "media": [state.media[post.media_id].describe()],
        "created_at": dt.datetime.fromtimestamp(post.created_at, dt.UTC).isoformat(),
        "url": f"{base}/@{username}",
    }


def _profile_page(app: FastAPI, fake: SnapchatFake) -> None:
    state = fake.state

    @app.get("/@{username}", response_class=HTMLResponse)
    async def page(username: str) -> HTMLResponse:
        profile = next((p for p in state.profiles.values() if p.username == username), None)
        if profile is None:
            raise api_error(404, "NOT_FOUND", f"No profile @{username}")
        e = html.escape
        items = "".join(
            f"<li>{e(post.kind)} {e(post.id)}: {e(state.media[post.media_id].type.lower())}"
            f" {e(str(post.body.get('description') or ''))}</li>"
            for post in state.posts
            if post.profile_id == profile.id
        )
        return HTMLResponse(
            f"<!doctype html><meta charset=utf-8><title>@{e(username)} (sandbox Snapchat)"
            f"</title><h1>{e(profile.display_name)} (@{e(username)})</h1><ul>{items}</ul>"
        )
