"""The LinkedIn fake's errors: LinkedIn's error bodies, OAuth errors, and the faults tests inject.

Error bodies follow LinkedIn's shape (`message`, `serviceErrorCode`, `status`; linkedin.md
"Error model"); the exact wording of each is marked where unsure.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from soku.sandbox.common import FaultFields

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


class LinkedInError(Exception):
    """An answer in LinkedIn's error shape (or an OAuth error on the token path)."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(str(body))
        self.status, self.body, self.headers = status, body, headers or {}


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


class FaultSpec(FaultFields):
    """One injected fault; `on="media"` hits every image and video call."""

    on: Literal[
        "token", "userinfo", "publish", "list", "image_init", "image_upload", "image_status",
        "video_init", "video_part", "video_finalize", "video_status", "media", "any",
    ]  # fmt: skip

    def matches(self, kind: str, user_id: str | None) -> bool:
        on_kind = self.on in (kind, "any") or (self.on == "media" and kind in MEDIA_KINDS)
        return on_kind and self.user_id in ("*", user_id)

    def error(self, kind: str) -> LinkedInError | None:
        """The answer this fault gives; None when it only delays an accepted publish."""
        if self.status is None and self.error_code is None:
            return None if self.accept_then_delay is not None else fault_error("timeout")
        code = self.error_code or _CODE_OF_STATUS.get(self.status or 0, "")
        status = self.status or _FAULTS.get(code, (400,))[0]
        if kind == "token" and status < 500 and status != 429:
            error = oauth_error(status, code or "invalid_request", "Injected fault.")
        elif code in _FAULTS:
            error = fault_error(code, status)
        else:
            error = api_error(status, f"Injected fault: {code or status}.")
        if self.retry_after is not None:  # LinkedIn documents no Retry-After: a knob
            error.headers = {"retry-after": str(round(self.retry_after))}
        return error
