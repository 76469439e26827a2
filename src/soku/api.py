"""Shared pieces of the HTTP endpoints: typed dependencies and declared error responses."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response, params
from fastapi.routing import APIRoute

from soku.auth.dependencies import Authenticator
from soku.errors import NotFound, UnsupportedMediaType
from soku.posts.schemas import ErrorEnvelope

_DESCRIPTIONS = {
    400: "Invalid request (`validation_error`, `missing_integrations`, `missing_account`, "
    "`upload_failed`)",
    401: "Missing, unknown or revoked API key (`unauthorized`)",
    403: "Subscription not active (`forbidden`)",
    404: "No such resource (`not_found`)",
    409: "Conflict (`idempotency_conflict`, `conflict`)",
    413: "Body too large (`payload_too_large`)",
    415: "Content-Type is not the one the endpoint takes: application/json, or "
    "multipart/form-data for uploads (`unsupported_media_type`)",
    429: "Rate limit exceeded (`rate_limit_exceeded`); see Retry-After",
    500: "Internal error (`post_creation_failed`, `dispatch_failed`, `internal_error`)",
    503: "The database or the rate-limit store (Redis) is unreachable (`service_unavailable`)",
}
_RATE_HEADERS = {
    "X-RateLimit-Limit": {
        "description": "Requests allowed in the window",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Remaining": {
        "description": "Requests left in the window",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Reset": {
        "description": "Epoch seconds when the window frees a slot",
        "schema": {"type": "integer"},
    },
    "X-Request-Id": {
        "description": "This request's id (also in the error envelope)",
        "schema": {"type": "string"},
    },
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": ErrorEnvelope, "description": _DESCRIPTIONS[status]}
        if status == 429:
            entry["headers"] = {
                **_RATE_HEADERS,
                "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}},
            }
        responses[status] = entry
    return responses


def document_headers(schema: dict[str, Any]) -> None:
    """Every answer carries X-Request-Id, and an authenticated route's the rate-limit headers
    too (not an unlimited caller's): each response in the OpenAPI document says so."""
    request_id = {"X-Request-Id": _RATE_HEADERS["X-Request-Id"]}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            wanted = _RATE_HEADERS if "401" in responses else request_id
            for response in responses.values():
                headers = response.setdefault("headers", {})
                for name, header in wanted.items():
                    headers.setdefault(name, header)


def id_or_404(value: str, what: str) -> uuid.UUID:
    """A path's id: a string that is not a UUID names nothing, so it is a 404 like an unknown
    id (`No post …`), not a validation error."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"No {what} {value}.") from None


AUTHED = (401, 403, 429, 500, 503)  # 503: the rate-limit store (Redis) is unreachable


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def refuse_content_coding(request: Request) -> None:
    """A compressed body (`Content-Encoding: gzip`) is not decoded: refused as HTTP says (415
    with `Accept-Encoding`), rather than parsed as JSON and called "not UTF-8"."""
    codings = request.headers.get("content-encoding", "").lower().replace(" ", "").split(",")
    refused = [c for c in codings if c not in ("", "identity")]
    if refused:
        raise UnsupportedMediaType(
            f"Content-Encoding {', '.join(refused)} is not supported; send the body uncompressed.",
            {"contentEncoding": ", ".join(refused)},
            headers={"Accept-Encoding": "identity"},
        )


def require_json(request: Request) -> None:
    """The contract requires `Content-Type: application/json` on bodies."""
    refuse_content_coding(request)
    media = _media_type(request)
    if media != "application/json" and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, not {media or 'missing'}.",
            {"contentType": media or None},
        )


def require_multipart(request: Request) -> None:
    """A file upload is a multipart form; any other body would only fail as a missing field."""
    refuse_content_coding(request)
    media = _media_type(request)
    if media != "multipart/form-data":
        raise UnsupportedMediaType(
            f"Content-Type must be multipart/form-data, not {media or 'missing'}.",
            {"contentType": media or None},
        )


def _body_check(route: APIRoute) -> Callable[[Request], None] | None:
    body = route.body_field
    if body is None:
        return None
    return require_multipart if isinstance(body.field_info, params.Form) else require_json


class GatedRoute(APIRoute):
    """A route whose caller is authenticated and counted before anything looks at the body.

    FastAPI reads and parses a JSON body before it solves any dependency, so with the
    `Authenticator` only a dependency, a keyless request with bad JSON would answer 400 and
    never reach the rate limit. Here the route's own `Authenticator` runs first, then the
    Content-Type check; the body is read only after both (docs/decisions.md)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        authenticator = next(
            (d.call for d in self.dependant.dependencies if isinstance(d.call, Authenticator)),
            None,
        )
        if authenticator is None:
            return handle
        admit = authenticator.admit
        check_body = _body_check(self)

        async def gated(request: Request) -> Response:
            await admit(request)
            if check_body is not None:
                check_body(request)
            return await handle(request)

        return gated
