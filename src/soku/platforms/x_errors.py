"""X's errors in our terms: problem bodies, OAuth errors, the duplicate-content 403, quotas.

X answers with a problem (`title`, `detail`, `type`, `status`; x.md "Errors"), an OAuth
error (`error`, `error_description`) on its token path, or a legacy `errors` list. A 429's
wait comes from Retry-After, else from the reset of the spent `x-rate-limit-*` window.
"""

from __future__ import annotations

import time
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

_HINTS = {
    "rate_limited": " Wait for X's rate-limit window to reset.",
    "usage_capped": " The app's X usage cap is reached.",
    "token_expired": " The access token has expired or was revoked.",
    "duplicate_content": " X refuses a post identical to one already on the account.",
    "unsupported_authentication": " X wants a user-context token: connect the account again.",
    "credits_depleted": " The X app has no credits left.",
}


def map_error(failure: httpx.Response | httpx.HTTPError) -> PlatformError:
    """Every failure of a call to X, in our terms, with X's answer kept as `raw`."""
    if isinstance(failure, httpx.HTTPError):
        return transport_error(failure, "X")
    status, raw = failure.status_code, response_body(failure)
    title, detail, slug = _problem(raw)
    kind, code = _classify(status, f"{title} {detail}".lower(), slug)
    message = f"X answered {status}" + (f" ({title})" if title else "")
    hint, origin = foreign_answer(failure, recognized=bool(title) or _has_errors(raw))
    message += (f": {detail.rstrip('.')}." if detail else ".") + _HINTS.get(code, "") + hint
    retry_after = retry_wait(kind, failure.headers, lambda: _window_reset(failure.headers))
    return PlatformError(
        kind, code, message, http_status=status, retry_after=retry_after, raw=raw, origin=origin
    )


def _has_errors(raw: Any) -> bool:
    return isinstance(raw, dict) and isinstance(raw.get("errors"), list)


def _classify(status: int, text: str, slug: str) -> tuple[ErrorKind, str]:
    if status == 429:
        return ErrorKind.rate_limited, "usage_capped" if slug == "usage-capped" else "rate_limited"
    if status >= 500 or 200 <= status < 300:  # a success we could not read counts as a 5xx
        return ErrorKind.server_error, "server_error" if status >= 500 else "unreadable_answer"
    if status == 401:
        return ErrorKind.token_expired, "token_expired"
    if status == 403 and "duplicate content" in text:
        return ErrorKind.permanent, "duplicate_content"
    if status == 403 and ("unsupported authentication" in text or slug.startswith("unsupported")):
        return ErrorKind.reauth_required, "unsupported_authentication"
    codes = {400: "invalid_request", 402: "credits_depleted", 403: "forbidden", 404: "not_found"}
    return ErrorKind.permanent, codes.get(status) or slug.replace("-", "_") or f"http_{status}"


def refresh_error(response: httpx.Response) -> PlatformError:
    """A refused refresh (400/401 `invalid_request`…) needs the user; others are retryable."""
    return refused_refresh(map_error(response), "X")


def _problem(raw: Any) -> tuple[str, str, str]:
    """(title, detail, type slug) of a problem, an OAuth error or a legacy `errors` list."""
    if not isinstance(raw, dict):
        return "", str(raw or "")[:200], ""
    errors = raw.get("errors") if isinstance(raw.get("errors"), list) else []
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    title = str(raw.get("title") or raw.get("error") or "")
    detail = str(raw.get("detail") or raw.get("error_description") or "")
    said = str(first.get("message") or "")
    if said and said.rstrip(".") not in detail:  # "One or more parameters…": which one, and why
        detail = f"{detail.rstrip('.')}: {said}" if detail else said
    kind = str(raw.get("type") or "")
    return title, detail, kind.rpartition("/")[2] if kind.startswith("http") else ""


def _window_reset(headers: httpx.Headers) -> float | None:
    """Seconds until the latest spent `x-rate-limit-*` window resets (a 429 without Retry-After)."""
    now = time.time()
    windows = ("x-rate-limit", "x-user-limit-24hour", "x-app-limit-24hour")
    spent = [w for w in windows if headers.get(f"{w}-remaining") == "0"] or ["x-rate-limit"]
    resets = [headers.get(f"{w}-reset", "") for w in spent]
    epochs = [float(reset) for reset in resets if reset.isdigit()]
    return max(max(epochs) - now, 0.0) if epochs else None
