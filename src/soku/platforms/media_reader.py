"""Reading our own stored media for platforms that take bytes (X, LinkedIn).

Our media is served over HTTP with byte ranges (`/media/{token}.{ext}`, or a presigned S3
URL behind a redirect), so a connector reads it like any client: an image whole, with a cap
on its size, and a video one range at a time, so no more than one chunk is ever held.
"""

from __future__ import annotations

import mimetypes
from urllib.parse import urlsplit

import httpx

from soku.platforms.connector import ErrorKind, PlatformError, transport_error


async def read_whole(
    client: httpx.AsyncClient, url: str, max_bytes: int, too_big: str
) -> tuple[bytes, str]:
    """The whole file and its media type; `too_big` is the message when it passes `max_bytes`."""
    error = PlatformError(ErrorKind.permanent, "media_too_large", too_big)
    try:
        async with client.stream("GET", url, follow_redirects=True) as response:
            _check(url, response, (200,))
            if int(response.headers.get("content-length") or 0) > max_bytes:
                raise error
            data = bytearray()
            async for part in response.aiter_bytes():
                data += part
                if len(data) > max_bytes:
                    raise error
            return bytes(data), media_type(response, url, "image/jpeg")
    except httpx.HTTPError as exc:
        raise _failure(url, exc) from exc


async def measure(client: httpx.AsyncClient, url: str) -> tuple[int, str]:
    """The stored file's size and media type, from a one-byte range request."""
    try:
        headers = {"Range": "bytes=0-0"}
        async with client.stream("GET", url, headers=headers, follow_redirects=True) as response:
            _check(url, response, (200, 206))
            size = response.headers.get("content-length", "")
            if response.status_code == 206:
                size = response.headers.get("content-range", "").rpartition("/")[2]
            kind = media_type(response, url, "video/mp4")
    except httpx.HTTPError as exc:
        raise _failure(url, exc) from exc
    if not size.isdigit():
        message = f"Our media store did not say how large {url} is."
        raise PlatformError(ErrorKind.server_error, "media_size_unknown", message)
    return int(size), kind


async def read_range(client: httpx.AsyncClient, url: str, start: int, size: int) -> bytes:
    """Bytes [start, start + size) of a stored file (skipping ahead if ranges are ignored)."""
    headers = {"Range": f"bytes={start}-{start + size - 1}"}
    data = bytearray()
    try:
        async with client.stream("GET", url, headers=headers, follow_redirects=True) as response:
            _check(url, response, (200, 206))
            ranged = response.headers.get("content-range", "").startswith(f"bytes {start}-")
            skip = 0 if response.status_code == 206 and ranged else start
            async for part in response.aiter_bytes():
                dropped = min(skip, len(part))
                skip -= dropped
                data += part[dropped : dropped + size - len(data)]
                if len(data) >= size:
                    break
    except httpx.HTTPError as exc:
        raise _failure(url, exc) from exc
    if len(data) != size:
        message = f"Our copy of {url} ended before byte {start + size}."
        raise PlatformError(ErrorKind.server_error, "media_read_short", message)
    return bytes(data)


def media_type(response: httpx.Response, url: str, default: str) -> str:
    """The declared image or video type, else one guessed from the file name, else `default`."""
    declared = str(response.headers.get("content-type", "")).partition(";")[0].strip().lower()
    if declared.split("/")[0] in ("image", "video"):
        return declared
    guessed = mimetypes.guess_type(urlsplit(url).path)[0]
    return guessed if guessed and guessed.split("/")[0] in ("image", "video") else default


def filename(url: str) -> str:
    return urlsplit(url).path.rpartition("/")[2] or "media"


def _check(url: str, response: httpx.Response, ok: tuple[int, ...]) -> None:
    if response.status_code in ok:
        return
    status = response.status_code
    kind = ErrorKind.server_error if status >= 500 or status == 429 else ErrorKind.permanent
    message = f"Our media store answered {status} for {url}."
    raise PlatformError(kind, "media_unavailable", message, http_status=status)


def _failure(url: str, exc: httpx.HTTPError) -> PlatformError:
    error = transport_error(exc, "our media store")
    return PlatformError(error.kind, error.code, f"Reading our copy of {url}: {error.message}")
