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
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from soku.sandbox.consent import ConsentSite, consent_routes
from soku.sandbox.snapchat_faults import SnapError, oauth_error

if TYPE_CHECKING:
    from soku.sandbox.snapchat_gate import SnapchatFake
    from soku.sandbox.snapchat_state import FakeState

AUTHORIZE_PATH, TOKEN_PATH = "/login/oauth2/authorize", "/login/oauth2/access_token"


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

    @app.post(TOKEN_PATH)
    async def token(request: Request) -> JSONResponse:
        state.calls["token"] += 1
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        await fake.apply_fault("token", None)
        _check_client(state, form)
        grant = form.get("grant_type")
        if grant == "refresh_token":
            return JSONResponse(state.refresh(form.get("refresh_token", "")))
        if grant == "authorization_code":
            return JSONResponse(state.issue(_profile_of_code(state, form)))
        raise oauth_error(400, "unsupported_grant_type", f"Unsupported grant_type {grant!r}")


def _check_client(state: FakeState, form: dict[str, str]) -> None:
    """The configured client and secret, when there is one; a code needs some client."""
    config = state.config
    if config.client_id is not None and (
        form.get("client_id") != config.client_id
        or form.get("client_secret") != config.client_secret
    ):
        raise _invalid_client()
    if form.get("grant_type") == "authorization_code" and not (
        form.get("client_id") and form.get("client_secret")
    ):
        raise _invalid_client()


def _invalid_client() -> SnapError:
    return oauth_error(401, "invalid_client", "Client authentication failed")


def _profile_of_code(state: FakeState, form: dict[str, str]) -> str:
    code = form.get("code", "")
    if not code:
        raise oauth_error(400, "invalid_request", "Missing code")
    found = state.codes.redeem(
        code, form.get("client_id", ""), form.get("redirect_uri", ""), form.get("code_verifier")
    )
    if isinstance(found, str):
        raise oauth_error(400, "invalid_grant", f"Invalid authorization code ({found})")
    return found.subject
