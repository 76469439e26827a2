"""The HTTP edge: request ids, body-size limit, access log, and the error handlers.

A pure ASGI middleware (no per-request task or body buffering) wraps the whole app so that
every response, errors and crashes included, carries `X-Request-Id` and the envelope.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from collections.abc import Iterator
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from fastapi.telemetry import TelemetryConfig
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from soku.api import document_headers
from soku.errors import ApiError, PayloadTooLarge, ServiceUnavailable, envelope
from soku.request_problems import (
    BODY_PARSE_ERROR,
    unparsable_body,
    unreadable_body,
    validation_problems,
)

log = structlog.get_logger("soku.http")

# FastAPI's own OpenTelemetry spans, metrics and logs, for every app Soku builds (the service
# and each sandbox fake): off. Soku reports through `/metrics` and its structured logs, and
# configures no OpenTelemetry; left on, every request first asks OpenTelemetry for its three
# global providers, about 5 microseconds per app a request passes through (docs/decisions.md).
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}

_STATUS_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def request_id_of(scope_or_request: Scope | Request) -> str:
    state: dict[str, Any] = (
        scope_or_request.scope.get("state", {})
        if isinstance(scope_or_request, Request)
        else scope_or_request.get("state", {})
    )
    return str(state.get("request_id", "req_unknown"))


class EnvelopeResponse(JSONResponse):
    """An error envelope; one that echoes a lone surrogate from the request's JSON (a URL, a
    path) is written with ASCII escapes (`\\ud800`), since UTF-8 cannot carry it."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, separators=(",", ":")).encode()


def error_response(request: Request, exc: ApiError) -> JSONResponse:
    body = envelope(exc.status, exc.code, exc.message, request_id_of(request), exc.details)
    return EnvelopeResponse(body, status_code=exc.status, headers=exc.headers)


class EdgeMiddleware:
    def __init__(
        self, app: ASGIApp, max_body_bytes: int, large_bodies: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # path -> its own limit (file uploads); a key ending in "/" covers every path under it
        self.large_bodies = large_bodies or {}

    def _limit_for(self, path: str) -> int:
        if path in self.large_bodies:
            return self.large_bodies[path]
        prefixes = (p for p in self.large_bodies if p.endswith("/") and path.startswith(p))
        return next((self.large_bodies[p] for p in prefixes), self.max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope.get("path", ""))
        exchange = _Exchange(self, scope, send, limit)
        started = time.perf_counter()
        try:
            await self.app(scope, self._limited(scope, receive, limit), exchange.send_app)
        except PayloadTooLarge as exc:
            if not exchange.started:
                await self._send_error(scope, exchange.send, exc)
        except Exception as exc:
            await self._crashed(scope, exchange, exc)
        finally:
            log.info(
                "request",
                method=scope.get("method"),
                path=scope.get("path"),
                status=exchange.status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )

    async def _crashed(self, scope: Scope, exchange: _Exchange, exc: Exception) -> None:
        """An error no handler answered: 503 when the database is out of reach (an outage,
        logged in one line, not a traceback per request), else the 500 envelope."""
        unreachable = database_unreachable(exc)
        if unreachable:
            log.warning("database_unreachable", path=scope.get("path"), error=str(exc))
        else:
            log.exception("unhandled_error", path=scope.get("path"))
        if exchange.started:
            return
        if unreachable:
            await self._send_error(scope, exchange.send, _DATABASE_DOWN, close=False)
        else:
            await self._send_crash(scope, exchange.send)

    def _declared_length(self, scope: Scope) -> int | None:
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return None
        return None

    def _too_large(self, limit: int) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"The request body is larger than {limit} bytes.",
            {"maxBytes": limit},
        )

    def _limited(self, scope: Scope, receive: Receive, limit: int) -> Receive:
        """`receive`, refusing a body over `limit` at its first read: at once when its declared
        length is over, else when what arrived goes over. Nothing is refused before the app
        reads the body, so authentication and the rate limit answer first on an endpoint that
        checks them before reading (`soku.api.GatedRoute`)."""
        state = scope["state"]
        declared = self._declared_length(scope)
        seen = 0 if declared is None or declared <= limit else limit + 1

        async def wrapped() -> Message:
            nonlocal seen
            if seen <= limit:
                message = await receive()
                if message["type"] == "http.request":
                    seen += len(message.get("body", b""))
                if seen <= limit:
                    return message
            state["body_too_large"] = True
            raise self._too_large(limit)

        return wrapped

    async def _send_error(
        self, scope: Scope, send: Send, exc: ApiError, *, close: bool = True
    ) -> None:
        """The envelope; by default closing the connection (a body the app did not read)."""
        body = envelope(exc.status, exc.code, exc.message, request_id_of(scope), exc.details)
        await _send_json(send, exc.status, body, {"connection": "close"} if close else {})

    async def _send_crash(self, scope: Scope, send: Send) -> None:
        creating = scope.get("method") == "POST" and scope.get("path") == "/v1/posts"
        code = "post_creation_failed" if creating else "internal_error"
        message = (
            "An internal error occurred while creating the post."
            if creating
            else "An internal error occurred."
        )
        await _send_json(send, 500, envelope(500, code, message, request_id_of(scope)), {})


_DATABASE_DOWN = ServiceUnavailable(
    "The service cannot reach its database; retry shortly.",
    {"reason": "database_unreachable"},
)


def database_unreachable(exc: BaseException) -> bool:
    """Whether `exc` is the database being out of reach (down, restarting, refusing
    connections, the network between): a connection lost while in use, or any error raised
    while the pool was opening one (asyncpg's are plain OSErrors, psycopg's are wrapped).
    A SQL error on a working connection (a missing table, a syntax error) is a bug: 500."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, DBAPIError | ConnectionError | TimeoutError | socket.gaierror):
        return False
    frame = exc.__traceback__
    while frame is not None:
        code = frame.tb_frame.f_code
        module = frame.tb_frame.f_globals.get("__name__", "")
        if code.co_name == "_create_connection" and module.startswith("sqlalchemy.pool"):
            return True
        frame = frame.tb_next
    return False


class _Exchange:
    """One request at the edge: its request id (in the scope's state and the log context), and
    its answer on the way out: `X-Request-Id` and the rate-limit headers added, a HEAD's body
    dropped, and an app's answer to a body found too large replaced by the 413."""

    __slots__ = (
        "edge", "head", "limit", "request_id", "scope", "send_out", "started", "state", "status",
    )  # fmt: skip

    def __init__(self, edge: EdgeMiddleware, scope: Scope, send: Send, limit: int) -> None:
        self.edge, self.scope, self.send_out, self.limit = edge, scope, send, limit
        self.request_id = "req_" + secrets.token_hex(12)
        self.state: dict[str, Any] = scope.setdefault("state", {})
        self.state["request_id"] = self.request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=self.request_id)
        self.head = scope.get("method") == "HEAD"
        self.status = 500
        self.started = False

    async def send_app(self, message: Message) -> None:
        """What the app sends. After a cut-off body (FastAPI turns the read error into a
        400) the 413 goes instead, once, and the app's messages are dropped, unless the app
        answered 413 itself (a dashboard page): that answer goes, closing the connection."""
        if self.state.get("body_too_large") and _answers_413(message):
            self.state["body_too_large"] = False
            message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
        if self.state.get("body_too_large"):
            if message["type"] == "http.response.start" and not self.started:
                self.started = True
                too_large = self.edge._too_large(self.limit)
                await self.edge._send_error(self.scope, self.send, too_large)
            return
        await self.send(message)

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.started = True
            headers = list(message.get("headers", []))
            headers.append((b"x-request-id", self.request_id.encode()))
            for name, value in self.state.get("ratelimit_headers", {}).items():
                headers.append((name.lower().encode(), value.encode()))
            message["headers"] = headers
        elif self.head and message.get("body"):
            # The same headers as GET (Content-Length included), never a body, whoever built
            # the answer.
            message = {**message, "body": b""}
        await self.send_out(message)


def _answers_413(message: Message) -> bool:
    return message["type"] == "http.response.start" and bool(message["status"] == 413)


async def _send_json(send: Send, status: int, body: dict[str, Any], extra: dict[str, str]) -> None:
    raw = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


def _allowed_methods(request: Request) -> str:
    """Every method some route takes on this path: Starlette's 405 names only the methods of
    the first route that matched the path (`Allow: GET` where GET, PATCH and DELETE work)."""
    methods: set[str] = set()
    for route in _routes_matching(request, request.scope):
        methods |= route.methods or set()
    return ", ".join(sorted(methods))


def _slash_hint(request: Request) -> str:
    """A path that a route takes once its trailing slash is gone: say so."""
    path = request.url.path
    bare = path.rstrip("/")
    if not bare or bare == path:
        return ""
    if any(_routes_matching(request, {**request.scope, "path": bare})):
        return f" Did you mean {bare}, without the trailing slash?"
    return ""


def _routes_matching(request: Request, scope: Scope) -> Iterator[Any]:
    """The app's routes that take `scope`'s path (whatever its method)."""
    for route in iter_route_contexts(request.app.router.routes):
        if route.matches(scope)[0] != Match.NONE:
            yield route


def install_error_handlers(app: FastAPI) -> None:
    from soku.errors import ValidationFailed

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(request, exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = validation_problems(exc) or [{"field": "body", "reason": "invalid"}]
        return error_response(request, ValidationFailed.from_problems(problems))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400 and exc.detail == BODY_PARSE_ERROR and exc.__cause__:
            # Bytes json.loads refused without a JSONDecodeError (not UTF-8, nested too
            # deeply, a number too long), or an error raised while reading the body.
            return error_response(request, unparsable_body(exc.__cause__))
        if exc.status_code == 400:  # a body Starlette can't read (a multipart without boundary)
            return error_response(request, unreadable_body(str(exc.detail)))
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        message = str(exc.detail) if exc.detail else code
        if exc.status_code == 404:
            message = f"No route {request.url.path}." + _slash_hint(request)
        headers = exc.headers
        if exc.status_code == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}."
            if allowed := _allowed_methods(request):
                headers = {**(headers or {}), "Allow": allowed}
        body = envelope(exc.status_code, code, message, request_id_of(request))
        return EnvelopeResponse(body, status_code=exc.status_code, headers=headers)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    _drop_documented_422(app)


def _drop_documented_422(app: FastAPI) -> None:
    """FastAPI documents a 422 `HTTPValidationError` on every route with parameters or a body;
    `on_validation` answers those errors as 400 `validation_error` envelopes (declared by each
    route), so the 422 is never sent and comes out of the OpenAPI document."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            schemas = schema.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            document_headers(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
