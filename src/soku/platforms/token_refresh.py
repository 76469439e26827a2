"""The OAuth 2.0 refresh-token grant (RFC 6749, section 6) as X, LinkedIn, TikTok, YouTube and
Snapchat take it: a form POST to the platform's token endpoint; the answer's access token, its
lifetime, and a new refresh token when the platform rotates it (the old one kept otherwise)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from soku.platforms.connector import (
    AccountAccess,
    ErrorKind,
    PlatformError,
    RefreshedTokens,
    response_json,
)


@dataclass(frozen=True)
class RefreshGrant:
    """Where and how one platform refreshes, and how its errors read."""

    label: str  # "LinkedIn": in the message when the account has no refresh token
    url: str
    client_id: str | None
    client_secret: str | None
    map_error: Callable[[httpx.HTTPError], PlatformError]  # a failed call
    refresh_error: Callable[[httpx.Response], PlatformError]  # a refused refresh
    client_id_name: str = "client_id"  # TikTok: client_key
    basic_auth: bool = False  # X: a confidential client authenticates with Basic auth


async def refresh_tokens(
    grant: RefreshGrant, account: AccountAccess, client: httpx.AsyncClient
) -> RefreshedTokens:
    if not account.refresh_token:
        message = f"The {grant.label} account has no refresh token: connect it again."
        raise PlatformError(ErrorKind.reauth_required, "no_refresh_token", message)
    form = {"grant_type": "refresh_token", "refresh_token": account.refresh_token}
    if grant.client_id:
        form[grant.client_id_name] = grant.client_id
    auth: httpx.BasicAuth | None = None
    if grant.basic_auth and grant.client_id and grant.client_secret:
        auth = httpx.BasicAuth(grant.client_id, grant.client_secret)
    elif grant.client_secret and not grant.basic_auth:
        form["client_secret"] = grant.client_secret
    try:
        response = await client.post(grant.url, data=form, auth=auth or httpx.USE_CLIENT_DEFAULT)
    except httpx.HTTPError as exc:
        raise grant.map_error(exc) from exc
    tokens = response_json(response)
    if not response.is_success or not isinstance(tokens, dict) or not tokens.get("access_token"):
        raise grant.refresh_error(response)
    expires_in, expires_at = tokens.get("expires_in"), None
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=expires_in)
    refresh_token = tokens.get("refresh_token") or account.refresh_token
    return RefreshedTokens(str(tokens["access_token"]), refresh_token, expires_at)
