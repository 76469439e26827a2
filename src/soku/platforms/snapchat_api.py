"""Calls to Snapchat's Marketing API (Public Profile API): the bearer token, the envelope.

Every call carries `Authorization: Bearer <token>` (snapchat.md, "Auth": every client and
the Ads auth page use Bearer). An answer counts as a success only when its HTTP status is
and its envelope's `request_status` is not ERROR; any other raises the `PlatformError` that
`snapchat_errors` maps it to. The upload paths a media container names (`add_path`,
`finalize_path`) are used as returned: a path is joined to the API's origin as the
platform's own clients do, a full URL is taken whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from soku.platforms.api_calls import access_token, answered, json_object
from soku.platforms.connector import AccountAccess
from soku.platforms.snapchat_errors import envelope_error, map_error


@dataclass(frozen=True)
class SnapchatApi:
    """Snapchat's API at `url` (no trailing slash), e.g. https://businessapi.snapchat.com."""

    url: str

    async def call(
        self,
        client: httpx.AsyncClient,
        account: AccountAccess,
        method: str,
        path: str,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One call at `path` (under the API, or a full URL) and its JSON object."""
        headers = {"Authorization": f"Bearer {access_token(account, 'Snapchat')}"}
        call = client.request(method, self.at(path), headers=headers, **kwargs)
        response = await answered(call, map_error)
        error = envelope_error(response)
        if error is not None:
            raise error
        return json_object(response, "Snapchat", _shown(path))

    async def multipart(
        self,
        client: httpx.AsyncClient,
        account: AccountAccess,
        path: str,
        fields: dict[str, str],
        file: bytes | None = None,
    ) -> dict[str, Any]:
        """A `multipart/form-data` POST (an upload part, a FINALIZE) to a path as returned."""
        files: dict[str, Any] = {name: (None, value) for name, value in fields.items()}
        if file is not None:
            files["file"] = ("part.bin", file, "application/octet-stream")
        return await self.call(client, account, "POST", path, files=files)

    def at(self, path: str) -> str:
        if path.startswith(("https://", "http://")):
            return path
        return self.url + (path if path.startswith("/") else f"/{path}")


def _shown(path: str) -> str:
    return path.split("?", 1)[0]
