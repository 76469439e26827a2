"""The sign-in the Graph container fakes (Threads, Instagram) share: the consent page, the
code's redemption and the exchange of a short-lived token for a long-lived one
(`sign_in_routes`).

Each fake answers the code's token in its own shape (`POST /oauth/access_token`); the
exchange, `GET /access_token?grant_type=<grant>&client_secret&access_token=<short>`, answers
`{"access_token", "token_type": "bearer", "expires_in"}` for both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from soku.sandbox.consent import CodeBook, ConsentSite, Grant, consent_routes
from soku.sandbox.graph import client_refused, code_refused, invalid_parameter, named_fault
from soku.sandbox.graph_fake import GraphFake


class _OAuthConfig(Protocol):
    @property
    def client_secret(self) -> str | None: ...
    @property
    def code_lifetime_secs(self) -> float: ...
    @property
    def token_lifetime_secs(self) -> int: ...


class OAuthState(Protocol):
    """What the sign-in reads and writes of a fake's state."""

    @property
    def config(self) -> _OAuthConfig: ...
    @property
    def users(self) -> Mapping[str, Any]: ...
    @property
    def codes(self) -> CodeBook: ...
    @property
    def short_tokens(self) -> set[str]: ...
    def add_user(self, username: str | None = None, user_id: str | None = None) -> Any: ...
    def user_for_token(self, token: str, /) -> Any: ...
    def new_token(self, user_id: str, lifetime: float, /) -> str: ...


def sign_in_routes(
    app: FastAPI,
    fake: GraphFake[Any, Any, Any],
    label: str,
    exchange_grant: str,
    answer: Callable[[str, str], Any],
) -> None:
    """The consent page, `POST /oauth/access_token` (a short-lived token for a code, answered
    as `answer(token, user_id)` gives it) and the exchange (`GET /access_token`)."""
    state = fake.state
    graph_consent(app, label, state)

    @app.post("/oauth/access_token")
    async def token(request: Request) -> JSONResponse:
        found = await redeemed_code(fake, state, request)
        short = state.new_token(found.subject, state.config.short_token_lifetime_secs)
        state.short_tokens.add(short)
        return JSONResponse(answer(short, found.subject))

    exchange_route(app, fake, state, exchange_grant)


def graph_consent(app: FastAPI, label: str, state: OAuthState) -> None:
    """`GET /oauth/authorize`: the consent page, no PKCE; a login names its account."""
    consent_routes(
        app,
        ConsentSite(
            label=label,
            path="/oauth/authorize",
            pkce=False,
            default_login="sandbox_user",
            login_pattern=r"[A-Za-z0-9_.]{1,30}",
            sign_in=lambda login: _user_named(state, login).id,
            code_lifetime=lambda: state.config.code_lifetime_secs,
            codes=lambda: state.codes,
        ),
    )


async def redeemed_code(
    fake: GraphFake[Any, Any, Any], state: OAuthState, request: Request
) -> Grant:
    """The grant of the code `POST /oauth/access_token` brings, its client checked."""
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
    return found


def exchange_route(
    app: FastAPI, fake: GraphFake[Any, Any, Any], state: OAuthState, grant_type: str
) -> None:
    """`GET /access_token`: a long-lived token for a short-lived one."""

    @app.get("/access_token")
    async def exchange(request: Request) -> JSONResponse:
        params = dict(request.query_params)
        await fake.fault("token", None)
        if params.get("grant_type") != grant_type:
            raise invalid_parameter(f"(#100) Param grant_type must be {grant_type}")
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


def _user_named(state: OAuthState, login: str) -> Any:
    for user in state.users.values():
        if user.username == login:
            return user
    return state.add_user(login)


def _check_secret(state: OAuthState, secret: str | None) -> None:
    wanted = state.config.client_secret
    if not secret or (wanted is not None and secret != wanted):
        raise client_refused()


async def _params(request: Request) -> dict[str, str]:
    params = dict(request.query_params)
    form = await request.form()
    params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params
