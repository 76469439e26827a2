"""The Snapchat fake's errors: Snapchat's envelope, OAuth errors, and the faults tests inject.

Every answer carries `request_status` and `request_id`; an error adds `error_code`,
`display_message` and `debug_message` (snapchat.md, "Error model"). The HTTP status of each
error code, and every wording, are (U): no source shows them.
"""

from __future__ import annotations

import secrets
from typing import Any, Literal, get_args

from soku.sandbox.fault_gate import FakeError, FaultAnswers, InjectedFault

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


class SnapError(FakeError):
    """An answer in Snapchat's error shape (or an OAuth error on the token path)."""


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


class FaultSpec(InjectedFault):
    """One injected fault; `on="media"` hits the three upload calls. The `error_code`
    `envelope_error` answers HTTP 200 with `request_status: ERROR` (seen by a Ruby SDK)."""

    on: Literal["token", "profile", "create", "add", "finalize", "publish", "media", "any"]
    groups = {"media": MEDIA_KINDS}
    # Snapchat documents no rate-limit headers: the Retry-After a `retry_after` adds is a knob
    answers = FaultAnswers(
        statuses={name: status for name, (status, _, _) in _FAULTS.items()},
        code_of_status=_CODE_OF_STATUS,
        named=fault_error,
        unnamed=lambda status, code, message: api_error(status, code.upper() or None, message),
        oauth=oauth_error,
    )

    def error(self, kind: str) -> Exception | None:
        if self.error_code == "envelope_error":
            return api_error(200, "INVALID_REQUEST", "Injected fault in a 200 answer.")
        return super().error(kind)
