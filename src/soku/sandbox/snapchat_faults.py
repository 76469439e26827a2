"""The Snapchat fake's errors: Snapchat's envelope, OAuth errors, and the faults tests inject.

Every answer carries `request_status` and `request_id`; an error adds `error_code`,
`display_message` and `debug_message` (snapchat.md, "Error model"). The HTTP status of each
error code, and every wording, are (U): no source shows them.
"""

from __future__ import annotations

import secrets
from typing import Any, Literal, get_args

from soku.sandbox.common import FaultFields

CallKind = Literal["token", "profile", "create", "add", "finalize", "publish"]
CALL_KINDS: tuple[CallKind, ...] = get_args(CallKind)
MEDIA_KINDS = frozenset({"create", "add", "finalize"})
# fault name: HTTP status, error_code (None: none in the body), display_message
_FAULTS: dict[str, tuple[int, str | None, str]] = {
    "rate_limited": (429, "RATE_LIMIT_EXCEEDED", "Too many requests"),
    "token_expired": (401, "UNAUTHORIZED", "Invalid or expired access token"),
    "forbidden": (403, "FORBIDDEN", "The app is not allowlisted for the Public Profile API"),
    "invalid_request": (400, "INVALID_REQUEST", "The request is not valid"),
    "duplicate_content": (400, "DUPLICATE_CONTENT", "This media was posted already"),
    "media_processing": (400, "MEDIA_PROCESSING", "The media is still processing"),
    "media_expired": (400, "MEDIA_EXPIRED", "The media has expired"),
    "posting_in_progress": (
        400,
        "MEDIA_POSTING_ALREADY_IN_PROGRESS",
        "A post of this media is already in progress",
    ),
    "server_error": (500, "INTERNAL_ERROR", "Internal server error"),
    "service_unavailable": (503, None, "Service Unavailable"),
    "timeout": (504, None, "Gateway Timeout"),
}
_CODE_OF_STATUS = {400: "invalid_request", 401: "token_expired", 403: "forbidden",
                   429: "rate_limited", 500: "server_error", 503: "service_unavailable",
                   504: "timeout"}  # fmt: skip


class SnapError(Exception):
    """An answer in Snapchat's error shape (or an OAuth error on the token path)."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(str(body))
        self.status, self.body, self.headers = status, body, headers or {}


def request_id() -> str:
    return secrets.token_hex(16)


def api_error(status: int, code: str | None, message: str, debug: str = "") -> SnapError:
    body: dict[str, Any] = {"request_status": "ERROR", "request_id": request_id()}
    if code:
        body["error_code"] = code
    body.update(display_message=message, debug_message=debug or message)
    return SnapError(status, body)


def fault_error(name: str, status: int | None = None) -> SnapError:
    default, code, message = _FAULTS[name]
    return api_error(status or default, code, message)


def oauth_error(status: int, code: str, description: str) -> SnapError:
    return SnapError(status, {"error": code, "error_description": description})


class FaultSpec(FaultFields):
    """One injected fault; `on="media"` hits the three upload calls. The `error_code`
    `envelope_error` answers HTTP 200 with `request_status: ERROR` (seen by a Ruby SDK)."""

    on: Literal["token", "profile", "create", "add", "finalize", "publish", "media", "any"]

    def matches(self, kind: str, user_id: str | None) -> bool:
        on_kind = self.on in (kind, "any") or (self.on == "media" and kind in MEDIA_KINDS)
        return on_kind and self.user_id in ("*", user_id)

    def error(self, kind: str) -> SnapError | None:
        """The answer this fault gives; None when it only delays an accepted publish."""
        if self.status is None and self.error_code is None:
            return None if self.accept_then_delay is not None else fault_error("timeout")
        if self.error_code == "envelope_error":
            return api_error(200, "INVALID_REQUEST", "Injected fault in a 200 answer.")
        code = self.error_code or _CODE_OF_STATUS.get(self.status or 0, "")
        status = self.status or _FAULTS.get(code, (400,))[0]
        if kind == "token" and status < 500 and status != 429:
            error = oauth_error(status, code or "invalid_request", "Injected fault.")
        elif code in _FAULTS:
            error = fault_error(code, status)
        else:
            error = api_error(status, code.upper() or None, f"Injected fault: {code or status}.")
        if self.retry_after is not None:  # Snapchat documents no rate-limit headers: a knob
            error.headers = {"retry-after": str(round(self.retry_after))}
        return error
