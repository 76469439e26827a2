"""A fake of LinkedIn's versioned REST API at LinkedIn's own paths, for sandbox accounts and tests.

It follows /work/shared/platforms/linkedin.md: `POST /rest/posts` answering 201 with the post
URN in `x-restli-id`; the author finder `GET /rest/posts?q=author`; the Images API
(`initializeUpload`, a PUT of the bytes to the returned uploadUrl, `GET /rest/images/{urn}`);
the Videos API (`initializeUpload` with fileSizeBytes, one PUT per uploadInstruction answered
with an `ETag`, `finalizeUpload` with the ETags in order, `GET /rest/videos/{urn}` going
PROCESSING → AVAILABLE or PROCESSING_FAILED); OAuth 2.0 (`linkedin_oauth.py`: the consent
page `/oauth/v2/authorization`, `POST /oauth/v2/accessToken` with the authorization code and
refresh grants, refresh tokens that do not rotate and keep their first expiry, and
`GET /v2/userinfo`); LinkedIn's error bodies. Every `/rest/` call needs
`LinkedIn-Version: YYYYMM` (missing: 400; inactive: 426 NONEXISTENT_VERSION, as implementers
report) and `X-Restli-Protocol-Version: 2.0.0` (refused without it: a knob, since LinkedIn
itself falls back to Rest.li 1.0), and URNs in paths URL-encoded.

Any bearer token is accepted: one the fake did not issue names a new sandbox member (register
members and tokens with `POST /_users`). A member posts as themself or as any organization.
Besides LinkedIn's paths: `/_inspect/posts`, `/_faults`, `/_config` and the permalink page
`/feed/update/{urn}/`. Posts and that page are served by `linkedin_posts.py`, images and
videos by `linkedin_media.py`, each call checked by `linkedin_gate.py`; its memory lives in
`linkedin_state.py`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from soku.sandbox.common import control_routes, fake_app
from soku.sandbox.linkedin_bodies import NewMember
from soku.sandbox.linkedin_faults import (
    CALL_KINDS,
    FaultSpec,
    LinkedInError,
    api_error,
)
from soku.sandbox.linkedin_gate import LinkedInFake
from soku.sandbox.linkedin_media import image_routes, upload_route, video_routes
from soku.sandbox.linkedin_oauth import oauth_routes
from soku.sandbox.linkedin_posts import page_route, post_routes
from soku.sandbox.linkedin_state import FakeState, Post, read_little_text


def create_linkedin_fake(public_url: str = "") -> FastAPI:
    """The fake as an ASGI app; `public_url` is where it is reachable (else from the request)."""
    app = fake_app("Soku sandbox: LinkedIn REST API")
    fake = LinkedInFake(FakeState(), public_url)
    app.state.fake = fake.state
    _error_handlers(app)
    oauth_routes(app, fake)
    post_routes(app, fake)
    image_routes(app, fake)
    video_routes(app, fake)
    upload_route(app, fake)
    _control_routes(app, fake)
    control_routes(app, fake.state, FaultSpec, CALL_KINDS)
    page_route(app, fake)
    return app


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LinkedInError)
    async def linkedin_error(request: Request, exc: LinkedInError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # (U) LinkedIn's validation answers: 422 with errorDetails.inputErrors.
        inputs = [
            {"description": e["msg"], "input": {"inputPath": {"fieldPath": ".".join(
                str(p) for p in e["loc"] if p != "body")}}, "code": "INVALID_VALUE"}
            for e in exc.errors()
        ]  # fmt: skip
        error = api_error(422, inputs[0]["description"] if inputs else "Invalid request",
                          errorDetailType="com.linkedin.common.error.BadRequest",
                          errorDetails={"inputErrors": inputs})  # fmt: skip
        return await linkedin_error(request, error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = {"status": exc.status_code, "code": "RESOURCE_NOT_FOUND"}
        body["message"] = "No virtual resource found"
        return JSONResponse(body, status_code=exc.status_code)


def _control_routes(app: FastAPI, fake: LinkedInFake) -> None:
    state = fake.state

    @app.post("/_users", status_code=201)
    async def add_member(body: NewMember) -> dict[str, Any]:
        member = state.add_member(body.id, body.name)
        if body.access_token:
            state.tokens[body.access_token] = (member.id, None)
        if body.refresh_token:
            lifetime = state.config.refresh_lifetime_secs
            expires = dt.datetime.now(dt.UTC).timestamp() + lifetime
            state.refresh_tokens[body.refresh_token] = (member.id, expires)
        return {"id": member.id, "urn": member.urn, "name": member.name}

    @app.get("/_inspect/posts")
    async def posts(request: Request) -> dict[str, Any]:
        base = fake.base_url(request)
        return {"posts": [_inspected(state, post, base) for post in state.posts]}


def _inspected(state: FakeState, post: Post, base: str) -> dict[str, Any]:
    """A post as `/_inspect/posts` shows it: what was sent, what a reader sees, where."""
    return {
        "id": post.urn,
        "author": post.author,
        "member_id": post.user_id,
        "text": read_little_text(post.commentary, state.config.truncate_unescaped),
        "commentary": post.commentary,
        "content": post.body.get("content"),
        "media": [state.media[urn].describe() for urn in post.media_urns],
        "visible": post.visible,
        "created_at": dt.datetime.fromtimestamp(post.created_ms / 1000, dt.UTC).isoformat(),
        "url": f"{base}/feed/update/{post.urn}/",
    }
