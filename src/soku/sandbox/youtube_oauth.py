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
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from soku.sandbox.consent import ConsentSite, consent_routes
from soku.sandbox.youtube_faults import YouTubeError, api_error, oauth_error

if TYPE_CHECKING:
    from soku.sandbox.youtube_gate import YouTubeFake
    from soku.sandbox.youtube_state import FakeState


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

    @app.post("/token")
    async def token(request: Request) -> JSONResponse:
        state.calls["token"] += 1
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        await fake.apply_fault("token", None)
        _check_client(state, form)
        grant = form.get("grant_type")
        if grant == "refresh_token":
            return JSONResponse(state.refresh(form.get("refresh_token", "")))
        if grant == "authorization_code":
            return JSONResponse(state.issue(_channel_of_code(state, form), with_refresh=True))
        raise oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant}")

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


def _check_client(state: FakeState, form: dict[str, str]) -> None:
    """The configured client and secret, when there is one; a code needs some client."""
    config = state.config
    if config.client_id is not None and (
        form.get("client_id") != config.client_id
        or form.get("client_secret") != config.client_secret
    ):
        raise _invalid_client()
    if form.get("grant_type") == "authorization_code" and not form.get("client_id"):
        raise _invalid_client()


def _invalid_client() -> YouTubeError:
    return oauth_error(401, "invalid_client", "Unauthorized")


def _channel_of_code(state: FakeState, form: dict[str, str]) -> str:
    code = form.get("code", "")
    if not code:
        raise oauth_error(400, "invalid_request", "Missing required parameter: code")
    found = state.codes.redeem(
        code, form.get("client_id", ""), form.get("redirect_uri", ""), form.get("code_verifier")
    )
    if isinstance(found, str):
        raise oauth_error(400, "invalid_grant", "Bad Request")
    return found.subject
