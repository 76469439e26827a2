"""The platform client: httpx answers as usual, and a failure says whether the request left.

A raw asyncio server plays each way a platform's host can fail, over real sockets.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

import httpx
import pytest

from soku.platforms.connector import ErrorKind, transport_error
from soku.platforms.transport import platform_client
from tests.asgi_server import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


@asynccontextmanager
async def host(handler: Handler) -> AsyncIterator[str]:
    seen: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(writer)
        with suppress(ConnectionError, asyncio.IncompleteReadError):
            await handler(reader, writer)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for writer in seen:
            writer.close()
        await server.wait_closed()


async def answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        request = await read_request(reader)
        target = request.split(b" ")[1]
        cookie = b"\r\ncookie:" in request.lower()
        body = b'{"target": "%s", "size": %d, "cookie": %s}' % (
            target,
            len(request),
            b"true" if cookie else b"false",
        )
        writer.write(
            b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n"
            b"x-rate-limit-reset: 1\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()


async def hangs_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.close()


async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    await asyncio.sleep(30)


async def half_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"id":')
    await writer.drain()
    writer.close()


def httpx_way(client: httpx.AsyncClient, way: str) -> httpx.AsyncClient:
    """`short`: a plain call, sent and read in one piece by the transport; `httpx`: the same
    call through httpx's own machinery (an event hook turns the short way off)."""

    async def noticed(response: httpx.Response) -> None:
        assert response.status_code

    if way == "httpx":
        client.event_hooks = {"response": [noticed]}
    return client


WAYS = pytest.mark.parametrize("way", ["short", "httpx"])


@WAYS
async def test_a_call_round_trips_with_status_headers_and_body(way: str) -> None:
    async with host(answers) as base, platform_client(4, 5) as client:
        httpx_way(client, way)
        for _ in range(3):  # the kept-alive connection serves the next calls
            response = await client.post(f"{base}/v1/posts", json={"text": "hello"})
            assert response.status_code == 201
            assert response.headers["x-rate-limit-reset"] == "1"
            assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
            assert response.json()["cookie"] is False  # one account's cookies never ride along
            assert response.json()["target"] == "/v1/posts"
        uploaded = await client.put(f"{base}/upload", content=b"\x00" * 70_000)
        assert uploaded.json()["size"] > 70_000
        assert uploaded.elapsed.total_seconds() > 0


async def gzipped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    body = gzip.compress(b'{"id": "compressed"}')
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(body), body)
    )
    await writer.drain()


@WAYS
async def test_an_encoded_answer_is_decoded(way: str) -> None:
    async with host(gzipped) as base, platform_client(4, 5) as client:
        response = await httpx_way(client, way).get(f"{base}/v1/media")
    assert response.json() == {"id": "compressed"}


async def test_the_client_takes_no_cookies_in() -> None:
    async with platform_client(4, 5) as client:
        with pytest.raises(TypeError):
            client.cookies = {"session": "one account's"}
        with pytest.raises(TypeError):
            client.cookies.set("session", "one account's")
        assert not client.cookies


async def test_the_url_goes_out_exactly_as_httpx_encoded_it() -> None:
    # LinkedIn's Rest.li keys: a re-quoting client would send `urn:li:image:C4E`.
    path = "/rest/images/urn%3Ali%3Aimage%3AC4E?ids=List(urn%3Ali%3Aimage%3Aa)&q=%28x%29"
    async with host(answers) as base, platform_client(4, 5) as client:
        response = await client.get(f"{base}{path}")
    assert response.json()["target"] == path


async def test_refused_connection_is_not_sent() -> None:
    async with platform_client(4, 5) as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await client.post(f"http://127.0.0.1:{free_port()}/v1/posts", json={})
    assert transport_error(caught.value, "X").kind is ErrorKind.connection


@WAYS
@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("http://exa mple.com/v1/posts", {}),  # a host name that cannot be one
        ("http://127.0.0.1:9/v1/posts", {"X-Id": "a\x01b"}),  # a control byte in a value
    ],
)
async def test_a_request_that_cannot_be_built_is_not_sent(
    url: str, headers: dict[str, str], way: str
) -> None:
    async with platform_client(4, 5) as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await httpx_way(client, way).post(url, json={}, headers=headers)
    assert transport_error(caught.value, "X").kind is ErrorKind.connection


@WAYS
@pytest.mark.parametrize(
    ("handler", "expected"),
    [(hangs_up, httpx.RemoteProtocolError), (half_body, httpx.ReadError)],
)
async def test_a_connection_lost_after_sending_may_have_been_acted_on(
    handler: Handler, expected: type[httpx.HTTPError], way: str
) -> None:
    async with host(handler) as base, platform_client(4, 5) as client:
        with pytest.raises(httpx.TransportError) as caught:
            await httpx_way(client, way).post(f"{base}/v1/posts", json={"text": "hello"})
    assert isinstance(caught.value, expected)
    assert not isinstance(caught.value, httpx.ConnectError | httpx.ConnectTimeout)
    assert transport_error(caught.value, "X").kind is ErrorKind.timeout


@WAYS
async def test_no_answer_in_time_is_a_read_timeout(way: str) -> None:
    async with host(never_answers) as base, platform_client(4, 0.3) as client:
        with pytest.raises(httpx.ReadTimeout) as caught:
            await httpx_way(client, way).post(f"{base}/v1/posts", json={"text": "hello"})
    assert transport_error(caught.value, "X").kind is ErrorKind.timeout


async def test_a_call_with_its_own_shorter_timeout_gives_up_on_time() -> None:
    # the client's read timeout is fixed when it is made: a call given its own gets a deadline
    async with host(never_answers) as base, platform_client(4, 30) as client:
        started = asyncio.get_running_loop().time()
        with pytest.raises(httpx.ReadTimeout) as caught:
            await client.post(f"{base}/v1/posts", json={}, timeout=0.3)
        waited = asyncio.get_running_loop().time() - started
    assert waited < 5, waited
    assert transport_error(caught.value, "X").kind is ErrorKind.timeout


async def test_waiting_for_a_free_connection_too_long_is_not_sent() -> None:
    async with host(never_answers) as base, platform_client(1, 1.5) as client:
        holder = asyncio.create_task(client.post(f"{base}/first", json={}))
        await asyncio.sleep(0.1)  # the only connection is taken
        with pytest.raises(httpx.ConnectTimeout) as caught:
            await client.post(f"{base}/second", json={}, timeout=httpx.Timeout(1.5, pool=0.3))
        with pytest.raises(httpx.ReadTimeout):
            await holder
    assert transport_error(caught.value, "X").kind is ErrorKind.connection


async def test_a_connection_idle_near_a_servers_keep_alive_is_not_reused() -> None:
    # Many servers close a connection idle for 5 s (uvicorn's, and so the sandbox's, Node's).
    # A request sent on it just then may be lost with the connection after it left: for a
    # publish, a possible duplicate to reconcile, not a call that can be sent again at once.
    connections: list[int] = []

    async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections))
        await answers(reader, writer)

    async with host(counted) as base, platform_client(4, 5) as client:
        await client.post(f"{base}/first", json={})
        await client.post(f"{base}/soon", json={})  # reused at once
        assert len(connections) == 1
        await asyncio.sleep(4.5)  # near the 5 s: the pool has let it go by now
        await client.post(f"{base}/later", json={})
    assert len(connections) == 2


async def test_the_proxy_variables_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    async with host(answers) as proxy:
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy)
        async with platform_client(4, 5) as client:
            response = await client.post("http://platform.invalid/v1/posts", json={})
    # the proxy got the call, addressed by its absolute URL
    assert response.json()["target"] == "http://platform.invalid/v1/posts"


@WAYS
async def test_a_cancelled_call_gives_its_connection_slot_back(way: str) -> None:
    async with (
        host(never_answers) as silent,
        host(answers) as base,
        platform_client(1, 5) as client,
    ):
        httpx_way(client, way)
        stuck = asyncio.create_task(client.post(f"{silent}/first", json={}))
        await asyncio.sleep(0.2)  # it holds the only slot, waiting for an answer
        stuck.cancel()
        with suppress(asyncio.CancelledError):
            await stuck
        pool = httpx.Timeout(5, pool=1.0)
        response = await client.post(f"{base}/second", json={}, timeout=pool)
    assert response.status_code == 201


LATE_BODY = 2**20


@WAYS
@pytest.mark.parametrize("body_later", [False, True])
async def test_a_call_cancelled_as_its_answer_arrives_ends_cancelled(
    way: str, body_later: bool
) -> None:
    """The cancel lands once reqwest has the answer (`body_later`: the end of its body, sent
    after the head and most of the body) and before the caller resumes: pyreqwest may return
    it as if the caller had not been cancelled (about a third of the time), and a cancelled
    delivery would run on. Forty tries on four connection slots: each must end cancelled
    and give its slot back."""
    callers: list[asyncio.Task[httpx.Response]] = []

    async def answers_then_cancels(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            await read_request(reader)
            if body_later:  # past what pyreqwest reads before handing the answer over
                head = b"content-length: %d\r\n\r\n" % (LATE_BODY + 2)
                writer.write(b"HTTP/1.1 200 OK\r\n" + head + b" " * LATE_BODY)
                await writer.drain()
                await asyncio.sleep(0.03)  # the caller has the head and reads the body
            else:
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
            writer.write(b"{}")
            await writer.drain()
            # the loop held on purpose: reqwest reads the answer and wakes the caller meanwhile
            time.sleep(0.02)  # noqa: ASYNC251
            callers[-1].cancel()

    async with host(answers_then_cancels) as base, platform_client(4, 5) as client:
        httpx_way(client, way)
        for n in range(40):
            callers.append(asyncio.create_task(client.get(f"{base}/v1/me/{n}")))
            with pytest.raises(asyncio.CancelledError):
                await callers[-1]
            assert callers[-1].cancelled()


BUILDS = [
    {"json": {"text": "hé", "media_ids": [], "n": 1}},
    {"json": {"text": "x"}, "headers": {"Authorization": "Bearer t", "ACCEPT": "application/json"}},
    {"content": b"raw bytes", "headers": {"Content-Type": "application/octet-stream"}},
    {"content": "text body", "headers": {"user-agent": "soku-test", "X-Id": "1"}},
    {"headers": {"Authorization": "Bearer t"}},
    {},
    {"content": b""},
    {"content": "", "json": {"ignored": True}},
    {"content": b"both", "json": {"ignored": True}},
    {"json": {"a": 1}, "headers": {"content-type": "application/vnd.x+json"}},
    {"json": {"a": 1}, "headers": {"Content-Length": "7", "HOST": "other.example"}},
    {"headers": {"Transfer-Encoding": "chunked"}},
    {"json": []},
    # httpx builds these (the short way does not take them); the same request either way
    {"params": {"limit": 5, "since": "2026-01-01T00:00:00+00:00"}},
    {"data": {"a": "1"}},
    {"headers": [("Authorization", "Bearer t"), ("X-Twice", "1"), ("X-Twice", "2")]},
    {"json": {"a": 1}, "headers": {b"Authorization": b"Bearer t", b"Accept": b"text/plain"}},
    {"json": {"a": 1}, "timeout": 3.0},
    {"json": {"a": 1}, "extensions": {"trace": None}},
]


@pytest.mark.parametrize("kwargs", BUILDS)
@pytest.mark.parametrize("url", ["http://127.0.0.1:9/v1/users/u%201/posts?x=1", "/relative"])
@pytest.mark.parametrize("method", ["POST", "get", "PUT", "DELETE"])
async def test_the_short_build_makes_the_request_httpx_makes(
    kwargs: dict[str, object], url: str, method: str
) -> None:
    client = platform_client(4, 7.0)
    if url.startswith("/"):
        client.base_url = httpx.URL("http://127.0.0.1:9/api/")
    try:
        for _ in range(2):  # the second time with the URL as kept
            mine = client.build_request(method, url, **kwargs)  # type: ignore[arg-type]
            theirs = httpx.AsyncClient.build_request(client, method, url, **kwargs)  # type: ignore[arg-type]
            assert mine.method == theirs.method
            assert mine.url == theirs.url
            assert mine.headers.multi_items() == theirs.headers.multi_items()
            assert mine.read() == theirs.read()
            assert type(mine.stream) is type(theirs.stream)
            assert mine.extensions == theirs.extensions
    finally:
        await client.aclose()


@pytest.mark.parametrize("headers", [{"X-Name": "hé"}, {"X-Count": 3}])
async def test_the_short_build_refuses_what_httpx_refuses(headers: dict[str, object]) -> None:
    client = platform_client(4, 7.0)
    try:
        with pytest.raises((UnicodeEncodeError, TypeError)) as mine:
            client.build_request("POST", "http://127.0.0.1:9/x", json={}, headers=headers)  # type: ignore[arg-type]
        with pytest.raises((UnicodeEncodeError, TypeError)) as theirs:
            httpx.AsyncClient.build_request(
                client,
                "POST",
                "http://127.0.0.1:9/x",
                json={},
                headers=headers,  # type: ignore[arg-type]
            )
        assert type(mine.value) is type(theirs.value)
    finally:
        await client.aclose()


async def test_a_failure_says_why_in_plain_words_without_the_url() -> None:
    """The message reaches `GET /v1/posts/{id}`: the reason, not pyreqwest's class name (it
    said "ConnectTimeoutError" for an answer that never came) nor the URL with its path."""
    async with platform_client(4, 0.3) as client:
        with pytest.raises(httpx.ConnectError) as refused:
            await client.post(f"http://127.0.0.1:{free_port()}/2/users/42/tweets", json={})
        async with host(never_answers) as base:
            with pytest.raises(httpx.ReadTimeout) as late:
                await client.post(f"{base}/2/users/42/tweets", json={})
    connection, timeout = transport_error(refused.value, "X"), transport_error(late.value, "X")
    assert connection.message.startswith("Could not connect to X (tcp connect error: ")
    assert "Connection refused" in connection.message
    assert timeout.message == "X did not answer in time (operation timed out)."
    for error in (connection, timeout):
        assert "/2/users/42" not in error.message and "Error" not in error.message
