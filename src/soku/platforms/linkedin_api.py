"""Calls to LinkedIn's REST API: the version headers, the JSON answers, uploads, errors mapped.

Every call carries the account's bearer token; `/rest/` calls also `LinkedIn-Version` and
`X-Restli-Protocol-Version: 2.0.0`. A failed call raises the `PlatformError` that
`linkedin_errors` maps it to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from soku.platforms.api_calls import access_token, json_object, succeeded
from soku.platforms.connector import AccountAccess
from soku.platforms.linkedin_errors import map_error

LABEL = "LinkedIn"


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
        return json_object(response, LABEL, path)

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
        headers = {"Authorization": f"Bearer {access_token(account, LABEL)}"}
        if versioned:
            headers.update({"LinkedIn-Version": self.version, "X-Restli-Protocol-Version": "2.0.0"})
        if finder:
            headers["X-RestLi-Method"] = "FINDER"
        call = client.request(method, self.url + path, headers=headers, **kwargs)
        return await succeeded(call, map_error)

    async def put(
        self,
        client: httpx.AsyncClient,
        account: AccountAccess,
        url: str,
        data: bytes,
        headers: dict[str, str],
    ) -> httpx.Response:
        """Bytes to an upload URL exactly as LinkedIn returned it."""
        headers = {"Authorization": f"Bearer {access_token(account, LABEL)}", **headers}
        return await succeeded(client.put(url, content=data, headers=headers), map_error)
