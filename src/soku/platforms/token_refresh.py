"""The OAuth 2.0 refresh-token grant (RFC 6749, section 6) as X, LinkedIn, TikTok, YouTube and
Snapchat take it: a form POST to the platform's token endpoint; the answer's access token, its
lifetime, and a new refresh token when the platform rotates it (the old one kept otherwise)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from soku.platforms.api_calls import MapError, answered
from soku.platforms.connector import (
    AccountAccess,
    ErrorKind,
    PlatformError,
    RefreshedTokens,
    response_json,
)


@dataclass(frozen=True)
class RefreshGrant:
    """How one platform takes the grant and how its errors read: the same for every connector
    of that platform, so each keeps one; where it is sent and as which app is the connector's."""

    label: str  # "LinkedIn": in the message when the account has no refresh token
    map_error: MapError  # a failed call
    refresh_error: Callable[[httpx.Response], PlatformError]  # a refused refresh
    client_id_name: str = "client_id"  # TikTok: client_key
    basic_auth: bool = False  # X: a confidential client authenticates with Basic auth


class ClientCredentials(Protocol):
    """The operator's app as a connector holds it (none when it talks to a sandbox fake)."""

    @property
    def client_id(self) -> str | None: ...

    @property
    def client_secret(self) -> str | None: ...


async def refresh_tokens(
    grant: RefreshGrant,
    url: str,
    app: ClientCredentials,
    account: AccountAccess,
    client: httpx.AsyncClient,
) -> RefreshedTokens:
    """New tokens for `account` from the token endpoint at `url`, asked as `app`."""
    if not account.refresh_token:
        message = f"The {grant.label} account has no refresh token: connect it again."
        raise PlatformError(ErrorKind.reauth_required, "no_refresh_token", message)
    client_id, client_secret = app.client_id, app.client_secret
    form = {"grant_type": "refresh_token", "refresh_token": account.refresh_token}
    if client_id:
        form[grant.client_id_name] = client_id
    auth: httpx.BasicAuth | None = None
    if grant.basic_auth and client_id and client_secret:
        auth = httpx.BasicAuth(client_id, client_secret)
    elif client_secret and not grant.basic_auth:
        form["client_secret"] = client_secret
    call = client.post(url, data=form, auth=auth or httpx.USE_CLIENT_DEFAULT)
    response = await answered(call, grant.map_error)
    tokens = response_json(response)
    if not response.is_success or not isinstance(tokens, dict) or not tokens.get("access_token"):
        raise grant.refresh_error(response)
    refresh_token = tokens.get("refresh_token") or account.refresh_token
    return RefreshedTokens(str(tokens["access_token"]), refresh_token, expires_at(tokens))


def expires_at(tokens: dict[str, Any]) -> dt.datetime | None:
    """When the new access token expires, from the answer's `expires_in` (seconds), if any."""
    seconds = tokens.get("expires_in")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return None
