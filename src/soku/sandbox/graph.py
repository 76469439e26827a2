"""What the Meta fakes (Threads, Facebook Pages) share: the Graph API's errors, tokens, times
and paging cursors.

Graph errors are `{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`
(facebook.md and threads.md "Error model"); a throttle answers 400 with code 4, 17 or 32, an
expired token 400 with code 190 / subcode 463. A Graph call carries its token as the
`access_token` query or form parameter, or as an `Authorization: Bearer` (or `OAuth`)
header. Unknown paths answer code 2500 ("Unknown path components") as Graph does, and a
request the fake cannot parse answers code 100 (invalid parameter).
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import re
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from soku.sandbox.common import FaultFields

# An injectable fault by name: HTTP status, code, subcode, message, type.
GRAPH_FAULTS: dict[str, tuple[int, int, int | None, str, str]] = {
    "rate_limited": (400, 4, None, "(#4) Application request limit reached", "OAuthException"),
    "user_rate_limited": (400, 17, None, "(#17) User request limit reached", "OAuthException"),
    "page_rate_limited": (
        400, 32, None, "(#32) Page request limit reached", "OAuthException"),
    "posting_too_fast": (
        400, 368, 1390008, "You are posting too fast; slow down and try again later.",
        "OAuthException"),
    "token_expired": (
        400, 190, 463, "Error validating access token: Session has expired.", "OAuthException"),
    "token_invalid": (
        400, 190, 467, "Error validating access token: The session is invalid.",
        "OAuthException"),
    "password_changed": (
        400, 190, 460, "Error validating access token: The user has changed the password.",
        "OAuthException"),
    "permission_denied": (
        403, 200, None, "(#200) The user hasn't authorized the application to perform this "
        "action", "OAuthException"),
    "duplicate_content": (400, 506, None, "Duplicate status message", "OAuthException"),
    "server_error": (500, 1, None, "An unknown error has occurred.", "OAuthException"),
    "service_unavailable": (503, 2, None, "Service temporarily unavailable", "OAuthException"),
    "invalid_parameter": (400, 100, None, "(#100) Invalid parameter", "OAuthException"),
}  # fmt: skip
_CODE_OF_STATUS = {429: "rate_limited", 401: "token_invalid", 403: "permission_denied",
                   500: "server_error", 503: "service_unavailable"}  # fmt: skip


class GraphError(Exception):
    """An answer in the Graph error shape."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        subcode: int | None = None,
        kind: str = "OAuthException",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.subcode, self.kind, self.headers = subcode, kind, headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.kind, "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        error["fbtrace_id"] = "A" + secrets.token_urlsafe(15)
        return {"error": error}


def invalid_parameter(message: str, subcode: int | None = None) -> GraphError:
    return GraphError(400, 100, message, subcode)


def named_fault(name: str, status: int | None = None) -> GraphError:
    default, code, subcode, message, kind = GRAPH_FAULTS[name]
    return GraphError(status or default, code, message, subcode, kind)


def fault_error(fault: FaultFields) -> GraphError | None:
    """The answer an injected fault gives; None when it only delays (or delays a publish)."""
    if fault.status is None and fault.error_code is None:
        if fault.accept_then_delay is not None:
            return None
        return named_fault("service_unavailable", 504)
    name = fault.error_code or _CODE_OF_STATUS.get(fault.status or 0, "")
    if name in GRAPH_FAULTS:
        error = named_fault(name, fault.status)
    elif fault.status is not None and fault.status >= 500:
        error = named_fault("server_error", fault.status)
    else:
        error = GraphError(fault.status or 400, 100, f"(#100) Injected fault: {name}.")
    if fault.retry_after is not None:
        error.headers["retry-after"] = str(math.ceil(fault.retry_after))
    return error


# Why a code is refused (consent.CodeBook.redeem) in Meta's words, as its OAuth errors say it.
_CODE_REFUSALS = {
    "redirect_uri": (
        "Error validating verification code. Please make sure your redirect_uri is identical "
        "to the one you used in the OAuth dialog request",
        36008,
    ),
    "expired": ("This authorization code has expired.", 36007),
    "used": ("This authorization code has been used.", 36009),
}


def code_refused(reason: str) -> GraphError:
    """Graph's answer for a code it will not exchange (unknown, used, expired, mismatched)."""
    message, subcode = _CODE_REFUSALS.get(reason, ("Invalid verification code format.", None))
    return GraphError(400, 100, message, subcode)


def client_refused() -> GraphError:
    """Graph's answer for a client id or secret that is missing or wrong."""
    return GraphError(400, 1, "Error validating client secret.")


def access_token(request: Request, form: dict[str, Any] | None = None) -> str:
    """The call's token: Bearer/OAuth header, else `access_token` in the query or form."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip()
    token = request.query_params.get("access_token") or (form or {}).get("access_token")
    if isinstance(token, str) and token:
        return token
    raise GraphError(400, 2500, "An active access token must be used to query information "
                     "about the current user.", kind="OAuthException")  # fmt: skip


def usage_headers(calls: int, limit: int) -> dict[str, str]:
    """`X-App-Usage`, the share of the app's call budget used, in percent (facebook.md)."""
    percent = min(100, math.floor(calls * 100 / max(limit, 1)))
    return {"x-app-usage": f'{{"call_count":{percent},"total_cputime":0,"total_time":0}}'}


def graph_error_handlers(app: FastAPI) -> None:
    """Every error the fake gives, including FastAPI's own, in the Graph shape."""

    @app.exception_handler(GraphError)
    async def graph(request: Request, exc: GraphError) -> JSONResponse:
        headers = {**getattr(request.state, "usage_headers", {}), **exc.headers}
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'] if p not in ('body', 'query'))}: {e['msg']}"
            for e in exc.errors()
        ]
        return await graph(request, invalid_parameter("(#100) " + "; ".join(problems)))

    @app.exception_handler(StarletteHTTPException)
    async def unknown(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"Unknown path components: {request.url.path}"
            return await graph(request, GraphError(400, 2500, message))
        return await graph(request, GraphError(exc.status_code, 1, str(exc.detail)))


def time_param(value: Any, name: str) -> float | None:
    """`since` / `until` as Graph reads them: a Unix time or an ISO 8601 date-time."""
    text = "" if value is None else str(value).strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise invalid_parameter(f"(#100) Param {name} must be a time") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()


def in_window(moment: dt.datetime, since: float | None, until: float | None) -> bool:
    """Whether `moment` is within [since, until] (Unix seconds; None: open)."""
    stamp = moment.timestamp()
    return (since is None or stamp >= since) and (until is None or stamp <= until)


def page_cursors(start: int, count: int) -> dict[str, str]:
    """The `paging.cursors` of a page of `count` (one or more) items from index `start`.

    As on Graph, a cursor names an item: `before` the page's first, `after` its last. They are
    unpadded base64, since they travel in query strings.
    """
    return {"before": _cursor(start), "after": _cursor(start + count - 1)}


def page_start(after: Any) -> int:
    """Where the page after the cursor `after` starts (the item after the one it names); 0
    without a cursor. Cursors are opaque, as on Graph: anything else is refused."""
    if not after:
        return 0
    text = str(after)
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except ValueError:
        decoded = ""
    if not re.fullmatch(r"offset:[0-9]+", decoded):
        raise invalid_parameter("(#100) Param after is not a valid cursor")
    return int(decoded.partition(":")[2]) + 1


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{index}".encode()).decode().rstrip("=")


async def graph_params(request: Request) -> dict[str, str]:
    """Query and form (or JSON) parameters, as Graph takes either."""
    params = dict(request.query_params)
    if request.method != "POST":
        return params
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            raise invalid_parameter("(#100) The body is not valid JSON") from None
        items = body.items() if isinstance(body, dict) else ()
        params.update({str(k): str(v).lower() if isinstance(v, bool) else str(v)
                       for k, v in items})  # fmt: skip
    else:
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


def graph_fields(params: dict[str, str]) -> set[str]:
    """The names in `fields=a,b,c`."""
    return {name.strip() for name in params.get("fields", "").split(",") if name.strip()}


def graph_answer(request: Request, content: Any) -> JSONResponse:
    """A success, with the call's X-App-Usage header."""
    return JSONResponse(content, headers=getattr(request.state, "usage_headers", {}))
