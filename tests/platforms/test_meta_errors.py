"""Meta Graph errors (Threads, Facebook) in our terms, from the bodies facebook.md documents."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from soku.platforms.connector import ErrorKind
from soku.platforms.meta_errors import graph_error
from soku.sandbox.common import FaultFields
from soku.sandbox.graph import GRAPH_FAULTS, fault_error


def answer(
    status: int, code: int | None, subcode: int | None = None, **extra: Any
) -> httpx.Response:
    error: dict[str, Any] = {"message": "said by Meta", "type": "OAuthException", **extra}
    if code is not None:
        error["code"] = code
    if subcode is not None:
        error["error_subcode"] = subcode
    return httpx.Response(status, json={"error": {**error, "fbtrace_id": "Atrace"}})


@pytest.mark.parametrize(
    ("status", "code", "subcode", "kind", "ours"),
    [
        (400, 4, None, ErrorKind.rate_limited, "rate_limited"),
        (400, 17, None, ErrorKind.rate_limited, "rate_limited"),
        (400, 32, None, ErrorKind.rate_limited, "rate_limited"),
        (400, 613, None, ErrorKind.rate_limited, "rate_limited"),
        (400, 80001, None, ErrorKind.rate_limited, "rate_limited"),
        (400, 368, 1390008, ErrorKind.rate_limited, "rate_limited"),
        (429, None, None, ErrorKind.rate_limited, "rate_limited"),
        (400, 190, 463, ErrorKind.token_expired, "token_expired"),
        (400, 190, None, ErrorKind.token_expired, "token_expired"),
        (400, 102, None, ErrorKind.token_expired, "token_expired"),
        (400, 190, 460, ErrorKind.reauth_required, "reauth_required"),
        (400, 190, 467, ErrorKind.reauth_required, "reauth_required"),
        (400, 190, 458, ErrorKind.reauth_required, "reauth_required"),
        (400, 1, None, ErrorKind.server_error, "server_error"),
        (500, 2, None, ErrorKind.server_error, "server_error"),
        (400, 9007, 2207027, ErrorKind.server_error, "media_not_ready"),
        (400, 506, None, ErrorKind.permanent, "duplicate_content"),
        (403, 200, None, ErrorKind.permanent, "permission_denied"),
        (400, 10, None, ErrorKind.permanent, "permission_denied"),
        (400, 368, None, ErrorKind.permanent, "temporarily_blocked"),
        (400, 100, None, ErrorKind.permanent, "invalid_request"),
        (400, 1609005, None, ErrorKind.permanent, "graph_error_1609005"),
    ],
)
def test_classified_by_code_not_status(
    status: int, code: int | None, subcode: int | None, kind: ErrorKind, ours: str
) -> None:
    error = graph_error(answer(status, code, subcode), "Facebook")
    assert (error.kind, error.code, error.http_status) == (kind, ours, status)
    assert error.raw["error"]["fbtrace_id"] == "Atrace"  # Meta's answer is kept whole
    assert error.message.startswith(f"Facebook answered {status}")
    assert "said by Meta" in error.message


def test_transient_flag_makes_an_unknown_code_retryable() -> None:
    error = graph_error(answer(400, 12345, is_transient=True), "Threads")
    assert error.kind == ErrorKind.server_error


def test_user_message_is_preferred_and_codes_are_named() -> None:
    response = answer(400, 190, 463, error_user_msg="Your session expired.")
    error = graph_error(response, "Threads")
    assert error.message == (
        "Threads answered 400 (code 190/463): Your session expired. The access token has expired."
    )


def test_wait_from_retry_after_or_the_business_usage_header() -> None:
    throttled = answer(400, 4)
    throttled.headers["retry-after"] = "120"
    assert graph_error(throttled, "Facebook").retry_after == 120
    usage = {"123": [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 7}]}
    buc = httpx.Response(
        400,
        json={"error": {"code": 80001, "message": "too many"}},
        headers={"x-business-use-case-usage": json.dumps(usage)},
    )
    assert graph_error(buc, "Facebook").retry_after == 7 * 60
    assert graph_error(answer(400, 506), "Facebook").retry_after is None


def test_not_json_and_no_answer() -> None:
    html = graph_error(httpx.Response(502, text="<html>bad gateway</html>"), "Facebook")
    assert (html.kind, html.code, html.raw) == (
        ErrorKind.server_error,
        "server_error",
        "<html>bad gateway</html>",
    )
    down = graph_error(httpx.ConnectError("refused"), "Threads")
    assert (down.kind, down.code) == (ErrorKind.connection, "connection_failed")
    slow = graph_error(httpx.ReadTimeout("slow"), "Threads")
    assert (slow.kind, slow.code) == (ErrorKind.timeout, "timeout")


class Fault(FaultFields):
    on: str = "publish"


@pytest.mark.parametrize("name", sorted(GRAPH_FAULTS))
def test_every_fake_fault_reads_back_as_what_it_names(name: str) -> None:
    """The fakes' injected faults and the connectors' mapping agree on every named fault."""
    injected = fault_error(Fault(error_code=name, retry_after=30))
    assert injected is not None
    response = httpx.Response(injected.status, json=injected.body(), headers=injected.headers)
    error = graph_error(response, "Facebook")
    expected = {
        "rate_limited": "rate_limited",
        "user_rate_limited": "rate_limited",
        "page_rate_limited": "rate_limited",
        "posting_too_fast": "rate_limited",
        "token_expired": "token_expired",
        "token_invalid": "reauth_required",
        "password_changed": "reauth_required",
        "permission_denied": "permission_denied",
        "duplicate_content": "duplicate_content",
        "server_error": "server_error",
        "service_unavailable": "server_error",
        "invalid_parameter": "invalid_request",
    }
    assert error.code == expected[name]
    if error.kind in (ErrorKind.rate_limited, ErrorKind.server_error):
        assert error.retry_after == 30
