"""The shared fault gate: how an injected fault answers in a platform's words, and whom it hits."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from starlette.requests import Request

from soku.sandbox.fault_gate import FakeError, FaultAnswers, InjectedFault, bearer


def _named(code: str, status: int) -> FakeError:
    return FakeError(status, {"named": code})


def _unnamed(status: int, code: str, message: str) -> FakeError:
    return FakeError(status, {"unnamed": code, "message": message})


def _oauth(status: int, code: str, description: str) -> FakeError:
    return FakeError(status, {"error": code, "error_description": description})


class ToyFault(InjectedFault):
    on: Literal["token", "upload", "status", "publish", "media", "any"]
    groups = {"media": {"upload", "status"}}
    answers = FaultAnswers(
        statuses={"rate_limited": 429, "token_expired": 401, "timeout": 504},
        code_of_status={429: "rate_limited", 401: "token_expired"},
        named=_named,
        unnamed=_unnamed,
        oauth=_oauth,
    )


def _answer(kind: str = "upload", **fields: Any) -> FakeError | None:
    error = ToyFault(on="any", **fields).error(kind)
    assert error is None or isinstance(error, FakeError)
    return error


def test_a_status_alone_is_named_through_the_platform_table() -> None:
    error = _answer(status=429, retry_after=2.6)
    assert error is not None
    assert (error.status, error.body) == (429, {"named": "rate_limited"})
    assert error.headers == {"retry-after": "3"}


def test_an_error_code_brings_its_own_status_or_the_one_asked_for() -> None:
    own = _answer(error_code="token_expired")
    asked = _answer(error_code="token_expired", status=403)
    assert own is not None and asked is not None
    assert (own.status, asked.status) == (401, 403)
    assert own.headers == {}


def test_an_unknown_fault_says_what_was_injected() -> None:
    by_status = _answer(status=502)
    by_code = _answer(error_code="made_up")
    assert by_status is not None and by_code is not None
    assert (by_status.status, by_status.body) == (
        502,
        {"unnamed": "", "message": "Injected fault: 502."},
    )
    assert (by_code.status, by_code.body["message"]) == (400, "Injected fault: made_up.")


def test_the_token_endpoint_answers_oauth_errors_but_for_429_and_5xx() -> None:
    refused = _answer("token", status=401)
    limited = _answer("token", status=429)
    failed = _answer("token", status=500)
    assert refused is not None and limited is not None and failed is not None
    assert refused.body == {"error": "token_expired", "error_description": "Injected fault."}
    assert limited.body == {"named": "rate_limited"}
    assert failed.body["message"] == "Injected fault: 500."


def test_a_delay_alone_times_out_and_a_slow_publish_is_left_to_the_route() -> None:
    timeout = _answer(delay=0.5)
    assert timeout is not None and (timeout.status, timeout.body) == (504, {"named": "timeout"})
    slow = ToyFault.model_validate({"on": "publish", "accept_then_delay": 1})
    assert slow.error("publish") is None


def test_the_platform_chooses_its_default_code_and_rate_limit_headers() -> None:
    answers = FaultAnswers(
        statuses={"server_error": 500, "timeout": 504},
        code_of_status={},
        named=_named,
        unnamed=_unnamed,
        oauth=_oauth,
        default_code=lambda status: "server_error" if status >= 500 else "invalid_request",
        headers=lambda status, retry_after: {"x-reset": str(status + round(retry_after))},
    )
    error = answers.answer(ToyFault(on="any", status=503, retry_after=1), "upload")
    assert error is not None
    assert (error.status, error.body, error.headers) == (503, {"named": "server_error"},
                                                         {"x-reset": "504"})  # fmt: skip


@pytest.mark.parametrize(
    ("on", "kind", "user_id", "hits"),
    [
        ("upload", "upload", "u1", True),
        ("media", "status", "u1", True),
        ("media", "token", "u1", False),
        ("any", "token", None, True),
        ("status", "upload", "u1", False),
    ],
)
def test_a_fault_hits_its_call_its_group_or_any(
    on: str, kind: str, user_id: str | None, hits: bool
) -> None:
    assert ToyFault.model_validate({"on": on, "status": 500}).matches(kind, user_id) is hits


def test_a_fault_for_one_user_spares_the_others() -> None:
    fault = ToyFault(on="any", status=500, user_id="u1")
    assert fault.matches("upload", "u1") and not fault.matches("upload", "u2")


def _request(authorization: str | None) -> Request:
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer ", "Bearer   ", "tok"])
def test_a_call_without_a_bearer_token_gets_the_platform_answer(header: str | None) -> None:
    with pytest.raises(FakeError) as refused:
        bearer(_request(header), lambda: FakeError(401, {"message": "no token"}))
    assert refused.value.status == 401


def test_the_bearer_token_is_read_whatever_the_scheme_case() -> None:
    assert bearer(_request("bearer  tok-1 "), lambda: FakeError(401, {})) == "tok-1"
