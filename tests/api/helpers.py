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
