"""The YouTube fake's Google OAuth 2.0 and the channel of a token (youtube.md, "Auth").

- `GET /o/oauth2/v2/auth` (accounts.google.com's path): `response_type=code`, `client_id`,
  `redirect_uri`, `state`, `scope` (space-separated), `access_type`, `prompt`; PKCE when the
  client sends a challenge (optional for web clients).
- `POST /token` (oauth2.googleapis.com's path), form-encoded: `grant_type=authorization_code`
  with `code`, `redirect_uri`, `client_id`, `client_secret` (a code works once, for its client
  and redirect URI), answered with a refresh token (as with `access_type=offline`); or
  `grant_type=refresh_token`, answered with a new access token only. A refresh token past its
  lifetime (a knob: 7 days for an app in Testing mode) is `invalid_grant`.
- `GET /youtube/v3/channels?part=snippet&mine=true` → the token's channel (`id`, `snippet`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from soku.sandbox.consent import ConsentSite, consent_routes
from soku.sandbox.oauth_tokens import Refusals, TokenEndpoint, token_route
from soku.sandbox.youtube_faults import api_error, oauth_error

if TYPE_CHECKING:
    from soku.sandbox.youtube_gate import YouTubeFake
    from soku.sandbox.youtube_state import FakeState

_REFUSALS: Refusals = {
    "client": ("invalid_client", "Unauthorized"),
    "grant_type": ("unsupported_grant_type", "Invalid grant_type: {grant}"),
    "no_code": ("invalid_request", "Missing required parameter: code"),
    "code": ("invalid_grant", "Bad Request"),
}


def oauth_routes(app: FastAPI, fake: YouTubeFake) -> None:
    state = fake.state
    consent_routes(
        app,
        ConsentSite(
            label="YouTube",
            path="/o/oauth2/v2/auth",
            pkce=False,
            default_login="sandbox-channel",
            login_pattern=r"[A-Za-z0-9_\-]{1,40}",
            sign_in=lambda login: _channel_named(state, login),
            code_lifetime=lambda: state.config.code_lifetime_secs,
            codes=lambda: state.codes,
        ),
    )
    endpoint = TokenEndpoint(
        "/token",
        oauth_error,
        _REFUSALS,
        issue=lambda grant: state.issue(grant.subject, with_refresh=True),
        secret_needed=False,  # a code needs its client id only (a configured secret is checked)
    )
    token_route(app, fake, endpoint)

    @app.get("/youtube/v3/channels")
    async def channels(request: Request, part: str = "", mine: str = "") -> JSONResponse:
        channel, _ = await fake.gate(request, "channels")
        if not part:
            raise api_error(400, "required", "Required parameter: part", "global")
        if mine != "true":
            raise api_error(400, "missingRequiredParameter", "No filter selected.", "global")
        snippet = {"title": channel.title, "description": "", "customUrl": channel.handle}
        item = {"kind": "youtube#channel", "id": channel.id, "snippet": snippet}
        return JSONResponse({"kind": "youtube#channelListResponse", "items": [item],
                             "pageInfo": {"totalResults": 1, "resultsPerPage": 5}})  # fmt: skip


def _channel_named(state: FakeState, login: str) -> str:
    """The channel a sandbox login signs in as (its id derived from the login)."""
    channel_id = "UC" + (login + "_" * 22)[:22]
    found = state.channels.get(channel_id) or state.add_channel(channel_id, login)
    return found.id
