"""`PlatformTransport`: httpx's transport on pyreqwest's client (`soku.platforms.transport`
puts httpx's client on it).

What it makes sure of:

- The URL goes out exactly as httpx encoded it (LinkedIn's `urn%3Ali%3Aimage%3A…` path keys
  must not be decoded).
- A failure says whether the request left. `ConnectError`/`ConnectTimeout` mean nothing was
  sent, so a publish may be tried again at once; anything else (a connection lost after
  sending, no answer in time) means the platform may have acted on it, so the engine
  reconciles first. A lost connection must never read as "not sent" (see `_failure`).
- A cancelled call ends cancelled. pyreqwest (0.15.1) can lose a cancellation that lands
  just as its call completes: the await returns the answer as if the task had never been
  cancelled, and the task runs on (a worker past its shutdown grace, a delivery whose lease
  was lost, an `asyncio.timeout` that never fires). Each await on it is checked, and the
  cancellation raised again (`_Heeded`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pyreqwest.client
import pyreqwest.exceptions
import pyreqwest.request
import pyreqwest.response

# A pooled connection idle this long is closed, not reused: under the 5 s after which many
# servers close an idle one (uvicorn's default, so the sandbox's; Node's), so that a request
# is not sent on a connection such a server is closing at that moment.
KEEPALIVE_SECONDS = 4.0
# how hyper names a failure to connect (nothing written yet) in an error's causes
CONNECT_PHASE = "client error (Connect)"


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
            if heeded.lost():  # the answer closed unread; the cancel is what the caller gets
                with contextlib.suppress(pyreqwest.exceptions.PyreqwestError):
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
            heeded.check()
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
    details: dict[str, Any] = (
        dict(exc.details or {}) if isinstance(exc, errors.DetailedPyreqwestError) else {}
    )
    causes = [str(cause.get("message")) for cause in details.get("causes") or []]
    message = _reason(causes) or f"{type(exc).__name__}: {exc}"
    if isinstance(exc, errors.BuilderError) or CONNECT_PHASE in causes:
        if isinstance(exc, errors.RequestTimeoutError):
            return httpx.ConnectTimeout(message, request=request)
        return httpx.ConnectError(message, request=request)
    if isinstance(exc, errors.RequestTimeoutError):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(exc, errors.ReadError | errors.BodyDecodeError):
        return httpx.ReadError(message, request=request)
    return httpx.RemoteProtocolError(message, request=request)


def _reason(causes: list[str]) -> str:
    """What went wrong, from hyper's causes, as `tcp connect error: Connection refused (os
    error 111)` or `operation timed out`. The cause naming the URL is left out (its path may
    hold ids; the engine keeps the origin apart), and so are hyper's phase and pyreqwest's
    class name, which says "ConnectTimeoutError" for an answer that never came too.
    """
    kept = [
        cause
        for cause in causes
        if cause != CONNECT_PHASE and not cause.startswith("error sending request for url")
    ]
    return ": ".join(dict.fromkeys(kept))
