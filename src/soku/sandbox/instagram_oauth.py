"""The Instagram fake's sign-in (Instagram Login; instagram.md, "Auth").

- `GET /oauth/authorize`: `client_id`, `redirect_uri`, `scope` (comma-separated),
  `response_type=code`, `state`; no PKCE. A code is good once, for an hour.
- `POST /oauth/access_token` (api.instagram.com's path): `client_id`, `client_secret`,
  `code`, `grant_type=authorization_code`, `redirect_uri` as form fields → a short-lived
  token (1 h) as `{"data": [{"access_token", "user_id", "permissions"}]}`, the documented
  shape, or flat as seen in practice (`token_answer` in `/_config`).
- `GET /access_token?grant_type=ig_exchange_token&client_secret&access_token=<short>` →
  `{"access_token", "token_type": "bearer", "expires_in"}`, a long-lived token (60 days).

Errors are Graph errors, as the rest of the API answers them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from soku.sandbox.consent import ConsentSite, consent_routes
from soku.sandbox.graph import client_refused, code_refused, invalid_parameter, named_fault

if TYPE_CHECKING:
    from soku.sandbox.instagram import InstagramFake
    from soku.sandbox.instagram_state import FakeState, User

PERMISSIONS = "instagram_business_basic,instagram_business_content_publish"


def oauth_routes(app: FastAPI, fake: InstagramFake) -> None:
    state = fake.state
    consent_routes(
        app,
        ConsentSite(
            label="Instagram",
            path="/oauth/authorize",
            pkce=False,
            default_login="sandbox_user",
            login_pattern=r"[A-Za-z0-9_.]{1,30}",
            sign_in=lambda login: _user_named(state, login).id,
            code_lifetime=lambda: state.config.code_lifetime_secs,
            codes=lambda: state.codes,
        ),
    )
    _code_route(app, fake)
    _exchange_route(app, fake)


def _code_route(app: FastAPI, fake: InstagramFake) -> None:
    state = fake.state

    @app.post("/oauth/access_token")
    async def token(request: Request) -> JSONResponse:
        params = await _params(request)
        await fake.fault("token", None)
        _check_secret(state, params.get("client_secret"))
        if params.get("grant_type") != "authorization_code":
            raise invalid_parameter("(#100) grant_type must be authorization_code")
        found = state.codes.redeem(
            params.get("code", ""), params.get("client_id", ""), params.get("redirect_uri", ""),
            None,
        )  # fmt: skip
        if isinstance(found, str):
            raise code_refused(found)
        short = state.new_token(found.subject, state.config.short_token_lifetime_secs)
        state.short_tokens.add(short)
        user_id: Any = int(found.subject)  # a number in Meta's example
        row = {"access_token": short, "user_id": user_id, "permissions": PERMISSIONS}
        nested = state.config.token_answer == "nested"  # noqa: S105 (a shape, not a secret)
        return JSONResponse({"data": [row]} if nested else row)


def _exchange_route(app: FastAPI, fake: InstagramFake) -> None:
    state = fake.state

    @app.get("/access_token")
    async def exchange(request: Request) -> JSONResponse:
        params = dict(request.query_params)
        await fake.fault("token", None)
        if params.get("grant_type") != "ig_exchange_token":
            raise invalid_parameter("(#100) Param grant_type must be ig_exchange_token")
        _check_secret(state, params.get("client_secret"))
        short = params.get("access_token", "")
        if short not in state.short_tokens:
            raise named_fault("token_invalid")
        user = state.user_for_token(short)  # an expired one: 190/463
        lifetime = state.config.token_lifetime_secs
        lasting = state.new_token(user.id, lifetime)
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
