"""Fetch a media URL into a file without letting the URL reach into our own network.

Every hop (the URL and each redirect) is parsed here, its host resolved here and every address
checked; the request then goes to the checked IP literal, with the real name only in `Host` and in
TLS SNI, so no second DNS lookup can swap the address (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import pathlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import anyio
import httpx

from soku.media.addresses import (
    IPAddress,
    blocked_reason,
    is_localhost_name,
    normalise_host,
    resolve_host,
)
from soku.media.sniff import SNIFF_BYTES, sniff
from soku.media.types import FetchError, Sniffed

AddressPolicy = Callable[[IPAddress], str | None]  # why an address is refused, or None
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_USER_AGENT = "Soku-media-fetcher/1"


@dataclass(frozen=True)
class FetchLimits:
    image_max_bytes: int = 50 * 1024 * 1024
    video_max_bytes: int = 500 * 1024 * 1024
    connect_timeout: float = 5.0
    total_timeout: float = 120.0
    max_redirects: int = 5
    allow_private: bool = False  # SOKU_MEDIA_ALLOW_PRIVATE: tests and sandbox only

    def cap(self, sniffed: Sniffed | None) -> int:
        """The size cap for what the bytes turned out to be (the larger one before that)."""
        if sniffed is None:
            return max(self.image_max_bytes, self.video_max_bytes)
        return self.image_max_bytes if sniffed.kind == "image" else self.video_max_bytes


@dataclass(frozen=True)
class Fetched:
    url: str  # the URL asked for
    final_url: str  # after redirects
    sniffed: Sniffed
    size: int
    sha256: str  # hex of the whole body


async def fetch_to_file(
    url: str,
    dest: pathlib.Path,
    limits: FetchLimits,
    client: httpx.AsyncClient | None = None,
    *,
    policy: AddressPolicy = blocked_reason,
    resolver: Resolver = resolve_host,
) -> Fetched:
    """Stream `url` into `dest`, or raise FetchError (and leave no `dest` behind).

    `policy` and `resolver` exist for tests (e.g. to treat one loopback address as the "public"
    test server while every other private address stays refused); production keeps the defaults.
    A `client` passed in is used as is for TLS settings and proxies; redirects are never its job.
    """
    try:
        async with asyncio.timeout(limits.total_timeout):
            return await _fetch(url, dest, limits, client, _Checks(policy, resolver))
    except BaseException as exc:
        # One quick syscall, done synchronously so that it happens even when cancelled.
        dest.unlink(missing_ok=True)  # noqa: ASYNC240
        failure = _as_fetch_error(url, exc, limits)
        if failure is None:
            raise
        raise failure from exc


@dataclass(frozen=True)
class _Checks:
    policy: AddressPolicy
    resolver: Resolver


@dataclass(frozen=True)
class Hop:
    """One URL to request, parsed and normalised here (never by the HTTP client)."""

    url: str
    scheme: str
    host: str  # lowercase ASCII (IDNA), no brackets, no trailing dot; canonical if a literal
    port: int
    literal: IPAddress | None
    target: str  # path and query

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    def url_for(self, ip: IPAddress) -> str:
        host = f"[{ip}]" if ip.version == 6 else str(ip)
        return f"{self.scheme}://{host}:{self.port}{self.target}"


def _as_fetch_error(url: str, exc: BaseException, limits: FetchLimits) -> FetchError | None:
    if isinstance(exc, TimeoutError):
        return FetchError(url, "timeout", f"no complete answer within {limits.total_timeout:g} s")
    if isinstance(exc, httpx.TimeoutException):
        return FetchError(url, "timeout", f"timed out: {type(exc).__name__}")
    if isinstance(exc, httpx.RequestError):  # refused, reset, TLS failure, truncated body
        return FetchError(url, "unreachable", f"{type(exc).__name__}: {exc}")
    if isinstance(exc, httpx.InvalidURL):
        return FetchError(url, "invalid_url", f"the HTTP client refused the URL: {exc}")
    return None


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying context for every fetch: loading the CA bundle costs a tenth of a second."""
    return httpx.create_ssl_context()


async def _fetch(
    url: str,
    dest: pathlib.Path,
    limits: FetchLimits,
    client: httpx.AsyncClient | None,
    checks: _Checks,
) -> Fetched:
    """Request hop after hop, checking each one as if it were the first."""
    async with contextlib.AsyncExitStack() as stack:
        if client is None:
            own = httpx.AsyncClient(follow_redirects=False, trust_env=False, verify=tls_context())
            client = await stack.enter_async_context(own)
        current = url
        for _ in range(limits.max_redirects + 1):
            hop = _parse_hop(current, url)
            addresses = await _checked_addresses(hop, url, limits, checks)
            response = await _send(client, hop, addresses, limits)
            try:
                location = response.headers.get("location")
                if response.status_code in _REDIRECTS and location:
                    current = urljoin(current, location)
                    continue
                if not response.is_success:
                    message = f"{hop.url} answered HTTP {response.status_code}"
                    raise FetchError(url, "bad_status", message)
                sniffed, size, sha256 = await _store(response, dest, limits, url)
                return Fetched(url, current, sniffed, size, sha256)
            finally:
                await response.aclose()
    raise FetchError(url, "too_many_redirects", f"more than {limits.max_redirects} redirects")


def _parse_hop(url: str, asked: str) -> Hop:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchError(asked, "invalid_url", f"cannot parse {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise FetchError(asked, "invalid_url", f"only http(s) URLs are fetched, not {url!r}")
    if "@" in parts.netloc:
        raise FetchError(asked, "invalid_url", f"credentials in a media URL: {url!r}")
    host = normalise_host(parts.hostname or "")
    if host is None:
        raise FetchError(asked, "invalid_url", f"no valid host in {url!r}")
    name, literal = host
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Hop(url, scheme, name, port or _DEFAULT_PORTS[scheme], literal, target)


async def _checked_addresses(
    hop: Hop, asked: str, limits: FetchLimits, checks: _Checks
) -> list[IPAddress]:
    """The addresses of the hop's host, refused if any one of them is not public."""
    if hop.literal is not None:
        addresses = [hop.literal]
    else:
        if not limits.allow_private and is_localhost_name(hop.host):
            raise FetchError(asked, "blocked_address", f"{hop.host} is loopback (RFC 6761)")
        try:
            addresses = await checks.resolver(hop.host, hop.port)
        except OSError as exc:
            raise FetchError(asked, "unreachable", f"cannot resolve {hop.host}: {exc}") from None
        if not addresses:
            raise FetchError(asked, "unreachable", f"{hop.host} has no address")
    if not limits.allow_private:
        for ip in addresses:
            reason = checks.policy(ip)
            if reason is None:
                continue
            # Never the address a name resolved to: split-horizon DNS must not leak through us.
            what = f"{ip}" if hop.literal is not None else f"{hop.host} resolves to an address that"
            raise FetchError(asked, "blocked_address", f"{what} is {reason}")
    return addresses


async def _send(
    client: httpx.AsyncClient, hop: Hop, addresses: list[IPAddress], limits: FetchLimits
) -> httpx.Response:
    timeout = httpx.Timeout(limits.total_timeout, connect=limits.connect_timeout)
    headers = {
        "Accept-Encoding": "identity",
        "Connection": "close",  # no pooled connection is ever reused for another name
        "User-Agent": _USER_AGENT,
    }
    return await send_checked(client, hop, addresses, "GET", headers, timeout)


async def send_checked(
    client: httpx.AsyncClient,
    hop: Hop,
    addresses: list[IPAddress],
    method: str,
    headers: dict[str, str],
    timeouts: httpx.Timeout,
    content: bytes | None = None,
) -> httpx.Response:
    """Connect to the first checked address that answers; the name goes only in Host and SNI.
    The answer is streamed: the caller reads (or closes) it."""
    sni = hop.scheme == "https" and hop.literal is None
    extensions = {"sni_hostname": hop.host} if sni else {}
    sent = {"Host": hop.host_header, **headers}
    failure: httpx.TransportError | None = None
    for ip in addresses:
        request = client.build_request(
            method, hop.url_for(ip), headers=sent, content=content, timeout=timeouts,
            extensions=extensions,
        )  # fmt: skip
        try:
            return await client.send(request, stream=True, follow_redirects=False)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            failure = exc
    assert failure is not None  # addresses is never empty
    raise failure


async def _store(
    response: httpx.Response, dest: pathlib.Path, limits: FetchLimits, url: str
) -> tuple[Sniffed, int, str]:
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):  # we asked for identity; decoding could be a zip bomb
        raise FetchError(url, "unsupported_format", f"unasked-for Content-Encoding {encoding}")
    declared = response.headers.get("content-length")
    sink = _Sink(url, limits, int(declared) if declared and declared.isdigit() else None)
    sink.check_declared()
    async with await anyio.open_file(dest, "wb") as out:
        async for chunk in response.aiter_raw():
            await sink.feed(chunk, out)
        sniffed = await sink.finish(out)
    return sniffed, sink.size, sink.hasher.hexdigest()


class _Sink:
    """Sniffs the head, then counts, hashes and writes every byte under the cap of its kind."""

    def __init__(self, url: str, limits: FetchLimits, declared: int | None) -> None:
        self.url, self.limits, self.declared = url, limits, declared
        self.head = b""
        self.sniffed: Sniffed | None = None
        self.size = 0
        self.hasher = hashlib.sha256()

    def check_declared(self) -> None:
        if self.declared is not None and self.declared > self.limits.cap(self.sniffed):
            raise self._too_large(f"Content-Length {self.declared}")

    async def feed(self, chunk: bytes, out: anyio.AsyncFile[bytes]) -> None:
        if self.sniffed is None:
            self.head += chunk
            if len(self.head) < SNIFF_BYTES and sniff(self.head) is None:
                return  # not decisive yet: wait for more of the head
            chunk = self._decide()
        await self._write(chunk, out)

    async def finish(self, out: anyio.AsyncFile[bytes]) -> Sniffed:
        if self.sniffed is None:
            await self._write(self._decide(), out)
        assert self.sniffed is not None
        return self.sniffed

    def _decide(self) -> bytes:
        """Sniff the buffered head; hand it back to be written."""
        self.sniffed = sniff(self.head)
        if self.sniffed is None:
            accepted = "JPEG, PNG, GIF, WebP, MP4, MOV, WebM or MKV"
            raise FetchError(self.url, "unsupported_format", f"the bytes are not {accepted}")
        self.check_declared()
        head, self.head = self.head, b""
        return head

    async def _write(self, chunk: bytes, out: anyio.AsyncFile[bytes]) -> None:
        self.size += len(chunk)
        if self.size > self.limits.cap(self.sniffed):
            raise self._too_large(f"a body of at least {self.size} bytes")
        self.hasher.update(chunk)
        await out.write(chunk)

    def _too_large(self, what: str) -> FetchError:
        kind = self.sniffed.kind if self.sniffed else "media"
        cap = self.limits.cap(self.sniffed)
        return FetchError(self.url, "too_large", f"{what} is over the {cap}-byte cap for {kind}")


async def checked_hop(
    url: str,
    *,
    allow_private: bool,
    policy: AddressPolicy = blocked_reason,
    resolver: Resolver = resolve_host,
) -> tuple[Hop, list[IPAddress]]:
    """`url` parsed and its host's addresses checked as a fetch's first hop is, for other
    requests to a caller's URL (webhooks); FetchError when it is refused."""
    hop = _parse_hop(url, url)
    limits = FetchLimits(allow_private=allow_private)
    return hop, await _checked_addresses(hop, url, limits, _Checks(policy, resolver))
