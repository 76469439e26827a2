"""Over HTTPS the dashboard's cookies carry the `__Host-` prefix (Secure, Path=/, no Domain),
so a sibling host cannot plant a session for it (cookie tossing); over HTTP, the bare names."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from soku.app import create_app
from soku.context import AppContext
from soku.dashboard.session import Sessions
from tests.conftest import make_caller
from tests.dashboard.conftest import make_key, sign_in

ORIGIN = "https://soku.test"


@pytest.fixture
def https_app(backend: AppContext) -> FastAPI:
    app = create_app(ctx=backend)
    app.state.dashboard_sessions = Sessions(backend.settings.resolved_secret_key, ORIGIN)
    return app


@pytest.fixture
async def https_browser(https_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=https_app)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        yield http


def set_cookies(answer: httpx.Response) -> list[str]:
    return [header.lower() for header in answer.headers.get_list("set-cookie")]


async def test_over_https_every_cookie_is_a_host_cookie(
    backend: AppContext, https_browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    login = await https_browser.get("/dashboard/login")
    csrf = await sign_in(https_browser, caller.key)
    created = await https_browser.post("/dashboard/keys", data={"csrf": csrf, "name": "k"})
    assert created.status_code == 303
    for answer in (login, created):
        (cookie,) = set_cookies(answer)
        assert cookie.startswith("__host-soku_"), cookie
        assert "; secure" in cookie and "; path=/;" in cookie and "domain=" not in cookie
    names = {cookie.name for cookie in https_browser.cookies.jar}
    assert names == {"__Host-soku_session", "__Host-soku_new_key"}
    assert (await https_browser.get("/dashboard/keys/new")).status_code == 200
    assert await make_key(https_browser, csrf, "again")
    assert "__Host-soku_new_key" not in {c.name for c in https_browser.cookies.jar}


async def test_over_https_a_planted_bare_session_cookie_opens_nothing(
    backend: AppContext, https_browser: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    """A sibling host can set `soku_session` for the parent domain; the dashboard over HTTPS
    reads only `__Host-soku_session`, which it cannot set."""
    attacker = await make_caller(backend, accounts=[])
    await sign_in(browser, attacker.key)  # a valid session value, under the bare name
    planted = browser.cookies["soku_session"]
    https_browser.cookies.set("soku_session", planted, domain="soku.test", path="/dashboard")
    answer = await https_browser.get("/dashboard/account")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/dashboard/login")


async def test_signing_out_over_https_drops_the_host_cookie(
    backend: AppContext, https_browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    csrf = await sign_in(https_browser, caller.key)
    out = await https_browser.post("/dashboard/logout", data={"csrf": csrf})
    assert out.status_code == 303
    (dropped,) = set_cookies(out)
    assert dropped.startswith('__host-soku_session=""') and "max-age=0" in dropped
    assert "; path=/;" in dropped and "; secure" in dropped
    assert (await https_browser.get("/dashboard/account")).status_code == 303
