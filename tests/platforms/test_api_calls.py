"""What the platforms' API clients share: the token, a call's failure mapped, a call that must
succeed, a JSON object."""

from __future__ import annotations

import httpx
import pytest

from soku.platforms.api_calls import access_token, answered, json_answer, json_object, succeeded
from soku.platforms.connector import AccountAccess, ErrorKind, PlatformError


def account(token: str | None) -> AccountAccess:
    return AccountAccess("demo", "demo_main", "123", "someone", token, None, None, False)


def mapped(failure: httpx.Response | httpx.HTTPError) -> PlatformError:
    status = failure.status_code if isinstance(failure, httpx.Response) else None
    return PlatformError(ErrorKind.server_error, "mapped", "mapped", http_status=status)


def client(answer: httpx.Response | Exception) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


def test_an_account_without_a_token_must_be_connected_again() -> None:
    assert access_token(account("t0ken"), "Demo") == "t0ken"
    with pytest.raises(PlatformError) as caught:
        access_token(account(None), "Demo")
    assert (caught.value.kind, caught.value.code) == (ErrorKind.reauth_required, "no_access_token")
    assert caught.value.message == "The Demo account demo_main has no access token."


async def test_a_call_that_succeeds_gives_its_answer() -> None:
    async with client(httpx.Response(201, json={"id": "1"})) as http:
        response = await succeeded(http.get("http://demo.test/x"), mapped)
    assert response.status_code == 201


async def test_a_refused_call_and_a_failed_one_are_mapped() -> None:
    async with client(httpx.Response(429)) as http:
        with pytest.raises(PlatformError) as refused:
            await succeeded(http.get("http://demo.test/x"), mapped)
    assert (refused.value.code, refused.value.http_status) == ("mapped", 429)
    async with client(httpx.ConnectError("down")) as http:
        with pytest.raises(PlatformError) as failed:
            await succeeded(http.get("http://demo.test/x"), mapped)
    assert failed.value.http_status is None
    assert isinstance(failed.value.__cause__, httpx.ConnectError)


async def test_any_answer_is_read_and_only_a_call_without_one_is_mapped() -> None:
    async with client(httpx.Response(404)) as http:
        response = await answered(http.get("http://demo.test/x"), mapped)
    assert response.status_code == 404
    async with client(httpx.ReadTimeout("slow")) as http:
        with pytest.raises(PlatformError) as failed:
            await answered(http.get("http://demo.test/x"), mapped)
    assert isinstance(failed.value.__cause__, httpx.ReadTimeout)


async def test_a_json_answer_is_a_successful_object_and_anything_else_is_mapped() -> None:
    async with client(httpx.Response(200, json={"a": 1})) as http:
        assert await json_answer(http.get("http://demo.test/x"), mapped) == {"a": 1}
    refusals = (httpx.Response(200, json=[1]), httpx.Response(204), httpx.Response(400, json={}))
    for answer in refusals:
        async with client(answer) as http:
            with pytest.raises(PlatformError) as caught:
                await json_answer(http.get("http://demo.test/x"), mapped)
        assert caught.value.http_status == answer.status_code


async def test_an_empty_success_is_an_empty_object_only_when_allowed() -> None:
    async with client(httpx.Response(204)) as http:
        assert await json_answer(http.get("http://demo.test/x"), mapped, empty=True) == {}
    async with client(httpx.Response(200, text="<html>")) as http:
        with pytest.raises(PlatformError):
            await json_answer(http.get("http://demo.test/x"), mapped, empty=True)


def test_an_answer_that_is_no_json_object_is_unreadable() -> None:
    assert json_object(httpx.Response(200, json={"a": 1}), "Demo", "/x") == {"a": 1}
    for answer in (httpx.Response(200, json=[1]), httpx.Response(200, text="<html>")):
        with pytest.raises(PlatformError) as caught:
            json_object(answer, "Demo", "/x")
        error = caught.value
        assert (error.kind, error.code) == (ErrorKind.server_error, "unreadable_answer")
        assert error.message == "Demo answered /x without a JSON object."
        assert error.raw == answer.text
