"""YouTube's errors in our terms: Google's JSON error envelope, OAuth errors, daily quotas.

The Data API answers `{"error": {"code", "message", "errors": [{"reason", "domain",
"message"}]}}` (youtube.md "Error model"); the token endpoint `{"error",
"error_description"}`. The daily quota (`quotaExceeded`, 403) resets at midnight Pacific
time; a channel's upload limit (`uploadLimitExceeded`, 400) is a rolling 24 hours, for which
the same reset is our guess (youtube.md gives no time).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from soku.platforms.connector import (
    ErrorKind,
    PlatformError,
    foreign_answer,
    refused_refresh,
    response_body,
    retry_wait,
    transport_error,
)

LABEL = "YouTube"
PACIFIC = ZoneInfo("America/Los_Angeles")
# reason: (kind, our code); the rest of 4xx is permanent, named after its reason
_REASONS: dict[str, tuple[ErrorKind, str]] = {
    "quotaExceeded": (ErrorKind.rate_limited, "quota_exceeded"),
    "uploadLimitExceeded": (ErrorKind.rate_limited, "upload_limit_exceeded"),
    "rateLimitExceeded": (ErrorKind.rate_limited, "rate_limited"),
    "userRateLimitExceeded": (ErrorKind.rate_limited, "rate_limited"),
}
_DAILY = frozenset({"quota_exceeded", "upload_limit_exceeded"})
_HINTS = {
    "quota_exceeded": " The project's daily YouTube quota is spent; it resets at midnight "
    "Pacific time.",
    "upload_limit_exceeded": " The channel reached its 24-hour upload limit.",
    "rate_limited": " Wait for YouTube's limit to reset.",
    "token_expired": " The access token has expired.",
    "forbidden": " The channel or the app may not do this (scope, or an unverified app).",
}
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def map_error(failure: httpx.Response | httpx.HTTPError) -> PlatformError:
    """Every failure of a call to YouTube (or Google's token endpoint), in our terms."""
    if isinstance(failure, httpx.HTTPError):
        return transport_error(failure, LABEL)
    status, raw = failure.status_code, response_body(failure)
    text, reason = _read(raw)
    kind, code = _classify(status, reason)
    message = f"{LABEL} answered {status}" + (f": {text.rstrip('.')}." if text else ".")
    ours = isinstance(raw, dict) and "error" in raw
    hint, origin = foreign_answer(failure, recognized=ours)
    message += _HINTS.get(code, "") + hint
    reset = _until_pacific_midnight if code in _DAILY else None
    retry_after = retry_wait(kind, failure.headers, reset)
    return PlatformError(
        kind, code, message, http_status=status, retry_after=retry_after, raw=raw, origin=origin
    )


def refresh_error(response: httpx.Response) -> PlatformError:
    """A refused refresh (`invalid_grant`: revoked, expired, or 7 days in Testing mode)."""
    return refused_refresh(map_error(response), LABEL)


def _classify(status: int, reason: str) -> tuple[ErrorKind, str]:
    if reason in _REASONS:
        return _REASONS[reason]
    if status == 429:
        return ErrorKind.rate_limited, "rate_limited"
    if status >= 500 or 200 <= status < 300:  # a success we could not read counts as a 5xx
        return ErrorKind.server_error, "server_error" if status >= 500 else "unreadable_answer"
    if status == 401:
        return ErrorKind.token_expired, "token_expired"
    if reason and status < 500:
        return ErrorKind.permanent, _CAMEL.sub("_", reason).lower()
    codes = {400: "invalid_request", 403: "forbidden", 404: "not_found"}
    return ErrorKind.permanent, codes.get(status, f"http_{status}")


def _read(raw: Any) -> tuple[str, str]:
    """(message, first reason) of an API error, or (description, error) of an OAuth one."""
    if not isinstance(raw, dict):
        return str(raw or "")[:200], ""
    error = raw.get("error")
    if isinstance(error, dict):
        errors = error.get("errors")
        first = errors[0] if isinstance(errors, list) and errors else {}
        first = first if isinstance(first, dict) else {}
        text = str(error.get("message") or first.get("message") or "")
        return text, str(first.get("reason") or "")
    text = str(raw.get("error_description") or error or "")
    return text, ""


def _until_pacific_midnight() -> float:
    now = dt.datetime.now(PACIFIC)
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), PACIFIC)
    return max((midnight - now).total_seconds(), 0.0)
