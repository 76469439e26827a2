"""The shared token endpoint, on a toy fake: grants, client checks and each refusal's words."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from soku.sandbox.consent import AuthRequest, CodeBook
from soku.sandbox.fault_gate import FakeError
from soku.sandbox.oauth_tokens import Refusals, TokenEndpoint, token_route

REDIRECT = "https://app.example/callback"
REFUSALS: Refusals = {
    "client": ("invalid_client", "Who are you?"),
    "grant_type": ("unsupported_grant_type", "No {grant!r} here"),
    "no_code": ("invalid_request", "Send a code"),
    "code": ("invalid_grant", "Not that code ({reason})"),
}


@dataclass
class ToyConfig:
    client_id: str | None = None
    client_secret: str | None = None


@dataclass
class ToyState:
    calls: Counter[str] = field(default_factory=Counter)
    codes: CodeBook = field(default_factory=CodeBook)
    config: ToyConfig = field(default_factory=ToyConfig)
    faults: list[str] = field(default_factory=list)

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        return {"refreshed": refresh_token}


class ToyFake:
    def __init__(self) -> None:
        self.state = ToyState()

    async def apply_fault(self, kind: str, user_id: str | None) -> None:
        if self.state.faults:
            raise FakeError(503, {"fault": self.state.faults.pop()})

    def code(self, client_id: str = "app", challenge: str = "") -> str:
        asked = AuthRequest("code", client_id, REDIRECT, "read", "s", challenge, "plain")
        return self.state.codes.issue(asked, "user-1", 60)


def _oauth_error(status: int, code: str, description: str) -> FakeError:
    return FakeError(status, {"error": code, "error_description": description})


def _app(fake: ToyFake, **options: Any) -> FastAPI:
    app = FastAPI()

    @app.exception_handler(FakeError)
    async def fake_error(request: Request, exc: FakeError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status)

    refusals = options.pop("refusals", REFUSALS)
    issue = options.pop("issue", lambda grant: {"subject": grant.subject, "scope": grant.scope})
    token_route(app, fake, TokenEndpoint("/token", _oauth_error, refusals, issue, **options))
    return app


@pytest.fixture
def fake() -> ToyFake:
    return ToyFake()


@pytest.fixture
async def http(fake: ToyFake) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(fake))
    async with httpx.AsyncClient(transport=transport, base_url="http://toy") as client:
        yield client


def _code_form(code: str, **extra: str) -> dict[str, str]:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    return {"client_id": "app", "client_secret": "s", **form, **extra}


async def test_a_code_is_exchanged_once(fake: ToyFake, http: httpx.AsyncClient) -> None:
    code = fake.code()
    first = await http.post("/token", data=_code_form(code))
    assert (first.status_code, first.json()) == (200, {"subject": "user-1", "scope": "read"})
    again = await http.post("/token", data=_code_form(code))
    assert again.status_code == 400
    assert again.json() == {"error": "invalid_grant", "error_description": "Not that code (used)"}
    assert fake.state.calls["token"] == 2


async def test_a_refresh_token_goes_to_the_state(http: httpx.AsyncClient) -> None:
    answer = await http.post("/token", data={"grant_type": "refresh_token", "refresh_token": "r"})
    assert answer.json() == {"refreshed": "r"}


@pytest.mark.parametrize(
    ("form", "status", "body"),
    [
        ({"grant_type": "password"}, 400, ("unsupported_grant_type", "No 'password' here")),
        ({}, 400, ("unsupported_grant_type", "No None here")),
        ({"grant_type": "authorization_code"}, 401, ("invalid_client", "Who are you?")),
        (_code_form("", client_secret=""), 401, ("invalid_client", "Who are you?")),
        (_code_form(""), 400, ("invalid_request", "Send a code")),
        (_code_form("nope"), 400, ("invalid_grant", "Not that code (unknown)")),
    ],
)
async def test_each_refusal_is_in_the_platform_words(
    http: httpx.AsyncClient, form: dict[str, str], status: int, body: tuple[str, str]
) -> None:
    answer = await http.post("/token", data=form)
    assert answer.status_code == status
    assert answer.json() == {"error": body[0], "error_description": body[1]}


async def test_a_configured_client_is_the_only_one(fake: ToyFake, http: httpx.AsyncClient) -> None:
    fake.state.config = ToyConfig("app", "s")
    refresh = {"grant_type": "refresh_token", "refresh_token": "r", "client_id": "app"}
    assert (await http.post("/token", data=refresh)).status_code == 401  # no secret
    assert (await http.post("/token", data={**refresh, "client_secret": "s"})).status_code == 200
    other = await http.post("/token", data=_code_form(fake.code(), client_secret="t"))
    assert other.status_code == 401


async def test_a_code_is_for_its_client_and_verifier(
    fake: ToyFake, http: httpx.AsyncClient
) -> None:
    stranger = await http.post("/token", data=_code_form(fake.code("else")))
    assert stranger.json()["error_description"] == "Not that code (client)"
    pkce = fake.code(challenge="v" * 43)
    wrong = await http.post("/token", data=_code_form(pkce, code_verifier="w" * 43))
    assert wrong.json()["error_description"] == "Not that code (verifier)"


async def test_a_fault_answers_before_any_check(fake: ToyFake, http: httpx.AsyncClient) -> None:
    fake.state.faults.append("down")
    answer = await http.post("/token", data={})
    assert (answer.status_code, answer.json()) == (503, {"fault": "down"})
    assert fake.state.calls["token"] == 1


async def test_the_options_a_platform_may_choose(fake: ToyFake) -> None:
    refusals: Refusals = {
        **REFUSALS,
        "no_client": ("invalid_client", "Send key and secret"),
    }
    del refusals["no_code"]
    app = _app(
        fake,
        refusals=refusals,
        id_field="client_key",
        configured=lambda config: (config.client_id and "key", config.client_secret),
        secret_needed=False,
        reads_verifier=False,
        code_reasons={"unknown": "Never heard of it"},
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://toy") as http:
        keyless = await http.post("/token", data=_code_form("x"))
        assert keyless.json()["error_description"] == "Send key and secret"
        form = {**_code_form("", client_secret=""), "client_key": "app"}  # a key is enough
        missing = await http.post("/token", data=form)
        assert missing.json()["error_description"] == "Never heard of it"
        pkce = {**_code_form(fake.code(challenge="v" * 43)), "client_key": "app"}
        unread = await http.post("/token", data={**pkce, "code_verifier": "v" * 43})
        assert unread.json()["error_description"] == "Not that code (verifier)"
        fake.state.config = ToyConfig("app", "s")  # the key read from the config as "key"
        refresh = {"grant_type": "refresh_token", "client_key": "key", "client_secret": "s"}
        assert (await http.post("/token", data=refresh)).status_code == 200
        stranger = await http.post("/token", data={**refresh, "client_key": "app"})
        assert stranger.json()["error_description"] == "Who are you?"


async def test_a_platform_may_check_its_client_itself(fake: ToyFake) -> None:
    def header_client(request: Request, form: dict[str, str]) -> str | None:
        return request.headers.get("x-client")

    transport = httpx.ASGITransport(app=_app(fake, client=header_client))
    async with httpx.AsyncClient(transport=transport, base_url="http://toy") as http:
        form = {"grant_type": "authorization_code", "code": fake.code(), "redirect_uri": REDIRECT}
        answer = await http.post("/token", data=form, headers={"x-client": "app"})
        assert answer.status_code == 200
