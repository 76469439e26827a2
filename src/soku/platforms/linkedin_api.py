"""Calls to LinkedIn's REST API: the version headers, the JSON answers, uploads, errors mapped.

Every call carries the account's bearer token; `/rest/` calls also `LinkedIn-Version` and
`X-Restli-Protocol-Version: 2.0.0`. A failed call raises the `PlatformError` that
`linkedin_errors` maps it to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from soku.platforms.connector import AccountAccess, ErrorKind, PlatformError, response_json
from soku.platforms.linkedin_errors import map_error


@dataclass(frozen=True)
class LinkedInApi:
    """LinkedIn's API at `url` (no trailing slash), spoken at `version` (YYYYMM)."""

    url: str
    version: str

    async def call(
        self,
        client: httpx.AsyncClient,
        account: AccountAccess,
        method: str,
        path: str,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One API call and its JSON object."""
        response = await self.send(client, account, method, path, **kwargs)
        body = response_json(response)
        if not isinstance(body, dict):
            message = f"LinkedIn answered {path} without a JSON object."
            raise PlatformError(
                ErrorKind.server_error, "unreadable_answer", message, raw=response.text[:500]
            )
        return body

    async def send(
        self,
        client: httpx.AsyncClient,
        account: AccountAccess,
        method: str,
        path: str,
        *,
        versioned: bool = True,
        finder: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """One API call, versioned unless told otherwise; its answer when it succeeded."""
        headers = {"Authorization": f"Bearer {access_token(account)}"}
        if versioned:
            headers.update({"LinkedIn-Version": self.version, "X-Restli-Protocol-Version": "2.0.0"})
        if finder:
            headers["X-RestLi-Method"] = "FINDER"
        try:
            response = await client.request(method, self.url + path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise map_error(exc) from exc
        if not response.is_success:
            raise map_error(response)
        return response

    async def put(
        self,
        client: httpx.AsyncClient,
        account: AccountAccess,
        url: str,
        data: bytes,
        headers: dict[str, str],
    ) -> httpx.Response:
        """Bytes to an upload URL exactly as LinkedIn returned it."""
        headers = {"Authorization": f"Bearer {access_token(account)}", **headers}
        try:
            response = await client.put(url, content=data, headers=headers)
        except httpx.HTTPError as exc:
            raise map_error(exc) from exc
        if not response.is_success:
            raise map_error(response)
        return response


def access_token(account: AccountAccess) -> str:
    if not account.access_token:
        message = f"The LinkedIn account {account.account_id} has no access token."
        raise PlatformError(ErrorKind.reauth_required, "no_access_token", message)
    return account.access_token
