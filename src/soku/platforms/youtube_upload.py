"""YouTube's resumable upload protocol (youtube.md "Resumable upload, step by step").

A session is opened with the video's metadata (`POST {upload_url}?uploadType=resumable`,
answered 200 with the session URI in `Location`, used exactly as returned); the bytes then go
in chunks, `PUT {session}` with `Content-Range: bytes a-b/total`, each answered 308 with
`Range: bytes=0-N` (what YouTube holds) until the last, answered 201 (or 200) with the video
resource. `PUT {session}` with `Content-Range: bytes */total` and no body asks where the
upload stands: 308 (with the range held so far, or none), 200/201 when it is complete, 404
once the session has expired.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from soku.platforms import media_reader
from soku.platforms.api_calls import answered, succeeded
from soku.platforms.connector import ErrorKind, PlatformError, response_json
from soku.platforms.youtube_errors import LABEL, map_error

RESUME_INCOMPLETE = 308
QUANTUM = 256 * 1024  # chunks are multiples of 256 KiB, the last one excepted (youtube.md, U)


@dataclass(frozen=True)
class Standing:
    """Where a session stands: the bytes YouTube holds, or the finished video, or gone."""

    offset: int = 0
    video: dict[str, Any] | None = None
    expired: bool = False


@dataclass(frozen=True)
class Upload:
    """One job's upload: its session URI, the video's size and type, where to read it."""

    session: str
    total: int
    media_type: str
    source: str
    token: str

    def headers(self, **more: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **more}


async def open_session(
    client: httpx.AsyncClient,
    upload_url: str,
    token: str,
    resource: dict[str, Any],
    size: tuple[int, str],
    params: dict[str, str],
) -> str:
    """A new upload session for a video of `size` (bytes, type); its URI, as returned."""
    total, media_type = size
    headers = {
        "Authorization": f"Bearer {token}",
        "X-Upload-Content-Length": str(total),
        "X-Upload-Content-Type": media_type,
    }
    query = {"uploadType": "resumable", "part": "snippet,status", **params}
    call = client.post(upload_url, params=query, json=resource, headers=headers)
    response = await succeeded(call, map_error)
    location = str(response.headers.get("location", "")).strip()
    if not location:
        message = f"{LABEL} opened no upload session (no Location header)."
        raise PlatformError(ErrorKind.server_error, "unreadable_answer", message)
    return location


async def standing(client: httpx.AsyncClient, upload: Upload) -> Standing:
    """Asks the session where the upload stands (`Content-Range: bytes */total`)."""
    headers = upload.headers(**{"Content-Range": f"bytes */{upload.total}"})
    return await _put(client, upload, b"", headers)


async def send(
    client: httpx.AsyncClient, upload: Upload, offset: int, stop: int, chunk: int
) -> Standing:
    """Sends bytes from `offset` up to `stop` in chunks, each resuming where YouTube says it
    stands; the standing after the last one (the video, once `stop` is the end)."""
    now = Standing(offset)
    while now.video is None and not now.expired and now.offset < stop:
        size = min(chunk, stop - now.offset)
        data = await media_reader.read_range(client, upload.source, now.offset, size)
        last = now.offset + size - 1
        content_range = f"bytes {now.offset}-{last}/{upload.total}"
        headers = upload.headers(**{"Content-Range": content_range})
        headers["Content-Type"] = upload.media_type
        after = await _put(client, upload, data, headers)
        if after.video is None and not after.expired and after.offset <= now.offset:
            message = f"{LABEL} kept none of the bytes from {now.offset} on; retrying later."
            raise PlatformError(ErrorKind.server_error, "upload_stalled", message)
        now = after
    return now


async def _put(
    client: httpx.AsyncClient, upload: Upload, data: bytes, headers: dict[str, str]
) -> Standing:
    call = client.put(upload.session, content=data, headers=headers)
    response = await answered(call, map_error)
    if response.status_code == RESUME_INCOMPLETE:
        return Standing(_held(response.headers.get("range", "")))
    if response.status_code == 404:
        return Standing(expired=True)
    body = response_json(response)
    if response.status_code in (200, 201) and isinstance(body, dict) and body.get("id"):
        return Standing(video=body)
    raise map_error(response)


def _held(value: str) -> int:
    """The next byte to send, from `Range: bytes=0-N` (none: nothing held yet)."""
    _, _, last = value.strip().removeprefix("bytes=").partition("-")
    return int(last) + 1 if last.isdigit() else 0


def final_chunk_start(total: int, chunk: int) -> int:
    """Where the last chunk begins: the bytes from there are sent by the publish."""
    return ((total - 1) // chunk) * chunk if total > 0 else 0
