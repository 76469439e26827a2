"""Meta Graph API errors (Threads, Facebook Pages) in our terms.

Every Graph error is `{"error": {"message", "type", "code", "error_subcode",
"error_user_title", "error_user_msg", "is_transient", "fbtrace_id"}}` (facebook.md "Error
model", threads.md). The HTTP status is not a reliable guide (a throttle often comes as a
400), so errors are classified by `code` and `error_subcode`:

- throttles: codes 4 (app), 17 (user), 32 (Page), 341, 613, 9 (publishing limit) and the
  business-use-case codes 80000-80009 and 80014, subcode 1390008 ("posting too fast");
  the wait comes from Retry-After, else from `estimated_time_to_regain_access` (minutes)
  in the `X-Business-Use-Case-Usage` header;
- tokens: 190 with subcode 463 (expired) or 102 is an expired token (refresh, then retry
  once); 190 with any other subcode (458 app removed, 459 checkpoint, 460 password changed,
  464 unconfirmed, 467 invalid) and 1404078 need the user to connect the account again;
- transient: codes 1 and 2, -1 and -2, `is_transient: true`, any 5xx, and "media not
  ready" (9007 / 2207027): retry;
- 506 is a duplicate post; 10 and 200-299 a missing permission; anything else is permanent.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from soku.platforms.connector import (
    ErrorKind,
    PlatformError,
    foreign_answer,
    response_json,
    retry_after_header,
    transport_error,
)

THROTTLE_CODES = frozenset({4, 9, 17, 32, 341, 613, *range(80000, 80010), 80014})
THROTTLE_SUBCODES = frozenset({1390008, 2207042})
TRANSIENT_CODES = frozenset({-2, -1, 1, 2})
REAUTH_SUBCODES = frozenset({458, 459, 460, 464, 467})
_HINTS = {
    "rate_limited": " Meta's rate limit for this app or account is reached; retrying later.",
    "token_expired": " The access token has expired.",
    "reauth_required": " Connect the account again.",
    "duplicate_content": " The platform refuses a post identical to a recent one.",
    "permission_denied": " The app lacks a permission for this: connect the account again "
    "granting it.",
}


def graph_error(failure: httpx.Response | httpx.HTTPError, label: str) -> PlatformError:
    """A failed Graph call as a PlatformError; `label` names the platform in the message."""
    if isinstance(failure, httpx.HTTPError):
        return transport_error(failure, label)
    status, raw = failure.status_code, response_json(failure)
    if raw is None:
        raw = failure.text[:2000]
    error = raw.get("error") if isinstance(raw, dict) else None
    error = error if isinstance(error, dict) else {}
    code, subcode = _int(error.get("code")), _int(error.get("error_subcode"))
    kind, ours = classify(status, code, subcode, error.get("is_transient") is True)
    said = str(error.get("error_user_msg") or error.get("message") or "").strip()
    numbers = f"code {code}" + (f"/{subcode}" if subcode is not None else "")
    message = f"{label} answered {status}" + (f" ({numbers})" if code is not None else "")
    hint, origin = foreign_answer(failure, recognized=bool(error))
    message += (f": {said.rstrip('.')}." if said else ".") + _HINTS.get(ours, "") + hint
    retry_after = None
    if kind in (ErrorKind.rate_limited, ErrorKind.server_error):
        retry_after = retry_after_header(failure.headers) or _regain_access(failure.headers)
    return PlatformError(
        kind, ours, message, http_status=status, retry_after=retry_after, raw=raw, origin=origin
    )


def classify(
    status: int, code: int | None, subcode: int | None, transient: bool = False
) -> tuple[ErrorKind, str]:
    """Our kind and code for a Graph error's HTTP status, code and subcode."""
    if code in THROTTLE_CODES or subcode in THROTTLE_SUBCODES or status == 429:
        return ErrorKind.rate_limited, "rate_limited"
    if (code == 190 and subcode in REAUTH_SUBCODES) or subcode == 1404078:
        return ErrorKind.reauth_required, "reauth_required"
    if code in (190, 102) or (status == 401 and code is None):
        return ErrorKind.token_expired, "token_expired"
    if code == 9007 or subcode == 2207027:
        return ErrorKind.server_error, "media_not_ready"
    if code in TRANSIENT_CODES or transient or status >= 500 or 200 <= status < 300:
        return ErrorKind.server_error, "server_error" if status >= 300 else "unreadable_answer"
    if code == 506:
        return ErrorKind.permanent, "duplicate_content"
    if code == 10 or (code is not None and 200 <= code <= 299):
        return ErrorKind.permanent, "permission_denied"
    if code == 368:
        return ErrorKind.permanent, "temporarily_blocked"
    return (
        ErrorKind.permanent,
        "invalid_request" if code == 100 else f"graph_error_{code or status}",
    )


def _regain_access(headers: httpx.Headers) -> float | None:
    """The longest `estimated_time_to_regain_access` (minutes) in the BUC usage header."""
    try:
        usage = json.loads(headers.get("x-business-use-case-usage", ""))
    except ValueError:
        return None
    minutes = [
        _int(entry.get("estimated_time_to_regain_access")) or 0
        for entries in (usage.values() if isinstance(usage, dict) else ())
        if isinstance(entries, list)
        for entry in entries
        if isinstance(entry, dict)
    ]
    return max(minutes) * 60.0 if minutes and max(minutes) > 0 else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None
