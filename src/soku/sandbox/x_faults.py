"""The X fake's errors: X API v2 problem bodies, OAuth errors, and the faults tests inject."""

from __future__ import annotations

import math
import time
from typing import Any, Literal, get_args

from soku.sandbox.fault_gate import FakeError, FaultAnswers, InjectedFault

CallKind = Literal[
    "token", "publish", "media", "initialize", "append", "finalize", "status", "me", "list"
]  # fmt: skip
CALL_KINDS: tuple[CallKind, ...] = get_args(CallKind)
UPLOAD_KINDS = frozenset({"media", "initialize", "append", "finalize"})
STATUS_KINDS = frozenset({"status"})  # where a processing failure shows
PROBLEMS = "https://api.x.com/2/problems/"
_FAULTS: dict[str, tuple[int, str, str, str]] = {  # code: status, title, detail, type
    "rate_limited": (429, "Too Many Requests", "Too Many Requests", "about:blank"),
    "usage_capped": (429, "UsageCapExceeded", "Usage cap exceeded: Monthly product cap",
                     PROBLEMS + "usage-capped"),
    "token_expired": (401, "Unauthorized", "Unauthorized", "about:blank"),
    "unsupported_authentication": (
        403, "Unsupported Authentication",
        "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint.  "
        "Supported authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context].",
        PROBLEMS + "unsupported-authentication"),
    "duplicate_content": (403, "Forbidden",
                          "You are not allowed to create a Tweet with duplicate content.",
                          "about:blank"),
    "forbidden": (403, "Forbidden", "You are not permitted to perform this action.", "about:blank"),
    "server_error": (500, "Internal Server Error", "Internal Server Error", "about:blank"),
    "service_unavailable": (503, "Service Unavailable", "Service Unavailable", "about:blank"),
    "timeout": (504, "Gateway Timeout", "Gateway Timeout", "about:blank"),
}  # fmt: skip
_CODE_OF_STATUS = {429: "rate_limited", 401: "token_expired", 403: "forbidden",
                   503: "service_unavailable", 504: "timeout"}  # fmt: skip


class XError(FakeError):
    """An answer in one of X's error shapes (a problem, or an OAuth error on the token path)."""


def problem(
    status: int, title: str, detail: str, kind: str = "about:blank", **extra: Any
) -> XError:
    return XError(
        status, {"title": title, "detail": detail, "type": kind, "status": status, **extra}
    )


def invalid_request(message: str, parameter: str = "", status: int = 400) -> XError:
    errors = [{"parameters": {parameter: []} if parameter else {}, "message": message}]
    detail = "One or more parameters to your request was invalid."
    return problem(status, "Invalid Request", detail, PROBLEMS + "invalid-request", errors=errors)


def oauth_error(status: int, code: str, description: str) -> XError:
    return XError(status, {"error": code, "error_description": description})


def _rate_headers(status: int, retry_after: float) -> dict[str, str]:
    """A 429 tells when the window resets (`x-rate-limit-*`); any other error, Retry-After."""
    if status == 429:
        reset = str(math.ceil(time.time() + retry_after))
        return {"x-rate-limit-remaining": "0", "x-rate-limit-reset": reset}
    return {"retry-after": str(math.ceil(retry_after))}


def fault_problem(code: str, status: int | None = None) -> XError:
    default, title, detail, kind = _FAULTS[code]
    return problem(status or default, title, detail, kind)


class FaultSpec(InjectedFault):
    """One injected fault, as posted to `/_faults`."""

    on: Literal[
        "token", "publish", "media", "initialize", "append", "finalize", "status", "me",
        "list", "any",
    ]  # fmt: skip
    groups = {"media": UPLOAD_KINDS}
    answers = FaultAnswers(
        statuses={code: status for code, (status, _, _, _) in _FAULTS.items()},
        code_of_status=_CODE_OF_STATUS,
        named=fault_problem,
        unnamed=lambda status, code, message: invalid_request(message, status=status),
        oauth=oauth_error,
        oauth_description="Value passed for the token was invalid.",
        default_code=lambda status: "server_error" if status >= 500 else "invalid_request",
        headers=_rate_headers,
    )
