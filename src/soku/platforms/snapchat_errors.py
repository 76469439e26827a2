"""Snapchat's errors in our terms: its envelope, OAuth errors, throttles, media states.

Every answer of the Marketing API carries `request_status` (`SUCCESS`, `ERROR`, also
`PARTIAL`) and `request_id`; an error adds `error_code`, `display_message` and
`debug_message` (snapchat.md, "Error model"). An answer can be HTTP 200 with
`request_status: ERROR`, so the envelope is read, not only the status. The token endpoint
answers OAuth's `{"error", "error_description"}`. No rate-limit headers are documented: a
Retry-After is honoured when one is sent.
"""

from __future__ import annotations

from typing import Any

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

LABEL = "Snapchat"
PROCESSING_WAIT = 5.0  # seconds before publishing again after MEDIA_PROCESSING (no header)
# error_code → (kind, our code); snapchat.md "Errors seen" and "Retry policy" (U: synthesis)
_CODES: dict[str, tuple[ErrorKind, str]] = {
    "MEDIA_PROCESSING": (ErrorKind.rate_limited, "media_processing"),
    "MEDIA_EXPIRED": (ErrorKind.permanent, "media_expired"),
    # an earlier call of ours with this media is under way: it may yet go through
    "MEDIA_POSTING_ALREADY_IN_PROGRESS": (ErrorKind.server_error, "posting_in_progress"),
}
_HINTS = {
    "rate_limited": " Snapchat allows about 10 calls a second per token: wait and try again.",
    "token_expired": " The access token has expired.",
    "forbidden": (
        " The profile or the app may not do this: the Public Profile API is allowlisted "
        "per app, and only for a Public Profile's owner."
    ),
    "media_processing": " Snapchat is still processing the media; publishing again shortly.",
    "media_expired": " The uploaded media is older than 24 hours: the post must be made again.",
    "posting_in_progress": " An earlier publish of this media is still under way.",
}


def map_error(failure: httpx.Response | httpx.HTTPError) -> PlatformError:
    """Every failure of a call to Snapchat, in our terms, with Snapchat's answer as `raw`."""
    if isinstance(failure, httpx.HTTPError):
        return transport_error(failure, LABEL)
    status, raw = failure.status_code, response_body(failure)
    text, error_code = _read(raw)
    kind, code = _classify(status, error_code)
    message = f"{LABEL} answered {status}" + (f": {text.rstrip('.')}." if text else ".")
    ours = isinstance(raw, dict) and ("request_status" in raw or "error" in raw)
    hint, origin = foreign_answer(failure, recognized=ours)
    message += _HINTS.get(code, "") + hint
    retry_after = retry_wait(kind, failure.headers)
    if code == "media_processing" and retry_after is None:
        retry_after = PROCESSING_WAIT
    return PlatformError(
        kind, code, message, http_status=status, retry_after=retry_after, raw=raw, origin=origin
    )


def _classify(status: int, error_code: str) -> tuple[ErrorKind, str]:
    if status == 429:
        return ErrorKind.rate_limited, "rate_limited"
    if error_code in _CODES:
        return _CODES[error_code]
    if status >= 500:
        return ErrorKind.server_error, "server_error"
    if status == 401:
        return ErrorKind.token_expired, "token_expired"
    if status == 403:
        return ErrorKind.permanent, "forbidden"
    if 200 <= status < 300 and not error_code:  # a success we could not read counts as a 5xx
        return ErrorKind.server_error, "unreadable_answer"
    if error_code.replace("_", "").isalnum():
        return ErrorKind.permanent, error_code.lower()
    codes = {400: "invalid_request", 404: "not_found", 409: "conflict", 422: "unprocessable"}
    return ErrorKind.permanent, codes.get(status, f"http_{status}")


def refresh_error(response: httpx.Response) -> PlatformError:
    """A refused refresh (`invalid_grant`, `invalid_client`…) needs the user."""
    return refused_refresh(map_error(response), LABEL, "display_message")


def envelope_error(response: httpx.Response) -> PlatformError | None:
    """The error an answer holds: a failed status, or a 2xx whose envelope says ERROR."""
    body = response_body(response)
    failed = isinstance(body, dict) and str(body.get("request_status", "")).upper() == "ERROR"
    if response.is_success and not failed:
        return None
    return map_error(response)


def _read(raw: Any) -> tuple[str, str]:
    """(message, error_code) of an API error or an OAuth error."""
    if not isinstance(raw, dict):
        return str(raw or "")[:200], ""
    names = ("display_message", "debug_message", "error_description", "error")
    text = next((str(raw[name]) for name in names if raw.get(name)), "")
    code = raw.get("error_code")
    return text[:300], str(code).strip().upper() if code else ""
