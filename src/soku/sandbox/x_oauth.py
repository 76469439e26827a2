"""The X fake's OAuth 2.0: the consent page and the token endpoint (x.md, "Auth").

- `GET /i/oauth2/authorize` (x.com's path): `response_type=code`, `client_id`,
  `redirect_uri`, `scope` (space-separated), `state` (≤ 500), `code_challenge` and
  `code_challenge_method` (S256 or plain): PKCE is required.
- `POST /2/oauth2/token` (api.x.com's path), form-encoded:
  `grant_type=authorization_code` with `code`, `redirect_uri` and `code_verifier`; a
  confidential client authenticates with HTTP Basic, a public one sends `client_id` in the
  body; the code works once, within 30 s, for its client, redirect URI and verifier.
  `grant_type=refresh_token` rotates the refresh token. Answers
  `{token_type, expires_in, access_token, scope, refresh_token}` (the refresh token only with
  `offline.access`); errors are `{"error", "error_description"}`.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from soku.sandbox.consent import ConsentSite, Grant, consent_routes
from soku.sandbox.x_faults import XError, oauth_error

if TYPE_CHECKING:
    from soku.sandbox.x import XFake

_INVALID_CODE = "Value passed for the authorization code was invalid."
_REFUSED = {
    "unknown": _INVALID_CODE,
    "used": _INVALID_CODE,
    "expired": "The authorization code has expired.",
    "client": _INVALID_CODE,
    "redirect_uri": "Value passed for the redirect uri did not match the uri of the "
    "authorization code.",
    "verifier": "Value passed for the code verifier did not match the code challenge.",
}


def oauth_routes(app: FastAPI, fake: XFake) -> None:
    state = fake.state
    consent_routes(
        app,
        ConsentSite(
            label="X",
            path="/i/oauth2/authorize",
            pkce=True,
            default_login="sandbox_user",
            login_pattern=r"[A-Za-z0-9_]{1,15}",
            sign_in=lambda login: state.user_named(login).id,
            code_lifetime=lambda: state.config.code_lifetime_secs,
            codes=lambda: state.codes,
        ),
    )

    @app.post("/2/oauth2/token")
    async def token(request: Request) -> JSONResponse:
        state.calls["token"] += 1
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        await fake.apply_fault("token", None)
        client_id = _client(request, form, fake)
        grant_type = form.get("grant_type")
        if grant_type == "refresh_token":
            return JSONResponse(state.refresh(form.get("refresh_token", ""), client_id))
        if grant_type != "authorization_code":
            description = "grant_type must be authorization_code or refresh_token."
            raise oauth_error(400, "unsupported_grant_type", description)
        grant = _redeem(fake, form, client_id)
        return JSONResponse(state.grant(grant.subject, grant.scope))


def _client(request: Request, form: dict[str, str], fake: XFake) -> str | None:
    """The client: HTTP Basic (a confidential one, its secret checked when configured) or
    `client_id` in the body (a public one)."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return form.get("client_id")
    try:
        decoded = base64.b64decode(credentials.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise _unauthorized() from None
    client_id, _, secret = decoded.partition(":")
    wanted = fake.state.config.client_secret
    if wanted is not None and unquote(secret) != wanted:
        raise _unauthorized()
    return unquote(client_id)


def _unauthorized() -> XError:
    return oauth_error(401, "unauthorized_client", "Missing valid authorization header")


def _redeem(fake: XFake, form: dict[str, str], client_id: str | None) -> Grant:
    code = form.get("code", "")
    if not client_id:
        raise _unauthorized()
    if not code:
        raise oauth_error(400, "invalid_request", "Missing required parameter [code].")
    found = fake.state.codes.redeem(
        code, client_id, form.get("redirect_uri", ""), form.get("code_verifier")
    )
    if isinstance(found, str):
        raise oauth_error(400, "invalid_request", _REFUSED[found])
    return found
