"""The safe fetcher against real servers on loopback, and the SSRF suite proving what it refuses."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import os
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, ip_address
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from PIL import Image

from soku.media.addresses import IPAddress, blocked_reason
from soku.media.fetcher import FetchLimits, fetch_to_file
from soku.media.types import FetchError
from tests.certificates import certificate, write_pem
from tests.media.test_sniff import make_image, make_video

OPEN = FetchLimits(allow_private=True, total_timeout=10)  # loopback is where tests can serve
GUARDED = FetchLimits(total_timeout=10)
TEST_HOST = IPv4Address("127.0.0.1")
TLS = httpx.create_ssl_context()  # made once: each one costs a tenth of a second

BodyStream = Callable[[], AsyncIterator[bytes]]


@dataclass
class Reply:
    status: int = 200
    body: bytes | BodyStream = b""
    headers: dict[str, str] = field(default_factory=dict)
    length: bool = True  # send Content-Length; else the body goes chunked
    stall: float = 0.0  # seconds before answering at all


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class Server:
    """A small HTTP/1.1 server on loopback answering each path with its Reply."""

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self.host, self.tls = host, tls
        self.routes: dict[str, Reply] = {}
        self.seen: list[Seen] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._handle, self.host, 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        self._server.close()
        for task in self._tasks:
            task.cancel()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            lines = [line.split(":", 1) for line in head[1:] if ":" in line]
            self.seen.append(Seen(head[0].split()[1], {k.lower(): v.strip() for k, v in lines}))
            reply = self.routes.get(self.seen[-1].path, Reply(404, b"no such file"))
            await asyncio.sleep(reply.stall)
            await _answer(writer, reply)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the test is over
        finally:
            self._tasks.discard(task)
            writer.close()


async def _answer(writer: asyncio.StreamWriter, reply: Reply) -> None:
    headers = {"Connection": "close", **reply.headers}
    if reply.length and isinstance(reply.body, bytes):
        headers.setdefault("Content-Length", str(len(reply.body)))
    elif "Content-Length" not in headers:
        headers["Transfer-Encoding"] = "chunked"
    lines = [f"HTTP/1.1 {reply.status} X"] + [f"{k}: {v}" for k, v in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    chunked = "Transfer-Encoding" in headers
    chunks = reply.body() if callable(reply.body) else _pieces(reply.body)
    async for chunk in chunks:
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        await writer.drain()
    if chunked:
        writer.write(b"0\r\n\r\n")
    await writer.drain()


async def _pieces(body: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def endless(prefix: bytes, pause: float = 0.0) -> BodyStream:
    """A body that starts with `prefix` and never ends (zeros, with `pause` between chunks)."""

    async def stream() -> AsyncIterator[bytes]:
        yield prefix
        while True:
            await asyncio.sleep(pause)
            yield bytes(16_384)

    return stream


def lab_policy(ip: IPAddress) -> str | None:
    """127.0.0.1 plays a public test server; every other address is judged as in production."""
    return None if ip == TEST_HOST else blocked_reason(ip)


def noise_png() -> bytes:
    buffer = io.BytesIO()
    Image.frombytes("RGB", (96, 96), os.urandom(96 * 96 * 3)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with Server() as running:
        yield running


async def refused(url: str, tmp_path: Path, limits: FetchLimits, **kwargs: object) -> FetchError:
    dest = tmp_path / "media.bin"
    with pytest.raises(FetchError) as caught:
        await fetch_to_file(url, dest, limits, **kwargs)  # type: ignore[arg-type]
    assert not dest.exists()
    return caught.value


# --- what a good fetch gives ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content_type", "make"),
    [
        ("photo.jpg", "image/jpeg", lambda: make_image("JPEG", (64, 64))),
        ("noise.png", "image/png", noise_png),  # many chunks, more than the sniffed head
        ("clip.mp4", "video/mp4", lambda: make_video("mp4")),  # less than the sniffed head
        ("clip.webm", "video/webm", lambda: make_video("webm")),
    ],
)
@pytest.mark.parametrize("length", [True, False], ids=["content-length", "chunked"])
async def test_media_is_fetched(
    server: Server,
    tmp_path: Path,
    name: str,
    content_type: str,
    make: Callable[[], bytes],
    length: bool,
) -> None:
    body = make()
    server.routes[f"/{name}"] = Reply(body=body, length=length)
    dest = tmp_path / name
    fetched = await fetch_to_file(server.url(f"/{name}"), dest, OPEN)
    assert fetched.sniffed.content_type == content_type
    assert (fetched.size, fetched.sha256) == (len(body), hashlib.sha256(body).hexdigest())
    assert dest.read_bytes() == body
    assert fetched.url == fetched.final_url == server.url(f"/{name}")


async def test_request_goes_to_the_checked_address_with_the_real_name(
    server: Server, tmp_path: Path
) -> None:
    """`media.test` is known only to our resolver, asked once: the client never resolves."""
    server.routes["/a.gif"] = Reply(body=make_image("GIF"))
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[IPAddress]:
        asked.append(host)
        return [TEST_HOST]

    url = server.url("/a.gif", host="Media.Test")
    fetched = await fetch_to_file(
        url, tmp_path / "a", GUARDED, policy=lab_policy, resolver=resolver
    )
    assert fetched.sniffed.extension == "gif"
    assert asked == ["media.test"]
    seen = server.seen[0].headers
    assert seen["host"] == f"media.test:{server.port}"
    assert (seen["connection"], seen["accept-encoding"]) == ("close", "identity")


async def test_the_next_address_is_tried_when_one_refuses(server: Server, tmp_path: Path) -> None:
    server.routes["/a.jpg"] = Reply(body=make_image("JPEG"))

    async def resolver(host: str, port: int) -> list[IPAddress]:
        return [ip_address("127.0.0.2"), TEST_HOST]  # nothing listens on 127.0.0.2

    fetched = await fetch_to_file(
        server.url("/a.jpg", "two.test"), tmp_path / "a", OPEN, resolver=resolver
    )
    assert fetched.sniffed.extension == "jpg"


async def test_the_bytes_decide_not_the_content_type(server: Server, tmp_path: Path) -> None:
    server.routes["/real.txt"] = Reply(
        body=make_image("JPEG"), headers={"Content-Type": "text/plain"}
    )
    server.routes["/fake.jpg"] = Reply(
        body=b"<!DOCTYPE html><html>" + bytes(5000), headers={"Content-Type": "image/jpeg"}
    )
    fetched = await fetch_to_file(server.url("/real.txt"), tmp_path / "real", OPEN)
    assert fetched.sniffed.content_type == "image/jpeg"
    error = await refused(server.url("/fake.jpg"), tmp_path, OPEN)
    assert error.reason == "unsupported_format"


# --- redirects ----------------------------------------------------------------------------------


async def test_redirects_are_followed(server: Server, tmp_path: Path) -> None:
    server.routes["/one"] = Reply(302, headers={"Location": "/two"})  # relative
    server.routes["/two"] = Reply(301, headers={"Location": server.url("/three")})  # absolute
    server.routes["/three"] = Reply(307, headers={"Location": "media/photo.jpg?size=1"})
    server.routes["/media/photo.jpg?size=1"] = Reply(body=make_image("JPEG"))
    fetched = await fetch_to_file(server.url("/one"), tmp_path / "p", OPEN)
    assert fetched.final_url == server.url("/media/photo.jpg?size=1")
    assert fetched.url == server.url("/one")


@pytest.mark.parametrize(("hops", "ok"), [(5, True), (6, False)])
async def test_at_most_five_redirects(server: Server, tmp_path: Path, hops: int, ok: bool) -> None:
    for hop in range(hops):
        server.routes[f"/{hop}"] = Reply(302, headers={"Location": f"/{hop + 1}"})
    server.routes[f"/{hops}"] = Reply(body=make_image("PNG"))
    if ok:
        await fetch_to_file(server.url("/0"), tmp_path / "p", OPEN)
        return
    error = await refused(server.url("/0"), tmp_path, OPEN)
    assert error.reason == "too_many_redirects"
    assert f"/{hops}" not in [seen.path for seen in server.seen]


# --- failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [Reply(stall=30), Reply(body=endless(make_image("JPEG")[:100], pause=30), length=False)],
    ids=["no-answer", "stalled-body"],
)
async def test_slow_servers_time_out(server: Server, tmp_path: Path, reply: Reply) -> None:
    server.routes["/slow.jpg"] = reply
    limits = FetchLimits(allow_private=True, total_timeout=0.3)
    error = await refused(server.url("/slow.jpg"), tmp_path, limits)
    assert error.reason == "timeout"


SMALL = FetchLimits(allow_private=True, image_max_bytes=10_000, total_timeout=10)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(body=make_image("JPEG")[:500] + bytes(20_000)),  # Content-Length says it
        Reply(body=endless(make_image("JPEG")[:500]), length=False),  # counted while streaming
        # Over the image cap once sniffed; the server stalls after the head, so only an early
        # refusal can answer before the timeout.
        Reply(
            body=endless(make_image("JPEG")[:300], pause=30), headers={"Content-Length": "20000"}
        ),
        # Over every cap: refused before a byte of the body is read.
        Reply(body=endless(b"", pause=30), headers={"Content-Length": str(10**12)}),
    ],
    ids=["content-length", "chunked", "content-length-after-sniff", "content-length-over-all"],
)
async def test_too_large(server: Server, tmp_path: Path, reply: Reply) -> None:
    server.routes["/big.jpg"] = reply
    error = await refused(server.url("/big.jpg"), tmp_path, SMALL)
    assert error.reason == "too_large"


async def test_a_video_may_be_larger_than_the_image_cap(server: Server, tmp_path: Path) -> None:
    body = make_video("mp4", frames=60)
    server.routes["/v.mp4"] = Reply(body=body)
    limits = FetchLimits(allow_private=True, image_max_bytes=len(body) // 2)
    fetched = await fetch_to_file(server.url("/v.mp4"), tmp_path / "v", limits)
    assert fetched.size == len(body)


@pytest.mark.parametrize("status", [404, 500, 304])
async def test_bad_status(server: Server, tmp_path: Path, status: int) -> None:
    server.routes["/x.jpg"] = Reply(status, body=make_image("JPEG"))
    error = await refused(server.url("/x.jpg"), tmp_path, OPEN)
    assert (error.reason, str(status) in error.message) == ("bad_status", True)


async def test_an_encoded_body_is_refused(server: Server, tmp_path: Path) -> None:
    # Asked for identity; a decoder would let a small gzip body expand past every cap at once.
    body = gzip.compress(make_image("JPEG") + bytes(100_000))
    server.routes["/z.jpg"] = Reply(body=body, headers={"Content-Encoding": "gzip"})
    error = await refused(server.url("/z.jpg"), tmp_path, OPEN)
    assert error.reason == "unsupported_format"


async def test_a_truncated_body_is_not_kept(server: Server, tmp_path: Path) -> None:
    body = make_image("JPEG")
    server.routes["/cut.jpg"] = Reply(body=body, headers={"Content-Length": str(len(body) + 100)})
    error = await refused(server.url("/cut.jpg"), tmp_path, OPEN)
    assert error.reason == "unreachable"


async def test_connection_refused(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = await refused(f"http://127.0.0.1:{port}/a.jpg", tmp_path, OPEN)
    assert error.reason == "unreachable"


async def test_dns_failure(tmp_path: Path) -> None:
    async def resolver(host: str, port: int) -> list[IPAddress]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    error = await refused("https://nowhere.test/a.jpg", tmp_path, GUARDED, resolver=resolver)
    assert error.reason == "unreachable"


# --- TLS: the checked IP on the wire, the real name in SNI and in certificate checks --------------


def self_signed(folder: Path, name: str) -> tuple[Path, Path, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = certificate(name, key, names=(name,))
    write_pem(cert, key, folder / "cert.pem", folder / "key.pem")
    return folder / "cert.pem", folder / "key.pem", (folder / "cert.pem").read_text()


@pytest.mark.parametrize(("asked", "ok"), [("media.test", True), ("other.test", False)])
async def test_https_verifies_the_real_name(tmp_path: Path, asked: str, ok: bool) -> None:
    cert, key, pem = self_signed(tmp_path, "media.test")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    sni: list[str | None] = []
    tls.sni_callback = lambda _sock, name, _ctx: sni.append(name)

    async def resolver(host: str, port: int) -> list[IPAddress]:
        return [TEST_HOST]

    async with (
        Server(tls=tls) as server,
        httpx.AsyncClient(verify=ssl.create_default_context(cadata=pem)) as client,
    ):
        server.routes["/a.png"] = Reply(body=make_image("PNG"))
        url = server.url("/a.png", host=asked)
        kwargs = {"client": client, "policy": lab_policy, "resolver": resolver}
        if ok:
            fetched = await fetch_to_file(url, tmp_path / "a", GUARDED, **kwargs)  # type: ignore[arg-type]
            assert fetched.sniffed.extension == "png"
            assert server.seen[0].headers["host"] == f"media.test:{server.port}"
        else:  # a certificate for another name is refused, although the address is the same
            error = await refused(url, tmp_path, GUARDED, **kwargs)
            assert error.reason == "unreachable"
    assert sni == [asked]


# --- the SSRF suite: hostile URLs refused, and nothing connected --------------------------------


class Trap:
    """Listens on 127.0.0.1 and ::1 at one port, counting connections; answers nothing."""

    connections = 0

    async def __aenter__(self) -> Trap:
        for _ in range(20):  # find a port free on both loopbacks
            v4 = await asyncio.start_server(self._count, "127.0.0.1", 0)
            self.port = v4.sockets[0].getsockname()[1]
            try:
                v6 = await asyncio.start_server(self._count, "::1", self.port)
            except OSError:
                v4.close()
                continue
            self._servers = [v4, v6]
            return self
        raise RuntimeError("no port free on both 127.0.0.1 and ::1")

    async def __aexit__(self, *_: object) -> None:
        for listener in self._servers:
            listener.close()

    async def _count(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()


class SpyTransport(httpx.AsyncBaseTransport):
    """The real transport, recording every request handed to it."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport(verify=TLS)
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def loopback_names_in_etc_hosts() -> list[str]:
    """Names the system resolver maps to loopback without DNS (`localhost`, `ip6-localhost`…)."""
    names: list[str] = []
    with open("/etc/hosts", encoding="utf-8") as hosts:
        for line in hosts:
            fields = line.split("#", 1)[0].split()
            try:
                loopback = len(fields) > 1 and ip_address(fields[0]).is_loopback
            except ValueError:
                continue
            names += [name for name in fields[1:] if loopback and name.lower() != "localhost"]
    return sorted(set(names))


BLOCKED, INVALID = "blocked_address", "invalid_url"
HOSTILE = [
    ("http://127.0.0.1:{P}/", BLOCKED),
    ("HTTP://127.0.0.1:{P}", BLOCKED),
    (" http://127.0.0.1:{P}/", BLOCKED),  # leading space, stripped by URL parsers
    ("https://127.0.0.1:{P}/", BLOCKED),
    ("http://127.0.0.1.:{P}/", BLOCKED),
    ("http://localhost:{P}/", BLOCKED),
    ("http://LOCALHOST:{P}/", BLOCKED),
    ("http://localhost.:{P}/", BLOCKED),
    ("http://media.localhost:{P}/", BLOCKED),
    ("http://[::1]:{P}/", BLOCKED),
    ("http://[0:0:0:0:0:0:0:1]:{P}/", BLOCKED),
    ("http://0.0.0.0:{P}/", BLOCKED),
    ("http://0:{P}/", BLOCKED),
    ("http://[::]:{P}/", BLOCKED),
    ("http://10.0.0.1/", BLOCKED),
    ("http://172.16.0.1/", BLOCKED),
    ("http://192.168.1.1/", BLOCKED),
    ("http://169.254.169.254/latest/meta-data/", BLOCKED),
    ("http://0xa9.0xfe.0xa9.0xfe/latest/meta-data/", BLOCKED),
    ("http://100.64.0.1/", BLOCKED),
    ("http://[fd00::1]/", BLOCKED),
    ("http://[fe80::1]/", BLOCKED),
    ("http://[fe80::1%25lo]:{P}/", BLOCKED),
    ("http://224.0.0.1/", BLOCKED),
    ("http://255.255.255.255/", BLOCKED),
    ("http://[::ffff:127.0.0.1]:{P}/", BLOCKED),
    ("http://[::ffff:7f00:1]:{P}/", BLOCKED),
    ("http://[::127.0.0.1]:{P}/", BLOCKED),
    ("http://[64:ff9b::7f00:1]:{P}/", BLOCKED),
    ("http://[2002:7f00:1::]:{P}/", BLOCKED),
    ("http://[2001::1]/", BLOCKED),
    ("http://2130706433:{P}/", BLOCKED),
    ("http://0x7f000001:{P}/", BLOCKED),
    ("http://017700000001:{P}/", BLOCKED),
    ("http://0177.0.0.1:{P}/", BLOCKED),
    ("http://0x7f.1:{P}/", BLOCKED),
    ("http://0x7f.0x0.0x0.0x1:{P}/", BLOCKED),
    ("http://127.1:{P}/", BLOCKED),
    ("http://\uff11\uff12\uff17\u3002\uff10\u3002\uff10\u3002\uff11:{P}/", BLOCKED),  # fullwidth
    *[(f"http://{name}:{{P}}/", BLOCKED) for name in loopback_names_in_etc_hosts()],
    ("http://user@127.0.0.1:{P}/", INVALID),
    ("http://127.0.0.1:{P}@example.com/", INVALID),
    ("http://example.com@127.0.0.1:{P}/", INVALID),
    ("http://127.0.0.1:{P}\\@example.com/", INVALID),
    ("http://127.0.0.1%2509/", INVALID),
    ("http://127.0.0.1%2509:{P}/", INVALID),
    ("http://%31%32%37.0.0.1:{P}/", INVALID),
    ("http://127.0.0.1.5:{P}/", INVALID),
    ("http://0x7f.0.0.08:{P}/", INVALID),
    ("http:/\\127.0.0.1:{P}/", INVALID),
    ("http:///127.0.0.1:{P}/", INVALID),
    ("file:///etc/passwd", INVALID),
    ("gopher://127.0.0.1:{P}/_GET%20/", INVALID),
    ("ftp://127.0.0.1:{P}/", INVALID),
    ("dict://127.0.0.1:{P}/info", INVALID),
    ("ldap://127.0.0.1:{P}/", INVALID),
    ("javascript:alert(1)", INVALID),
    ("data:image/png;base64,iVBORw0KGgo=", INVALID),
    ("//127.0.0.1:{P}/", INVALID),
]


@pytest.mark.parametrize(("template", "reason"), HOSTILE)
async def test_hostile_url_is_refused_without_a_connection(
    tmp_path: Path, template: str, reason: str
) -> None:
    async with Trap() as trap, httpx.AsyncClient(transport=SpyTransport(), verify=TLS) as client:
        url = template.replace("{P}", str(trap.port))
        error = await refused(url, tmp_path, GUARDED, client=client)
        await asyncio.sleep(0.02)  # a connection in flight would be counted by now
        assert (error.reason, error.url) == (reason, url), error.message
        assert trap.connections == 0
        assert isinstance(client._transport, SpyTransport)
        assert client._transport.requests == []


@pytest.mark.parametrize(
    "template", ["http://127.0.0.1:{P}/", "http://[::1]:{P}/", "http://2130706433:{P}/"]
)
async def test_the_trap_sees_what_an_unguarded_fetch_does(tmp_path: Path, template: str) -> None:
    """Control: with the guard off the same URLs do connect, so the suite's zero means something."""
    async with Trap() as trap:
        await refused(template.replace("{P}", str(trap.port)), tmp_path, OPEN)
        await asyncio.sleep(0.02)
        assert trap.connections == 1


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://127.0.0.2:{P}/", BLOCKED),
        ("http://[::1]:{P}/", BLOCKED),
        ("http://localhost:{P}/", BLOCKED),
        ("http://0x7f000002:{P}/", BLOCKED),
        ("http://169.254.169.254/latest/meta-data/", BLOCKED),
        ("http://10.0.0.1/", BLOCKED),
        ("http://[fd00::1]/", BLOCKED),
        ("file:///etc/passwd", INVALID),
        ("gopher://127.0.0.2:{P}/", INVALID),
    ],
)
async def test_a_redirect_to_a_private_address_is_refused(
    server: Server, tmp_path: Path, location: str, reason: str
) -> None:
    """127.0.0.1 plays the public server (lab_policy); where it redirects is checked afresh."""
    async with Trap() as trap, Server("127.0.0.2") as second:
        trap_port = (
            second.port if "127.0.0.2" in location or "0x7f000002" in location else trap.port
        )
        server.routes["/public.jpg"] = Reply(
            302, headers={"Location": location.replace("{P}", str(trap_port))}
        )
        second.routes["/"] = Reply(body=make_image("JPEG"))
        error = await refused(server.url("/public.jpg"), tmp_path, GUARDED, policy=lab_policy)
        assert (error.reason, error.url) == (reason, server.url("/public.jpg")), error.message
        assert (trap.connections, second.seen) == (0, [])
    assert [seen.path for seen in server.seen] == ["/public.jpg"]


async def test_the_lab_policy_lets_only_the_test_host_through(
    server: Server, tmp_path: Path
) -> None:
    """Control for the test above: a redirect to the test host itself is followed."""
    server.routes["/public.jpg"] = Reply(302, headers={"Location": server.url("/b.jpg")})
    server.routes["/b.jpg"] = Reply(body=make_image("JPEG"))
    await fetch_to_file(server.url("/public.jpg"), tmp_path / "b", GUARDED, policy=lab_policy)


async def test_any_blocked_address_among_several_refuses(tmp_path: Path) -> None:
    async def resolver(host: str, port: int) -> list[IPAddress]:
        return [ip_address("8.8.8.8"), ip_address("10.0.0.1")]

    error = await refused("http://mixed.test/a.jpg", tmp_path, GUARDED, resolver=resolver)
    assert error.reason == "blocked_address"
    assert error.message == "mixed.test resolves to an address that is private"
