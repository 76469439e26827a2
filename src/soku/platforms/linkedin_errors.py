"""LinkedIn's errors in our terms: its error bodies, OAuth errors, duplicates, daily throttles.

LinkedIn answers `{"message", "serviceErrorCode", "status"}` (linkedin.md "Error model"), and
`{"error", "error_description"}` on its OAuth path. Its 429s carry no documented Retry-After;
a daily throttle ("… DAY limit …") resets at midnight UTC, so that is when to try again.
"""

from __future__ import annotations

import datetime as dt
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

REVOKED_TOKEN = 65601  # (U) serviceErrorCode of a token the member revoked
NO_PERMISSION = 100  # "Not enough permissions to access …"
_HINTS = {
    "rate_limited": " Wait for LinkedIn's limit to reset.",
    "token_expired": " The access token has expired.",
    "token_revoked": " The member revoked Soku's access: connect the account again.",
    "duplicate_content": " LinkedIn refuses a post identical to one already on the account.",
    "no_permission": " The LinkedIn app or the member lacks the permission (scope or page role).",
    "forbidden": " The member may not do this (scope or page role).",
    "version_sunset": " The LinkedIn-Version setting is retired: set a recent YYYYMM.",
}


def map_error(failure: httpx.Response | httpx.HTTPError) -> PlatformError:
    """Every failure of a call to LinkedIn, in our terms, with LinkedIn's answer as `raw`."""
    if isinstance(failure, httpx.HTTPError):
        return transport_error(failure, "LinkedIn")
    status, raw = failure.status_code, response_body(failure)
    text, service_code = _read(raw)
    kind, code = _classify(status, text.lower(), service_code)
    message = f"LinkedIn answered {status}" + (f": {text.rstrip('.')}." if text else ".")
    ours = isinstance(raw, dict) and ("serviceErrorCode" in raw or "status" in raw)
    hint, origin = foreign_answer(failure, recognized=ours)
    message += _HINTS.get(code, "") + hint
    daily = "day limit" in text.lower()  # a daily throttle resets at midnight UTC
    retry_after = retry_wait(kind, failure.headers, _until_utc_midnight if daily else None)
    return PlatformError(
        kind, code, message, http_status=status, retry_after=retry_after, raw=raw, origin=origin
    )


def _classify(status: int, text: str, service_code: int | None) -> tuple[ErrorKind, str]:
    if status == 429:
        return ErrorKind.rate_limited, "rate_limited"
    if status >= 500 or 200 <= status < 300:  # a success we could not read counts as a 5xx
        return ErrorKind.server_error, "server_error" if status >= 500 else "unreadable_answer"
    if status == 401 and (service_code == REVOKED_TOKEN or "revoked" in text):
        return ErrorKind.reauth_required, "token_revoked"
    if status == 401:
        return ErrorKind.token_expired, "token_expired"
    if status == 422 and "duplicate" in text:
        return ErrorKind.permanent, "duplicate_content"
    if status == 403 and (service_code == NO_PERMISSION or "not enough permissions" in text):
        return ErrorKind.permanent, "no_permission"
    codes = {400: "invalid_request", 403: "forbidden", 404: "not_found", 422: "unprocessable"}
    codes[426] = "version_sunset"
    return ErrorKind.permanent, codes.get(status, f"http_{status}")


def refresh_error(response: httpx.Response) -> PlatformError:
    """A refused refresh (400/401 `invalid_request`, `invalid_client`…) needs the user."""
    return refused_refresh(map_error(response), "LinkedIn", "message")


def _read(raw: Any) -> tuple[str, int | None]:
    """(message, serviceErrorCode) of an API error or an OAuth error."""
    if not isinstance(raw, dict):
        return str(raw or "")[:200], None
    text = str(raw.get("message") or raw.get("error_description") or raw.get("error") or "")
    code = raw.get("serviceErrorCode")
    return text, code if isinstance(code, int) and not isinstance(code, bool) else None


def _until_utc_midnight() -> float:
    now = dt.datetime.now(dt.UTC)
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), dt.UTC)
    return (midnight - now).total_seconds()
