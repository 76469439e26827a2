"""The LinkedIn fake's OAuth 2.0 and OpenID userinfo (linkedin.md, "Auth").

- `GET /oauth/v2/authorization` (www.linkedin.com's path): `response_type=code`,
  `client_id`, `redirect_uri`, `state`, `scope` (space-separated). No PKCE: web apps
  authenticate with their client secret.
- `POST /oauth/v2/accessToken`, form-encoded: `grant_type=authorization_code` with `code`,
  `redirect_uri`, `client_id` and `client_secret` (a code works once, for its client and
  redirect URI), or `grant_type=refresh_token`. Answers `access_token`, `expires_in`,
  `scope`, `refresh_token`, `refresh_token_expires_in`; errors `{"error",
  "error_description"}`.
- `GET /v2/userinfo` → `sub` (the member id: the author URN is `urn:li:person:{sub}`) and
  the member's names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from soku.sandbox.consent import ConsentSite, consent_routes
from soku.sandbox.linkedin_faults import oauth_error
from soku.sandbox.oauth_tokens import Refusals, TokenEndpoint, token_route

if TYPE_CHECKING:
    from soku.sandbox.linkedin_gate import LinkedInFake

# LinkedIn's words for any code it will not exchange (widely quoted by client projects)
_BAD_CODE = (
    "Unable to retrieve access token: appid/redirect uri/code verifier does not match "
    "authorization code. Or authorization code expired. Or external member binding exists"
)
_REFUSALS: Refusals = {
    "client": ("invalid_client", "Client authentication failed"),
    "grant_type": ("invalid_request", "Unsupported grant_type {grant!r}"),
    "no_code": ("invalid_request", 'A required parameter "code" is missing'),
    "code": ("invalid_request", _BAD_CODE),
}


def oauth_routes(app: FastAPI, fake: LinkedInFake) -> None:
    state = fake.state
    consent_routes(
        app,
        ConsentSite(
            label="LinkedIn",
            path="/oauth/v2/authorization",
            pkce=False,
            default_login="sandbox-member",
            login_pattern=r"[A-Za-z0-9_\-]{1,40}",
            sign_in=lambda login: (state.members.get(login) or state.add_member(login)).id,
            code_lifetime=lambda: state.config.code_lifetime_secs,
            codes=lambda: state.codes,
        ),
    )
    endpoint = TokenEndpoint(
        "/oauth/v2/accessToken", oauth_error, _REFUSALS, lambda grant: state.issue(grant.subject)
    )
    token_route(app, fake, endpoint)

    @app.get("/v2/userinfo")
    async def userinfo(request: Request) -> JSONResponse:
        member, _ = await fake.gate(request, "userinfo", versioned=False)
        member.provisional = False  # the client now knows this member's id
        given, _, family = member.name.partition(" ")
        body = {"sub": member.id, "name": member.name, "given_name": given,
                "family_name": family, "locale": {"country": "US", "language": "en"}}  # fmt: skip
        return JSONResponse(body)
