"""Small helpers shared by the API tests."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import httpx

REQUEST_ID = re.compile(r"^req_[0-9a-f]{24}$")
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def text_post(*platforms: Any, text: str = "Hello from Soku", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "post": {"content": {"text": text, "mediaType": "text", "platform": list(platforms)}}
    }
    body.update(extra)
    return body


def in_future(seconds: int) -> str:
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return moment.isoformat().replace("+00:00", "Z")


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The envelope, checked field by field; returns `error` for further checks."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"type", "code", "message", "timestamp", "requestId", "details"}
    assert error["code"] == code
    expected_type = (
        "authentication_error"
        if status in (401, 403)
        else "api_error"
        if status >= 500
        else "invalid_request_error"
    )
    assert error["type"] == expected_type
    assert ISO_MS.match(error["timestamp"]), error["timestamp"]
    assert REQUEST_ID.match(error["requestId"])
    assert response.headers["x-request-id"] == error["requestId"]
    assert isinstance(error["details"], dict)
    assert error["message"]
    return dict(error)


def reasons(error: dict[str, Any]) -> set[tuple[str, str]]:
    """(field or platform, reason) of every problem listed in a validation_error."""
    return {(p.get("platform") or p["field"], p["reason"]) for p in error["details"]["errors"]}


async def raw_exchange(
    app: Any, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One bodiless request straight to the ASGI app: status, headers, and every body byte the
    app sent (httpx's ASGI transport drops a HEAD answer's body before a test could see it)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 1234),
        "server": ("soku.test", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    names = {k.decode(): v.decode() for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], names, body
