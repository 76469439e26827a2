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
from urllib.parse import unquote

from fastapi import FastAPI, Request

from soku.sandbox.consent import ConsentSite, consent_routes
from soku.sandbox.oauth_tokens import Refusals, TokenEndpoint, token_route
from soku.sandbox.x_faults import XError, oauth_error

if TYPE_CHECKING:
    from soku.sandbox.x import XFake
    from soku.sandbox.x_state import FakeConfig, FakeState

_REFUSALS: Refusals = {
    "client": ("unauthorized_client", "Missing valid authorization header"),
    "grant_type": ("unsupported_grant_type", "grant_type must be authorization_code or "
                   "refresh_token."),
    "no_code": ("invalid_request", "Missing required parameter [code]."),
    "code": ("invalid_request", "Value passed for the authorization code was invalid."),
}  # fmt: skip
_CODE_REASONS = {  # why a code was refused, where X says so
    "expired": "The authorization code has expired.",
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
    token_route(app, fake, _token_endpoint(state))


def _token_endpoint(state: FakeState) -> TokenEndpoint:
    """`POST /2/oauth2/token`: X's own client check, and its reasons for refusing a code."""
    return TokenEndpoint(
        "/2/oauth2/token",
        oauth_error,
        _REFUSALS,
        issue=lambda grant: state.grant(grant.subject, grant.scope),
        client=lambda request, form: _client(request, form, state.config),
        code_reasons=_CODE_REASONS,
    )


def _client(request: Request, form: dict[str, str], config: FakeConfig) -> str | None:
    """The client: HTTP Basic (a confidential one, its secret checked when configured) or
    `client_id` in the body (a public one); a code needs one, a refresh the configured one."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    client_id = form.get("client_id")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.encode(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise _unauthorized() from None
        client_id, _, secret = decoded.partition(":")
        if config.client_secret is not None and unquote(secret) != config.client_secret:
            raise _unauthorized()
        client_id = unquote(client_id)
    grant_type = form.get("grant_type")
    if grant_type == "authorization_code" and not client_id:
        raise _unauthorized()
    wanted = config.client_id
    if grant_type == "refresh_token" and wanted is not None and client_id != wanted:
        raise _unauthorized()
    return client_id


def _unauthorized() -> XError:
    return oauth_error(401, *_REFUSALS["client"])
