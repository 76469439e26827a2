"""TikTok's errors in our terms: its envelope, its OAuth errors, its per-minute throttles.

Every Content Posting API answer is `{"data": {...}, "error": {"code", "message", "log_id"}}`,
with `error.code == "ok"` on success (tiktok.md, "Common conventions"); the token endpoint
answers `{"error", "error_description", "log_id"}`. How each code is retried follows
tiktok.md's "Retry policy" (marked there as a synthesis, so a guess where it says so).
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

RATE_WINDOW = 60.0  # every posting limit is per minute per token (tiktok.md)
_PERMANENT_HINTS = {
    "spam_risk_too_many_posts": " The creator reached TikTok's daily posting cap.",
    "reached_active_user_cap": " The app reached TikTok's cap of active creators.",
    "unaudited_client_can_only_post_to_private_accounts": (
        " The TikTok app is not audited: it may post to private accounts only."
    ),
    "url_ownership_unverified": (
        " The media's domain or URL prefix must be verified in TikTok's developer portal."
    ),
    "privacy_level_option_mismatch": " The privacy level is not one the creator may use.",
    "scope_not_authorized": " The user did not grant the scope: connect the account again.",
    "scope_permission_missed": " The app lacks the scope: connect the account again.",
}


def map_error(failure: httpx.Response | httpx.HTTPError) -> PlatformError:
    """Every failure of a call to TikTok, in our terms, with TikTok's answer as `raw`."""
    if isinstance(failure, httpx.HTTPError):
        return transport_error(failure, "TikTok")
    status, raw = failure.status_code, response_body(failure)
    code, text = read_error(raw)
    kind, ours = classify(status, code)
    message = f"TikTok answered {status}" + (f" {code}" if code else "")
    message += f": {text.rstrip('.')}." if text else "."
    recognized = isinstance(raw, dict) and ("error" in raw)
    hint, origin = foreign_answer(failure, recognized=recognized)
    message += _PERMANENT_HINTS.get(code, "") + hint
    retry_after = retry_wait(kind, failure.headers, lambda: RATE_WINDOW)
    return PlatformError(
        kind, ours, message, http_status=status, retry_after=retry_after, raw=raw, origin=origin
    )


def classify(status: int, code: str) -> tuple[ErrorKind, str]:
    """(kind, our code) of an answer: TikTok's `error.code` first, then the HTTP status."""
    if code == "rate_limit_exceeded" or status == 429:
        return ErrorKind.rate_limited, "rate_limited"
    if code == "internal_error" or status >= 500:
        return ErrorKind.server_error, "server_error"
    if code == "access_token_invalid" or (status == 401 and not code.startswith("scope_")):
        return ErrorKind.token_expired, "token_expired"
    if code.startswith("scope_"):
        return ErrorKind.reauth_required, code
    if 200 <= status < 300 and not code:  # a success we could not read counts as a 5xx
        return ErrorKind.server_error, "unreadable_answer"
    return ErrorKind.permanent, code or f"http_{status}"


def read_error(raw: Any) -> tuple[str, str]:
    """(code, message) of an API envelope's `error`, or of an OAuth error body."""
    if not isinstance(raw, dict):
        return "", str(raw or "")[:200]
    error = raw.get("error")
    if isinstance(error, dict):
        code = str(error.get("code") or "")
        return ("" if code == "ok" else code), str(error.get("message") or "")
    if isinstance(error, str):
        return error, str(raw.get("error_description") or "")
    return "", ""


def refresh_error(response: httpx.Response) -> PlatformError:
    """A refused refresh (`invalid_grant`, `invalid_client`…) needs the user."""
    return refused_refresh(map_error(response), "TikTok")
