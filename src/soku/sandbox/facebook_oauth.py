"""The Facebook fake's Login for Pages (facebook.md, "Auth").

- `GET /{version}/dialog/oauth` (www.facebook.com's path): `client_id`, `redirect_uri`,
  `state`, `scope` (comma-separated), `response_type=code`. No PKCE.
- `GET|POST /{version}/oauth/access_token` with `client_id`, `client_secret`, `redirect_uri`
  and `code` → a short-lived user token `{"access_token", "token_type", "expires_in"}`; or
  with `grant_type=fb_exchange_token` and `fb_exchange_token=<short>` → a long-lived one
  (about 60 days).
- `GET /me/accounts` with a user token lists the user's Pages with fresh Page tokens (in
  `facebook.py`), `limit` (1-100, 25 by default) at a time, the next ones by the `after`
  cursor of `paging.cursors` (with `paging.next` while more follow). A sandbox user signs in
  by name on the consent page and manages `pages_per_user` Pages (a `_config` knob, 1 by
  default), made on their first sign-in.

Errors are Graph errors (code 100 for a code it will not exchange, 1 for a bad secret).
`/_config`'s `padding` (`{"token": <bytes>, "accounts": <bytes>}`) pads the answers of the
token endpoint or of `/me/accounts`, to test a client's cap on what it reads.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from soku.sandbox.common import apply_fault
from soku.sandbox.consent import ConsentSite, consent_routes
from soku.sandbox.facebook_params import G, read_params
from soku.sandbox.facebook_state import FaultSpec
from soku.sandbox.graph import client_refused, code_refused, named_fault

if TYPE_CHECKING:
    from soku.sandbox.facebook import FacebookFake
    from soku.sandbox.facebook_state import FakeState

LONG_LIVED_SECS = 5183944  # facebook.md: `expires_in` of a long-lived user token
SHORT_LIVED_SECS = 5400  # (U) "short-lived": an hour or two


def oauth_routes(app: FastAPI, fake: FacebookFake) -> None:
    """The dialog and the token endpoint; mounted before Graph's `/{node}/{edge}` routes."""
    state = fake.state
    consent_routes(
        app,
        ConsentSite(
            label="Facebook",
            path=G + "/dialog/oauth",
            pkce=False,
            default_login="sandbox.user",
            login_pattern=r"[A-Za-z0-9_.]{1,50}",
            sign_in=lambda login: _sign_in(state, login),
            code_lifetime=lambda: state.config.code_lifetime_secs,
            codes=lambda: state.codes,
        ),
    )

    async def token(request: Request) -> JSONResponse:
        params = await read_params(request)
        state.calls["token"] += 1
        await apply_fault(state.faults, "token", None, (), error=FaultSpec.error)
        if not params.get("client_id") or not _secret_ok(state, params.get("client_secret")):
            raise client_refused()
        if params.get("grant_type") == "fb_exchange_token":
            lasting = _exchange(state, str(params.get("fb_exchange_token") or ""))
            return JSONResponse(state.padded("token", lasting))
        found = state.codes.redeem(
            str(params.get("code") or ""),
            str(params["client_id"]),
            str(params.get("redirect_uri") or ""),
            None,
        )
        if isinstance(found, str):
            raise code_refused(found)
        short = _user_token(state, found.subject)
        state.short_tokens[short] = found.subject
        answer = {"access_token": short, "token_type": "bearer", "expires_in": SHORT_LIVED_SECS}
        return JSONResponse(state.padded("token", answer))

    app.add_api_route(G + "/oauth/access_token", token, methods=["GET", "POST"])


def _sign_in(state: FakeState, login: str) -> str:
    """The sandbox user `login`, with their Pages made on the first sign-in."""
    if login not in state.people:
        state.people[login] = []
        for number in range(1, state.config.pages_per_user + 1):
            page_id = state.new_id()
            state.add_page(page_id, f"{login} sandbox Page {number}", None, None)
            state.people[login].append(page_id)
    return login


def _user_token(state: FakeState, login: str) -> str:
    token = "EAA" + secrets.token_urlsafe(32)
    state.user_pages[token] = state.people.setdefault(login, [])  # the same list: new Pages too
    return token


def _exchange(state: FakeState, short: str) -> dict[str, Any]:
    login = state.short_tokens.get(short)
    if login is None:
        raise named_fault("token_invalid")
    return {"access_token": _user_token(state, login), "token_type": "bearer",
            "expires_in": LONG_LIVED_SECS, "issued_at": int(time.time())}  # fmt: skip


def _secret_ok(state: FakeState, secret: Any) -> bool:
    wanted = state.config.client_secret
    return isinstance(secret, str) and bool(secret) and wanted in (None, secret)
