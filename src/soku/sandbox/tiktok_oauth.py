"""The TikTok fake's sign-in (tiktok.md, "Auth").

- `GET /v2/auth/authorize/` (www.tiktok.com's path): `client_key`, `scope` (comma-separated),
  `redirect_uri`, `state`, `response_type=code`; the consent page. No PKCE (web apps).
- `POST /v2/oauth/token/`, form-encoded: `client_key`, `client_secret`, `code`,
  `grant_type=authorization_code`, `redirect_uri`; or `grant_type=refresh_token` with
  `refresh_token`. Answers `open_id, scope, access_token, expires_in (24 h), refresh_token,
  refresh_expires_in (365 days), token_type`; errors `{"error", "error_description", "log_id"}`.
- `GET /v2/user/info/?fields=…` → `data.user` with the fields asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from soku.sandbox.consent import ConsentSite, consent_routes
from soku.sandbox.oauth_tokens import Refusals, TokenEndpoint, token_route
from soku.sandbox.tiktok_posting import ok
from soku.sandbox.tiktok_state import OAuthError

if TYPE_CHECKING:
    from soku.sandbox.tiktok import TikTokFake

USER_FIELDS = ("open_id", "union_id", "avatar_url", "display_name", "username")
_REFUSALS: Refusals = {
    "client": ("invalid_client", "Client key or secret is invalid."),
    "no_client": ("invalid_client", "client_key and client_secret are required."),
    "grant_type": ("invalid_request", "Unsupported grant_type {grant!r}."),
    "code": ("invalid_grant", "Authorization code is invalid ({reason})."),
}


def oauth_routes(app: FastAPI, fake: TikTokFake) -> None:
    state = fake.state
    consent_routes(
        app,
        ConsentSite(
            label="TikTok",
            path="/v2/auth/authorize/",
            pkce=False,
            default_login="sandbox_creator",
            login_pattern=r"[A-Za-z0-9_.]{2,24}",
            sign_in=lambda login: state.named(login).open_id,
            code_lifetime=lambda: state.config.code_lifetime_secs,
            codes=lambda: state.codes,
            client_id_name="client_key",
        ),
    )
    endpoint = TokenEndpoint(
        "/v2/oauth/token/",
        lambda status, code, description: OAuthError(code, description, status),
        _REFUSALS,
        issue=lambda grant: state.issue(grant.subject, grant.scope),
        id_field="client_key",
        configured=lambda config: (config.client_key, config.client_secret),
        reads_verifier=False,
    )
    token_route(app, fake, endpoint)

    @app.get("/v2/user/info/")
    async def user_info(request: Request) -> JSONResponse:
        creator, _, _ = await fake.gate(request, "user_info")
        asked = [f.strip() for f in request.query_params.get("fields", "").split(",")]
        known = {"open_id": creator.open_id, "union_id": f"u{creator.open_id}",
                 "avatar_url": f"{fake.base_url(request)}/@{creator.username}/avatar.png",
                 "display_name": creator.nickname, "username": creator.username}  # fmt: skip
        return ok({"user": {name: known[name] for name in USER_FIELDS if name in asked}})
