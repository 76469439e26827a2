"""The Threads fake's OAuth 2.0 (threads.md, "Auth").

- `GET /oauth/authorize` (threads.net's path): `client_id`, `redirect_uri`,
  `scope` (comma-separated), `response_type=code`, `state`. No PKCE.
- `POST /oauth/access_token`: `client_id`, `client_secret`, `code`,
  `grant_type=authorization_code`, `redirect_uri` (query or form) → `{"access_token",
  "user_id"}`, a short-lived token (1 h).
- `GET /access_token?grant_type=th_exchange_token&client_secret&access_token=<short>` →
  `{"access_token", "token_type": "bearer", "expires_in"}`, a long-lived token (60 days).

Errors are Graph errors, as the rest of the Threads API answers them.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from soku.sandbox.consent import ConsentSite, consent_routes
from soku.sandbox.graph import client_refused, code_refused, invalid_parameter, named_fault

if TYPE_CHECKING:
    from soku.sandbox.threads import ThreadsFake
    from soku.sandbox.threads_state import FakeState, User


def oauth_routes(app: FastAPI, fake: ThreadsFake) -> None:
    state = fake.state
    consent_routes(
        app,
        ConsentSite(
            label="Threads",
            path="/oauth/authorize",
            pkce=False,
            default_login="sandbox_user",
            login_pattern=r"[A-Za-z0-9_.]{1,30}",
            sign_in=lambda login: _user_named(state, login).id,
            code_lifetime=lambda: state.config.code_lifetime_secs,
            codes=lambda: state.codes,
        ),
    )

    @app.post("/oauth/access_token")
    async def token(request: Request) -> JSONResponse:
        params = await _params(request)
        await fake.fault("token", None)
        _check_secret(state, params.get("client_secret"))
        if params.get("grant_type") != "authorization_code":
            raise invalid_parameter("(#100) grant_type must be authorization_code")
        found = state.codes.redeem(
            params.get("code", ""),
            params.get("client_id", ""),
            params.get("redirect_uri", ""),
            None,
        )
        if isinstance(found, str):
            raise code_refused(found)
        short = "TH" + secrets.token_urlsafe(32)
        state.add_token(short, found.subject, state.config.short_token_lifetime_secs)
        state.short_tokens.add(short)
        return JSONResponse({"access_token": short, "user_id": found.subject})

    @app.get("/access_token")
    async def exchange(request: Request) -> JSONResponse:
        params = dict(request.query_params)
        await fake.fault("token", None)
        if params.get("grant_type") != "th_exchange_token":
            raise invalid_parameter("(#100) Param grant_type must be th_exchange_token")
        _check_secret(state, params.get("client_secret"))
        short = params.get("access_token", "")
        if short not in state.short_tokens:
            raise named_fault("token_invalid")
        user = state.user_for_token(short)  # an expired one: 190/463
        lasting, lifetime = "TH" + secrets.token_urlsafe(32), state.config.token_lifetime_secs
        state.add_token(lasting, user.id, lifetime)
        return JSONResponse(
            {"access_token": lasting, "token_type": "bearer", "expires_in": lifetime}
        )


def _user_named(state: FakeState, login: str) -> User:
    for user in state.users.values():
        if user.username == login:
            return user
    return state.add_user(login)


def _check_secret(state: FakeState, secret: str | None) -> None:
    wanted = state.config.client_secret
    if not secret or (wanted is not None and secret != wanted):
        raise client_refused()


async def _params(request: Request) -> dict[str, str]:
    params = dict(request.query_params)
    form = await request.form()
    params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params
