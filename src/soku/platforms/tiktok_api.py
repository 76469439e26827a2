"""Calls to TikTok's Content Posting API: the bearer token, the JSON envelope, uploads.

Every API call is a POST with `Authorization: Bearer {token}` and
`Content-Type: application/json; charset=UTF-8`; its answer's `data` object is returned when
`error.code` is "ok", else the `PlatformError` that `tiktok_errors` maps it to. Uploads go to
the `upload_url` exactly as TikTok returned it, which carries its own upload token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from soku.platforms.api_calls import access_token, answered, succeeded
from soku.platforms.connector import AccountAccess, ErrorKind, PlatformError, response_json
from soku.platforms.tiktok_errors import map_error

JSON_UTF8 = "application/json; charset=UTF-8"
CREATOR_INFO = "/v2/post/publish/creator_info/query/"
VIDEO_INIT = "/v2/post/publish/video/init/"
CONTENT_INIT = "/v2/post/publish/content/init/"
STATUS_FETCH = "/v2/post/publish/status/fetch/"


@dataclass(frozen=True)
class TikTokApi:
    """TikTok's API at `url` (no trailing slash)."""

    url: str

    async def call(
        self,
        client: httpx.AsyncClient,
        account: AccountAccess,
        path: str,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One POST and its `data` object (creator info takes no body)."""
        headers = {
            "Authorization": f"Bearer {access_token(account, 'TikTok')}",
            "Content-Type": JSON_UTF8,
        }
        if body is None:
            call = client.post(self.url + path, headers=headers, content=b"")
        else:
            call = client.post(self.url + path, headers=headers, json=body)
        response = await answered(call, map_error)
        answer = response_json(response)
        error = answer.get("error") if isinstance(answer, dict) else None
        if not response.is_success or not isinstance(error, dict) or error.get("code") != "ok":
            raise map_error(response)
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, dict):
            message = f"TikTok answered {path} without a `data` object."
            raise PlatformError(ErrorKind.server_error, "unreadable_answer", message, raw=answer)
        return data

    async def put(
        self, client: httpx.AsyncClient, url: str, data: bytes, headers: dict[str, str]
    ) -> httpx.Response:
        """One chunk to the upload URL as TikTok returned it."""
        return await succeeded(client.put(url, content=data, headers=headers), map_error)
