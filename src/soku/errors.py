"""One error tree, one envelope: `{"error": {type, code, message, timestamp, requestId, details}}`.

Services raise these; only the handlers in `soku.http` know about HTTP responses.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar


class ApiError(Exception):
    """Base of every error the API answers with. The class decides status and code."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    default_message: ClassVar[str] = "An internal error occurred."

    def __init__(
        self,
        message: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details or {}
        self.headers = headers or {}
        super().__init__(self.message)


def error_type(status: int) -> str:
    if status in (401, 403):
        return "authentication_error"
    if status >= 500:
        return "api_error"
    return "invalid_request_error"


def envelope(
    status: int, code: str, message: str, request_id: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return {
        "error": {
            "type": error_type(status),
            "code": code,
            "message": message,
            "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
            "requestId": request_id,
            "details": details or {},
        }
    }


# Problems listed in one `validation_error`: a 1 MB body naming one platform 200,000 times was
# answered with 22 MB of the same problem.
MAX_LISTED = 100


class ValidationFailed(ApiError):
    status = 400
    code = "validation_error"
    default_message = "The request body has missing or invalid fields."

    @classmethod
    def from_problems(cls, problems: list[dict[str, str]]) -> ValidationFailed:
        """Every problem at once (up to `MAX_LISTED`, then how many more in `omitted`); the
        first is repeated at the top for simple clients."""
        first = problems[0]
        details: dict[str, Any] = {k: v for k, v in first.items() if k != "message"}
        details["errors"] = problems[:MAX_LISTED]
        if len(problems) > MAX_LISTED:
            details["omitted"] = len(problems) - MAX_LISTED
        if len(problems) == 1:
            message = first.get("message") or cls.default_message
        else:
            # each message is a sentence of its own: its full stop goes, one ends the list
            shown = [p.get("message", p.get("reason", "")).rstrip(". ") for p in problems[:5]]
            if len(problems) > 5:
                shown.append(f"and {len(problems) - 5} more (see details.errors)")
            message = f"{len(problems)} problems in the request: " + "; ".join(shown) + "."
        return cls(message, details)


class MissingIntegrations(ApiError):
    status = 400
    code = "missing_integrations"


class MissingAccount(ApiError):
    status = 400
    code = "missing_account"


class UploadFailed(ApiError):
    status = 400
    code = "upload_failed"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"
    default_message = "Missing or invalid soku-api-key"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"
    default_message = "Subscription required"


class NotFound(ApiError):
    status = 404
    code = "not_found"
    default_message = "No such resource."


class MethodNotAllowed(ApiError):
    status = 405
    code = "method_not_allowed"
    default_message = "This method is not allowed on this path."


class Conflict(ApiError):
    status = 409
    code = "conflict"


class IdempotencyConflict(ApiError):
    status = 409
    code = "idempotency_conflict"
    default_message = "This Idempotency-Key was already used with a different request body."


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"
    default_message = "Content-Type must be application/json."


class RangeNotSatisfiable(ApiError):
    status = 416
    code = "range_not_satisfiable"
    default_message = "The requested range starts past the end of the file."


class RateLimitExceeded(ApiError):
    status = 429
    code = "rate_limit_exceeded"
    default_message = "Too many requests."


class PostCreationFailed(ApiError):
    status = 500
    code = "post_creation_failed"
    default_message = "An internal error occurred while creating the post."


class DispatchFailed(ApiError):
    status = 500
    code = "dispatch_failed"
    default_message = "The post was created but delivery to one or more platforms failed."


class ServiceUnavailable(ApiError):
    status = 503
    code = "service_unavailable"
    default_message = "The service cannot reach its database."
