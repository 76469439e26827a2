"""The LinkedIn fake's errors: LinkedIn's error bodies, OAuth errors, and the faults tests inject.

Error bodies follow LinkedIn's shape (`message`, `serviceErrorCode`, `status`; linkedin.md
"Error model"); the exact wording of each is marked where unsure.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from soku.sandbox.fault_gate import FakeError, FaultAnswers, InjectedFault

CallKind = Literal[
    "token", "userinfo", "publish", "list", "image_init", "image_upload", "image_status",
    "video_init", "video_part", "video_finalize", "video_status",
]  # fmt: skip
CALL_KINDS: tuple[CallKind, ...] = get_args(CallKind)
MEDIA_KINDS = frozenset(kind for kind in CALL_KINDS if kind.startswith(("image_", "video_")))
STATUS_KINDS = frozenset(kind for kind in CALL_KINDS if kind.endswith("_status"))
# code: status, serviceErrorCode, message. 6560x codes and the throttle text are (U).
_FAULTS: dict[str, tuple[int, int | None, str]] = {
    "rate_limited": (429, None, "Resource level throttle MEMBER DAY limit for calls to this "
                                "resource is reached."),
    "token_expired": (401, 65602, "The token used in the request has expired"),
    "token_revoked": (401, 65601, "The token used in the request has been revoked by the user"),
    "invalid_token": (401, 65600, "Invalid access token"),
    "forbidden": (403, None, "Accessing this resource is forbidden. Please check your "
                             "permissions for this resource"),
    "no_permission": (403, 100, "Not enough permissions to access: partnerApiPostsExternal"),
    "duplicate_content": (422, None, "Content is a duplicate of {urn}"),
    "invalid_request": (400, None, "Syntax exception in path variables"),
    "version_sunset": (426, None, "Requested version {version} is not active"),
    "server_error": (500, None, "Internal Server Error"),
    "service_unavailable": (503, None, "Service Unavailable"),
    "timeout": (504, None, "Gateway Timeout"),
}  # fmt: skip
_CODE_OF_STATUS = {400: "invalid_request", 401: "token_expired", 403: "forbidden",
                   422: "duplicate_content", 426: "version_sunset", 429: "rate_limited",
                   503: "service_unavailable", 504: "timeout"}  # fmt: skip


class LinkedInError(FakeError):
    """An answer in LinkedIn's error shape (or an OAuth error on the token path)."""


def api_error(
    status: int, message: str, service_code: int | None = None, **extra: Any
) -> LinkedInError:
    body: dict[str, Any] = {"message": message, "status": status, **extra}
    if service_code is not None:
        body["serviceErrorCode"] = service_code
    return LinkedInError(status, body)


def fault_error(code: str, status: int | None = None, **values: str) -> LinkedInError:
    default, service_code, message = _FAULTS[code]
    values = {"urn": "urn:li:share:7000000000000000000", "version": "000000", **values}
    return api_error(status or default, message.format(**values), service_code)


def oauth_error(status: int, code: str, description: str) -> LinkedInError:
    return LinkedInError(status, {"error": code, "error_description": description})


class FaultSpec(InjectedFault):
    """One injected fault; `on="media"` hits every image and video call."""

    on: Literal[
        "token", "userinfo", "publish", "list", "image_init", "image_upload", "image_status",
        "video_init", "video_part", "video_finalize", "video_status", "media", "any",
    ]  # fmt: skip
    groups = {"media": MEDIA_KINDS}
    # LinkedIn documents no Retry-After: the header a `retry_after` adds is a knob
    answers = FaultAnswers(
        statuses={code: status for code, (status, _, _) in _FAULTS.items()},
        code_of_status=_CODE_OF_STATUS,
        named=fault_error,
        unnamed=lambda status, code, message: api_error(status, message),
        oauth=oauth_error,
    )
