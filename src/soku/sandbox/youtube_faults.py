"""The YouTube fake's errors: Google's JSON error envelope, OAuth errors, injected faults.

Error bodies follow youtube.md "Error model": `{"error": {"code", "message", "errors":
[{"message", "domain", "reason"}]}}`; the token endpoint answers `{"error",
"error_description"}`. The wording of each message is ours (U) where youtube.md quotes none.
"""

from __future__ import annotations

from typing import Literal, get_args

from soku.sandbox.fault_gate import FakeError, FaultAnswers, InjectedFault

CallKind = Literal["token", "channels", "insert", "chunk", "publish", "query", "status"]
CALL_KINDS: tuple[CallKind, ...] = get_args(CallKind)
UPLOAD_KINDS = frozenset({"chunk", "publish", "query"})
STATUS_KINDS = frozenset({"status"})
# code: status, reason, domain, message
_FAULTS: dict[str, tuple[int, str, str, str]] = {
    "rate_limited": (429, "rateLimitExceeded", "global", "Too many requests."),
    "quota_exceeded": (403, "quotaExceeded", "youtube.quota",
                       "The request cannot be completed because you have exceeded your quota."),
    "upload_limit_exceeded": (400, "uploadLimitExceeded", "youtube.video",
                              "The user has exceeded the number of videos they may upload."),
    "token_expired": (401, "authError", "global", "Invalid Credentials"),
    "forbidden": (403, "forbidden", "youtube.video", "Forbidden"),
    "invalid_title": (400, "invalidTitle", "youtube.video", "The request metadata specifies "
                                                            "an invalid video title."),
    "bad_request": (400, "badRequest", "global", "Bad Request"),
    "not_found": (404, "notFound", "global", "Not Found"),
    "server_error": (500, "backendError", "global", "Backend Error"),
    "service_unavailable": (503, "backendError", "global", "Service Unavailable"),
    "timeout": (504, "backendError", "global", "Gateway Timeout"),
}  # fmt: skip
_CODE_OF_STATUS = {400: "bad_request", 401: "token_expired", 403: "forbidden", 404: "not_found",
                   429: "rate_limited", 503: "service_unavailable", 504: "timeout"}  # fmt: skip


class YouTubeError(FakeError):
    """An answer in Google's error shape (or an OAuth error on the token path)."""


def api_error(
    status: int, reason: str, message: str, domain: str = "youtube.video"
) -> YouTubeError:
    detail = {"message": message, "domain": domain, "reason": reason}
    return YouTubeError(status, {"error": {"code": status, "message": message, "errors": [detail]}})


def fault_error(code: str, status: int | None = None) -> YouTubeError:
    default, reason, domain, message = _FAULTS[code]
    return api_error(status or default, reason, message, domain)


def oauth_error(status: int, code: str, description: str) -> YouTubeError:
    return YouTubeError(status, {"error": code, "error_description": description})


class FaultSpec(InjectedFault):
    """One injected fault; `on="upload"` hits every PUT to an upload session, and `on="list"`
    (the name every fake gives the call that finds a post again) the session question."""

    on: Literal[
        "token", "channels", "insert", "chunk", "publish", "query", "status", "upload", "list",
        "any",
    ]  # fmt: skip
    groups = {"upload": UPLOAD_KINDS, "list": {"query"}}
    answers = FaultAnswers(
        statuses={code: status for code, (status, _, _, _) in _FAULTS.items()},
        code_of_status=_CODE_OF_STATUS,
        named=fault_error,
        unnamed=lambda status, code, message: api_error(status, code or "badRequest", message),
        oauth=oauth_error,
    )
