"""The HTTP client every platform call goes through: httpx's interface on aiohttp's pool.

Connectors speak httpx (requests, responses, exceptions). Underneath, the worker's clients
send through aiohttp's connection pool: httpcore's pool looks at every connection, and asks
each socket whether it is readable, to place each request, which cost about 4 ms of CPU per
call at 32 connections and 6.5 ms at 256; aiohttp's costs about 0.5 ms (docs/decisions.md,
"The platform HTTP client"; the benchmark figures are in bench/README.md).

Two things this adapter does that the `httpx-aiohttp` package's transport does not:

- The URL goes out exactly as httpx encoded it. aiohttp re-quotes a URL given as text, and
  turns LinkedIn's `urn%3Ali%3Aimage%3A…` path keys into `urn:li:image:…`, which LinkedIn
  refuses.
- A failure says whether the request left. `ConnectError`/`ConnectTimeout` mean nothing was
  sent, so a publish may be tried again at once; anything else (a connection lost after
  sending, no answer in time) means the platform may have acted on it, so the engine
  reconciles first. A lost connection must never read as "not sent".
"""

from __future__ import annotations

import http.cookiejar
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import yarl

CONNECT_SECONDS = 5.0
KEEPALIVE_SECONDS = 5.0
MAX_HEADER_LINE = 65_536
# httpx already sends its own; the body's type is the one the connector chose, or none.
SKIP_AUTO_HEADERS = ("Content-Type", "User-Agent", "Accept", "Accept-Encoding")


def platform_client(concurrency: int, timeout_seconds: float) -> httpx.AsyncClient:
    """A pooled client for one platform: at most `concurrency` connections at once."""
    timeout = httpx.Timeout(timeout_seconds, connect=min(CONNECT_SECONDS, timeout_seconds))
    return httpx.AsyncClient(
        transport=PlatformTransport(concurrency),
        timeout=timeout,
        follow_redirects=False,
        cookies=_no_cookies(),
    )


def _no_cookies() -> http.cookiejar.CookieJar:
    """A jar that keeps nothing: one client serves many accounts, and platform APIs are
    authorized by token, so a cookie one account's answer sets must never ride along with
    another account's call (LinkedIn, for one, sets cookies on its API answers)."""
    return http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


class PlatformTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests on an aiohttp session made on first use (inside the event loop)."""

    def __init__(self, max_connections: int) -> None:
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, keepalive_timeout=KEEPALIVE_SECONDS
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),  # cookies: see _no_cookies
                auto_decompress=False,  # httpx decodes by Content-Encoding
                skip_auto_headers=SKIP_AUTO_HEADERS,
                trust_env=_proxies_configured(),
                max_line_size=MAX_HEADER_LINE,
                max_field_size=MAX_HEADER_LINE,
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        headers = [(k, v) for k, v in request.headers.multi_items() if k != "transfer-encoding"]
        try:
            answer = await self._open().request(
                request.method,
                yarl.URL(str(request.url), encoded=True),
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=_timeout(request.extensions.get("timeout", {})),
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise transport_failure(exc, request, sent=False) from exc
        return httpx.Response(
            status_code=answer.status,
            headers=list(answer.raw_headers),
            stream=_Body(answer, request),
            request=request,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (answer.reason or "").encode(),
            },
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _proxies_configured() -> bool:
    """Whether HTTP(S)_PROXY & co. are set: then honour them, as httpx would.

    With `trust_env` aiohttp also reads ~/.netrc and the proxy variables again for every
    request, in a thread: about a seventh of a burst's profile samples. Without proxies set it
    has nothing to find, so it is switched off.
    """
    return bool(urllib.request.getproxies())


def _timeout(seconds: dict[str, Any]) -> aiohttp.ClientTimeout:
    """httpx's timeouts in aiohttp's terms: its `connect` covers waiting for a free connection."""
    return aiohttp.ClientTimeout(
        total=None,
        connect=seconds.get("pool"),
        sock_connect=seconds.get("connect"),
        sock_read=seconds.get("read"),
    )


class _Body(httpx.AsyncByteStream):
    """The answer's bytes; a failure while reading them is a failure after sending."""

    def __init__(self, answer: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._answer = answer
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._answer.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise transport_failure(exc, self._request, sent=True) from exc

    async def aclose(self) -> None:
        self._answer.release()  # back to the pool when read to the end, closed otherwise


def transport_failure(exc: Exception, request: httpx.Request, *, sent: bool) -> httpx.HTTPError:
    """The httpx error for what aiohttp saw; Connect* only when no connection was opened."""
    message = f"{type(exc).__name__}: {exc}"
    if not sent and isinstance(exc, aiohttp.ClientConnectorError | aiohttp.InvalidURL):
        return httpx.ConnectError(message, request=request)
    if not sent and isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(exc, TimeoutError):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(message, request=request)
    return httpx.ReadError(message, request=request)
