"""The HTTP client every platform call goes through: httpx's interface on reqwest's pool.

Connectors speak httpx (requests, responses, exceptions). Underneath, the worker's clients
send through pyreqwest, Python's binding of Rust's reqwest and hyper: the connection pool,
writing each request and parsing each answer happen on reqwest's own thread, outside the
GIL, so the event loop keeps its time for the deliveries (docs/decisions.md, "The platform
HTTP client"; the benchmark figures are in bench/README.md). httpcore's pool, httpx's own,
looks at every connection to place each request (about 4 ms of CPU per call at 32
connections); aiohttp's, used before, about 0.55 ms, nearly all of it on the event loop.

The transport (`soku.platforms.reqwest_transport`) keeps the URL as httpx encoded it, says
with each failure whether the request left, and makes a cancelled call end cancelled. httpx
decodes the body by its Content-Encoding and follows redirects when asked; reqwest does
neither, and the client keeps no cookies.
"""

from __future__ import annotations

import http.cookiejar
from json import dumps as json_dumps
from typing import Any

import httpx

from soku.platforms.reqwest_transport import PlatformTransport

CONNECT_SECONDS = 5.0
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
