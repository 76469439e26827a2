"""A request head (request line and headers) over 64 KiB is refused with 431 before httptools
spends the event loop's time gathering it; bodies, and heads under the bound, pass."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from soku.http_head import MAX_HEAD_BYTES, BoundedHttpTools
from tests.asgi_server import serving
from tests.test_serve import serving as soku_serving
from tests.test_serve import soku_env


async def echo_size(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with the number of body bytes it read."""
    size, more = 0, True
    while more:
        message = await receive()
        size, more = size + len(message.get("body", b"")), message.get("more_body", False)
    headers = [(b"content-length", str(len(str(size))).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": str(size).encode()})


async def slow_echo_size(scope: Scope, receive: Receive, send: Send) -> None:
    """`echo_size`, answering after a moment: the next request on the connection arrives first."""
    await asyncio.sleep(0.3)
    await echo_size(scope, receive, send)


@contextlib.asynccontextmanager
async def bounded_server(app: ASGIApp = echo_size) -> AsyncIterator[int]:
    async with serving(app, http=BoundedHttpTools) as url:
        yield int(url.rsplit(":", 1)[1])


async def exchange(port: int, *requests: bytes) -> bytes:
    """Writes the requests on one connection and reads until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for request in requests:
            writer.write(request)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        return await asyncio.wait_for(reader.read(-1), 10)
    finally:
        writer.close()


def request(header_bytes: int, body: bytes = b"", *, close: bool = True) -> bytes:
    head = f"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n"
    head += "Connection: close\r\n" if close else ""
    return head.encode() + b"X-Big: " + b"a" * header_bytes + b"\r\n\r\n" + body


async def test_a_head_over_the_bound_is_refused_with_the_envelope() -> None:
    async with bounded_server() as port:
        answer = await exchange(port, request(MAX_HEAD_BYTES * 16))
    status, _, body = answer.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 431 ")
    error = json.loads(body)["error"]
    assert (error["code"], error["details"]) == ("headers_too_large", {"maxBytes": MAX_HEAD_BYTES})


async def test_heads_under_the_bound_and_large_bodies_pass() -> None:
    body = b"b" * (4 * MAX_HEAD_BYTES)
    async with bounded_server() as port:
        big_body = await exchange(port, request(100, body))
        # two heads near the bound on one connection: each is counted on its own
        twice = await exchange(
            port, request(MAX_HEAD_BYTES - 200, close=False), request(MAX_HEAD_BYTES - 200)
        )
    assert big_body.startswith(b"HTTP/1.1 200 ") and big_body.endswith(str(len(body)).encode())
    assert twice.count(b"HTTP/1.1 200 ") == 2


async def test_a_request_still_answered_is_answered_before_the_refusal() -> None:
    """HTTP/1.1 answers requests in order: a huge head sent behind a request that is still
    being answered is refused after that answer, not in its place (the client would read the
    431 as the first request's answer, and the app's own answer could not be written)."""
    async with bounded_server(slow_echo_size) as port:
        answer = await exchange(
            port, request(100, b"xyz", close=False), request(MAX_HEAD_BYTES * 16)
        )
    first, _, rest = answer.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200 ") and rest.startswith(b"3HTTP/1.1 431 "), answer[:300]


def test_soku_serve_refuses_a_huge_head(tmp_path: Path) -> None:
    env = soku_env(SOKU_DATA_DIR=str(tmp_path / "data"))
    with soku_serving(env, tmp_path / "logs") as server, server.client() as http:
        refused = http.get("/healthz", headers={"X-Big": "a" * (MAX_HEAD_BYTES * 16)})
        assert refused.status_code == 431
        assert refused.json()["error"]["code"] == "headers_too_large"
        assert http.get("/healthz", headers={"X-Big": "a" * 30_000}).status_code == 200
