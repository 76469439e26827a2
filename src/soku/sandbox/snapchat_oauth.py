"""The Snapchat fake's OAuth 2.0 (snapchat.md, "Auth").

- `GET /login/oauth2/authorize` (accounts.snapchat.com's path): `client_id`, `redirect_uri`,
  `response_type=code`, `scope` (`snapchat-profile-api`), `state`. PKCE is not documented:
  none is asked for (a challenge sent is checked, as any OAuth server would).
- `POST /login/oauth2/access_token`, form-encoded: `grant_type=authorization_code` with
  `code`, `redirect_uri`, `client_id` and `client_secret`, or `grant_type=refresh_token`
  with `refresh_token`. Answers `access_token`, `token_type`, `expires_in` (3600, U),
  `refresh_token`, `scope`; errors are OAuth's `{"error", "error_description"}`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from soku.sandbox.consent import ConsentSite, consent_routes
from soku.sandbox.oauth_tokens import Refusals, TokenEndpoint, token_route
from soku.sandbox.snapchat_faults import oauth_error

if TYPE_CHECKING:
    from soku.sandbox.snapchat_gate import SnapchatFake

AUTHORIZE_PATH, TOKEN_PATH = "/login/oauth2/authorize", "/login/oauth2/access_token"
_REFUSALS: Refusals = {
    "client": ("invalid_client", "Client authentication failed"),
    "grant_type": ("unsupported_grant_type", "Unsupported grant_type {grant!r}"),
    "no_code": ("invalid_request", "Missing code"),
    "code": ("invalid_grant", "Invalid authorization code ({reason})"),
}


def oauth_routes(app: FastAPI, fake: SnapchatFake) -> None:
    state = fake.state
    consent_routes(
        app,
        ConsentSite(
            label="Snapchat",
            path=AUTHORIZE_PATH,
            pkce=False,
            default_login="sandbox_profile",
            login_pattern=r"[A-Za-z0-9_.\-]{3,15}",  # (U) Snapchat user names: 3-15 characters
            sign_in=lambda login: state.by_login(login).id,
            code_lifetime=lambda: state.config.code_lifetime_secs,
            codes=lambda: state.codes,
        ),
    )
    endpoint = TokenEndpoint(TOKEN_PATH, oauth_error, _REFUSALS, lambda g: state.issue(g.subject))
    token_route(app, fake, endpoint)
