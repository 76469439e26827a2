"""The HTTP client every platform call goes through: httpx's interface on reqwest's pool.

Connectors speak httpx (requests, responses, exceptions). Underneath, the worker's clients
send through pyreqwest, Python's binding of Rust's reqwest and hyper: the connection pool,
writing each request and parsing each answer happen on reqwest's own thread, outside the
GIL, so the event loop keeps its time for the deliveries (docs/decisions.md, "The platform
HTTP client"; the benchmark figures are in bench/README.md). httpcore's pool, httpx's own,
looks at every connection to place each request (about 4 ms of CPU per call at 32
connections); aiohttp's, used before, about 0.55 ms, nearly all of it on the event loop.

What this adapter makes sure of:

- The URL goes out exactly as httpx encoded it (LinkedIn's `urn%3Ali%3Aimage%3A…` path keys
  must not be decoded).
- A failure says whether the request left. `ConnectError`/`ConnectTimeout` mean nothing was
  sent, so a publish may be tried again at once; anything else (a connection lost after
  sending, no answer in time) means the platform may have acted on it, so the engine
  reconciles first. A lost connection must never read as "not sent" (see `_failure`).
- httpx decodes the body by its Content-Encoding and follows redirects when asked; reqwest
  does neither, and keeps no cookies.
- A cancelled call ends cancelled. pyreqwest (0.15.1) can lose a cancellation that lands
  just as its call completes: the await returns the answer as if the task had never been
  cancelled, and the task runs on (a worker past its shutdown grace, a delivery whose lease
  was lost, an `asyncio.timeout` that never fires). Each await on it is checked, and the
  cancellation raised again (`_Heeded`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http.cookiejar
import time
from collections.abc import AsyncIterator
from json import dumps as json_dumps
from typing import Any

import httpx
import pyreqwest.client
import pyreqwest.exceptions
import pyreqwest.request
import pyreqwest.response

CONNECT_SECONDS = 5.0
# A pooled connection idle this long is closed, not reused: under the 5 s after which many
# servers close an idle one (uvicorn's default, so the sandbox's; Node's), so that a request
# is not sent on a connection such a server is closing at that moment.
KEEPALIVE_SECONDS = 4.0
# how hyper names a failure to connect (nothing written yet) in an error's causes
CONNECT_PHASE = "client error (Connect)"
JSON_TYPE = (b"Content-Type", b"application/json")
URLS_KEPT = 4096  # parsed URLs kept by a client (a connector's URLs repeat per account)


def platform_client(concurrency: int, timeout_seconds: float) -> httpx.AsyncClient:
    """A pooled client for one platform: at most `concurrency` connections at once."""
    timeout = httpx.Timeout(timeout_seconds, connect=min(CONNECT_SECONDS, timeout_seconds))
    return PlatformClient(PlatformTransport(concurrency, timeout), timeout)


class PlatformClient(httpx.AsyncClient):
    """httpx's client on `PlatformTransport`, keeping no cookies, with a short way for a plain
    call (no auth, no redirect to follow, no event hooks, not streamed; nearly every call a
    connector makes): sent and read in one piece by the transport, past httpx's auth and
    redirect machinery, its cookie extraction and its per-response stream wrappers. Those
    cost about a sixth of a delivery's CPU in a burst; any other call takes httpx's way.
    """

    def __init__(self, transport: PlatformTransport, timeout: httpx.Timeout) -> None:
        super().__init__(transport=transport, timeout=timeout, follow_redirects=False)
        self._platform = transport
        self._no_cookies = _NoCookies()
        self._urls: dict[str, httpx.URL] = {}

    @property
    def cookies(self) -> httpx.Cookies:
        """Always empty: one client serves many accounts, and platform APIs are authorized by
        token, so a cookie one account's answer sets must never ride along with another
        account's call (LinkedIn, for one, sets cookies on its API answers)."""
        return self._no_cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        raise TypeError("a platform client keeps no cookies")

    def build_request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        content: Any = None,
        data: Any = None,
        files: Any = None,
        json: Any = None,
        params: Any = None,
        headers: Any = None,
        cookies: Any = None,
        timeout: Any = httpx.USE_CLIENT_DEFAULT,
        extensions: Any = None,
    ) -> httpx.Request:
        """httpx's request, built the short way for the common call: an absolute URL given
        as text (parsed once, then kept), headers as a dict of text or none, a JSON or raw
        (bytes or text) body, and nothing else to merge (no query parameters, form, files,
        cookies, extensions or timeout of its own). The client's headers go first, those of
        the call replace them by name (as httpx merges them). Anything else is built by
        httpx."""
        parsed = self._url(url) if isinstance(url, str) else None
        if (
            parsed is None
            or not (content is None or isinstance(content, bytes | str))
            or parsed.is_relative_url
            or not (headers is None or isinstance(headers, dict))
            or not all(isinstance(name, str) for name in headers or ())
            or any(v is not None for v in (data, files, params, cookies, extensions))
            or timeout is not httpx.USE_CLIENT_DEFAULT
            or self.params
        ):
            return super().build_request(
                method,
                url,
                content=content,
                data=data,
                files=files,
                json=json,
                params=params,
                headers=headers,
                cookies=cookies,
                timeout=timeout,
                extensions=extensions,
            )
        return self._short_request(method, parsed, content, json, headers)

    def _short_request(
        self,
        method: str,
        url: httpx.URL,
        content: bytes | str | None,
        json: Any,
        headers: dict[str, Any] | None,
    ) -> httpx.Request:
        """The request from a ready body and headers, as httpx would have built it."""
        body, body_headers = _encoded(content, json)
        merged: list[tuple[Any, Any]] = list(self.headers.raw)
        if headers:
            replaced = {name.lower().encode() for name in headers}
            merged = [(k, v) for k, v in merged if k.lower() not in replaced]
            merged += headers.items()  # made bytes by httpx (and refused if not ASCII)
        request = httpx.Request(
            method,
            url,
            headers=_with_auto_headers(method.upper(), url, merged, body_headers),
            stream=httpx.ByteStream(body),
            extensions={"timeout": self.timeout.as_dict()},
        )
        request.read()  # the body as `content`, as httpx keeps a body given whole
        return request

    def _url(self, url: str) -> httpx.URL:
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= URLS_KEPT:
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        return parsed

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        redirects = (
            self.follow_redirects
            if follow_redirects is httpx.USE_CLIENT_DEFAULT
            else follow_redirects
        )
        plain = auth is httpx.USE_CLIENT_DEFAULT and self.auth is None and not redirects
        if stream or not plain or self.is_closed or any(self.event_hooks.values()):
            return await super().send(
                request, stream=stream, auth=auth, follow_redirects=follow_redirects
            )
        request.extensions.setdefault("timeout", self.timeout.as_dict())
        return await self._platform.read(request)


def _encoded(content: bytes | str | None, json: Any) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The body and its headers, as httpx encodes raw content (before JSON) or JSON."""
    if content is not None:
        body = content.encode() if isinstance(content, str) else content
        return body, [(b"Content-Length", b"%d" % len(body))] if body else []
    if json is not None:
        text = json_dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        body = text.encode()
        return body, [(b"Content-Length", b"%d" % len(body)), JSON_TYPE]
    return b"", []


def _with_auto_headers(
    method: str,
    url: httpx.URL,
    headers: list[tuple[Any, Any]],
    body_headers: list[tuple[bytes, bytes]],
) -> list[tuple[Any, Any]]:
    """httpx's order: Host and an empty body's length (when not given) first, then the
    headers given, then the body's headers that were not given."""
    given = {(k if isinstance(k, bytes) else k.encode()).lower() for k, _ in headers}
    auto: list[tuple[Any, Any]] = []
    if b"host" not in given and url.host:
        auto.append((b"Host", url.netloc))
    body = [(k, v) for k, v in body_headers if k.lower() not in given]
    given.update(k.lower() for k, _ in body_headers)
    if method in ("POST", "PUT", "PATCH") and not given & {b"content-length", b"transfer-encoding"}:
        auto.append((b"Content-Length", b"0"))
    return auto + headers + body


class _NoCookies(httpx.Cookies):
    """A jar that takes nothing in: what an answer sets is not even parsed."""

    def __init__(self) -> None:
        super().__init__()
        self.jar.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        raise TypeError("a platform client keeps no cookies")


class PlatformTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests on a pyreqwest client (made on first use): Rust's reqwest and
    hyper keep the connections, write the requests and parse the answers on their own thread,
    outside the GIL. At most `max_connections` requests are out at once; one that waits for
    its turn longer than its pool timeout has not been sent."""

    def __init__(self, max_connections: int, timeout: httpx.Timeout) -> None:
        self._slots = asyncio.Semaphore(max_connections)
        self._fixed = (timeout.connect, timeout.read)  # reqwest's client is made with these
        self._client: pyreqwest.client.Client | None = None

    def _open(self) -> pyreqwest.client.Client:
        if self._client is None:
            builder = (
                pyreqwest.client.ClientBuilder()
                .follow_redirects(False)  # httpx follows them, when asked to
                .referer(False)
                .gzip(False)  # httpx decodes by Content-Encoding
                .brotli(False)
                .zstd(False)
                .deflate(False)
                .pool_idle_timeout(dt.timedelta(seconds=KEEPALIVE_SECONDS))
            )
            connect, read = self._fixed
            if connect is not None:
                builder = builder.connect_timeout(dt.timedelta(seconds=connect))
            if read is not None:
                builder = builder.read_timeout(dt.timedelta(seconds=read))
            self._client = builder.build()  # cookies: none kept (see PlatformClient.cookies)
        return self._client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """httpx's way: the answer's body streamed as httpx reads it."""
        builder = await self._builder(request)
        await self._take_slot(request)
        heeded = _Heeded()
        try:
            opened = builder.build_streamed()
            answer = await opened.__aenter__()
            if heeded.lost():
                await opened.__aexit__(None, None, None)
                raise asyncio.CancelledError
        except BaseException as exc:
            self._slots.release()
            if isinstance(exc, pyreqwest.exceptions.PyreqwestError):
                raise _failure(exc, request) from exc
            raise
        return _response(answer, request, _Body(answer, opened, self._slots, request))

    async def read(self, request: httpx.Request) -> httpx.Response:
        """The whole answer, read and decoded (`PlatformClient`'s short way)."""
        started = time.perf_counter()
        builder = await self._builder(request)
        await self._take_slot(request)
        heeded = _Heeded()
        try:
            answer = await builder.build().send()  # the body read in full on reqwest's side
            body = bytes(await answer.bytes())
        except pyreqwest.exceptions.PyreqwestError as exc:
            raise _failure(exc, request) from exc
        finally:
            self._slots.release()
        heeded.check()
        response = _response(answer, request, httpx.ByteStream(body))
        response.read()  # decoded by its Content-Encoding, as httpx does
        response.elapsed = dt.timedelta(seconds=time.perf_counter() - started)
        return response

    async def _builder(self, request: httpx.Request) -> pyreqwest.request.RequestBuilder:
        """reqwest's request; one it refuses to build (a header value or host name it does
        not take) has not been sent: `ConnectError`, as a refused connection."""
        body = await request.aread()
        headers = [(k, v) for k, v in request.headers.multi_items() if k != "transfer-encoding"]
        try:
            builder = self._open().request(request.method, str(request.url)).headers(headers)
        except ValueError as exc:  # pyreqwest's BuilderError is one too
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}", request=request) from exc
        if body:
            builder = builder.body_bytes(body)
        deadline = self._own_deadline(request.extensions.get("timeout", {}))
        return builder if deadline is None else builder.timeout(dt.timedelta(seconds=deadline))

    def _own_deadline(self, timeouts: dict[str, float | None]) -> float | None:
        """A call given its own connect or read timeout: the client's are fixed when it is
        made, so the call gets a deadline of both together (a call with no answer in time
        counts as possibly sent, as a read timeout does)."""
        connect, read = timeouts.get("connect"), timeouts.get("read")
        if connect is None or read is None or (connect, read) == self._fixed:
            return None
        return connect + read

    async def _take_slot(self, request: httpx.Request) -> None:
        if not self._slots.locked():  # a slot is free: taken at once, no timer needed
            await self._slots.acquire()
            return
        pool = request.extensions.get("timeout", {}).get("pool")
        try:
            async with asyncio.timeout(pool):
                await self._slots.acquire()
        except TimeoutError:
            message = f"No free connection within {pool:g} s."
            raise httpx.ConnectTimeout(message, request=request) from None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _response(
    answer: pyreqwest.response.BaseResponse,
    request: httpx.Request,
    stream: httpx.AsyncByteStream,
) -> httpx.Response:
    return httpx.Response(
        status_code=answer.status,
        headers=list(answer.headers.items()),
        stream=stream,
        request=request,
        extensions={"http_version": answer.version.encode()},
    )


class _Body(httpx.AsyncByteStream):
    """The answer's bytes; a failure while reading them is a failure after sending. Closing
    it gives the connection back (to the pool when read to the end) and frees its slot."""

    def __init__(
        self,
        answer: pyreqwest.response.Response,
        opened: pyreqwest.request.StreamRequest,
        slots: asyncio.Semaphore,
        request: httpx.Request,
    ) -> None:
        self._reader = answer.body_reader
        self._opened: pyreqwest.request.StreamRequest | None = opened
        self._slots = slots
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            while True:
                heeded = _Heeded()
                chunk = await self._reader.read_chunk()
                heeded.check()
                if chunk is None:
                    return
                yield bytes(chunk)
        except pyreqwest.exceptions.PyreqwestError as exc:
            raise _failure(exc, self._request) from exc

    async def aclose(self) -> None:
        opened, self._opened = self._opened, None
        if opened is not None:
            try:
                await opened.__aexit__(None, None, None)
            finally:
                self._slots.release()


class _Heeded:
    """Whether a cancellation of the current task was lost by the pyreqwest awaits made since
    this was made: the task was asked to cancel (`cancelling()` went up) and they returned.

    Seen in a test loop (tests/platforms/test_transport.py): a cancel that lands once the
    answer is ready, before the task resumes, was lost about a third of the time. pyo3 hands
    an exception thrown into a Rust coroutine to the Rust future, which may return its
    result instead. Any other await raises the CancelledError itself, so the count only
    rises over a lost one.
    """

    __slots__ = ("_asked", "_task")

    def __init__(self) -> None:
        self._task = asyncio.current_task()
        self._asked = self._task.cancelling() if self._task is not None else 0

    def lost(self) -> bool:
        return self._task is not None and self._task.cancelling() > self._asked

    def check(self) -> None:
        if self.lost():
            raise asyncio.CancelledError


def _failure(exc: pyreqwest.exceptions.PyreqwestError, request: httpx.Request) -> httpx.HTTPError:
    """The httpx error for what reqwest saw: Connect* only when the request never left.

    pyreqwest's own classes cannot tell: a connection the host closed after reading the
    request comes as its `ConnectError`, and an answer that never came as its
    `ConnectTimeoutError`. Only a cause from hyper's connect phase (no byte of the request
    written) counts as not sent; anything else may have been acted on.
    """
    errors = pyreqwest.exceptions
    message = f"{type(exc).__name__}: {exc}"
    details: dict[str, Any] = (
        dict(exc.details or {}) if isinstance(exc, errors.DetailedPyreqwestError) else {}
    )
    causes = [str(cause.get("message")) for cause in details.get("causes") or []]
    if isinstance(exc, errors.BuilderError) or CONNECT_PHASE in causes:
        if isinstance(exc, errors.RequestTimeoutError):
            return httpx.ConnectTimeout(message, request=request)
        return httpx.ConnectError(message, request=request)
    if isinstance(exc, errors.RequestTimeoutError):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(exc, errors.ReadError | errors.BodyDecodeError):
        return httpx.ReadError(message, request=request)
    return httpx.RemoteProtocolError(message, request=request)
