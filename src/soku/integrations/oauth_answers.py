"""How much of a platform's answer a connect flow reads: at most `MAX_ANSWER_BYTES`, uncompressed.

The token endpoint's answers (read by Authlib) and the "who is this" answers (`call_json`)
are read whole, so the clients of a connect flow carry these event hooks: the request asks
for the answer uncompressed (`Accept-Encoding: identity`, as the media fetcher does), and
the answer is refused, with `AnswerRefused`, when it says it is larger than the cap, when
its bytes pass the cap as they are read, or when it comes compressed anyway (how large it
is once decoded is not known until it is decoded). Hooks rather than a transport, so that
a proxy the environment names is still used.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

# A token answer is a few hundred bytes, an answer of 100 Facebook Pages some 30 KB.
MAX_ANSWER_BYTES = 1024 * 1024


class AnswerRefused(httpx.HTTPError):
    """An answer not read: too large, or compressed. Its text says which, for the user."""

    def __init__(self, request: httpx.Request, reason: str) -> None:
        super().__init__(reason)
        self.request = request
        self.reason = reason


async def _ask_uncompressed(request: httpx.Request) -> None:
    request.headers["Accept-Encoding"] = "identity"


async def _capped(response: httpx.Response) -> None:
    """Refuses the answer now (its headers) or as its bytes come (a stream that stops)."""
    too_large = f"larger than {MAX_ANSWER_BYTES / 1024**2:g} MiB"
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise AnswerRefused(response.request, f"compressed ({encoding}), which Soku did not ask")
    declared = response.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
        raise AnswerRefused(response.request, too_large)
    if isinstance(response.stream, httpx.AsyncByteStream):
        response.stream = _CappedStream(response.stream, response.request, too_large)


class _CappedStream(httpx.AsyncByteStream):
    """The answer's bytes, ending in `AnswerRefused` once they pass `MAX_ANSWER_BYTES`."""

    def __init__(self, inner: httpx.AsyncByteStream, request: httpx.Request, reason: str) -> None:
        self._inner, self._request, self._reason = inner, request, reason

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        async for part in self._inner:
            size += len(part)
            if size > MAX_ANSWER_BYTES:
                raise AnswerRefused(self._request, self._reason)
            yield part

    async def aclose(self) -> None:
        await self._inner.aclose()


def capped_hooks() -> dict[str, list[Any]]:
    """The event hooks of a connect flow's client (httpx's or Authlib's)."""
    return {"request": [_ask_uncompressed], "response": [_capped]}
