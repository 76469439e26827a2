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
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from soku.sandbox.consent import ConsentSite, consent_routes
from soku.sandbox.linkedin_faults import LinkedInError, oauth_error

if TYPE_CHECKING:
    from soku.sandbox.linkedin_gate import LinkedInFake
    from soku.sandbox.linkedin_state import FakeState

# LinkedIn's words for any code it will not exchange (widely quoted by client projects)
_BAD_CODE = (
    "Unable to retrieve access token: appid/redirect uri/code verifier does not match "
    "authorization code. Or authorization code expired. Or external member binding exists"
)


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

    @app.post("/oauth/v2/accessToken")
    async def token(request: Request) -> JSONResponse:
        state.calls["token"] += 1
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        await fake.apply_fault("token", None)
        _check_client(state, form)
        grant = form.get("grant_type")
        if grant == "refresh_token":
            return JSONResponse(state.refresh(form.get("refresh_token", "")))
        if grant == "authorization_code":
            return JSONResponse(state.issue(_member_of_code(state, form)))
        raise oauth_error(400, "invalid_request", f"Unsupported grant_type {grant!r}")

    @app.get("/v2/userinfo")
    async def userinfo(request: Request) -> JSONResponse:
        member, _ = await fake.gate(request, "userinfo", versioned=False)
        member.provisional = False  # the client now knows this member's id
        given, _, family = member.name.partition(" ")
        body = {"sub": member.id, "name": member.name, "given_name": given,
                "family_name": family, "locale": {"country": "US", "language": "en"}}  # fmt: skip
        return JSONResponse(body)


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


def _invalid_client() -> LinkedInError:
    return oauth_error(401, "invalid_client", "Client authentication failed")


def _member_of_code(state: FakeState, form: dict[str, str]) -> str:
    code = form.get("code", "")
    if not code:
        raise oauth_error(400, "invalid_request", 'A required parameter "code" is missing')
    found = state.codes.redeem(
        code, form.get("client_id", ""), form.get("redirect_uri", ""), form.get("code_verifier")
    )
    if isinstance(found, str):
        raise oauth_error(400, "invalid_request", _BAD_CODE)
    return found.subject
