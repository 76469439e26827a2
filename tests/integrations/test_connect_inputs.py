"""What a user or a platform may send a connect flow that the database cannot keep: each is a
message on the Integrations page (never a 500), and no account."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from soku.integrations.repository import accounts_of
from tests.asgi_server import free_port, serving
from tests.integrations.conftest import Site, problem_of

_ODD_PORT = free_port()  # the misbehaving X API of `_odd_identity`


@pytest.mark.parametrize("platform", ["x", "instagram"])
@pytest.mark.parametrize("account_id", ["a\x00b", "line\nbreak", "x\u202emain"])
async def test_an_account_id_with_control_characters_is_refused(
    site: Site, platform: str, account_id: str
) -> None:
    caller = await site.env.caller([])
    browser = await site.browser(caller)
    answer = await browser.start(platform, account_id)
    assert answer.status_code == 400, answer.text
    assert "control or invisible characters" in problem_of(answer.text)
    async with site.env.ctx.db.read() as session:
        assert await accounts_of(session, caller.user_id) == []


def _odd_x_api(me: dict[str, Any]) -> Starlette:
    """An X API whose token endpoint grants anything and whose `users/me` answers `me`."""

    async def token(_request: Request) -> JSONResponse:
        return JSONResponse({"access_token": "odd-token", "token_type": "bearer"})

    async def users_me(_request: Request) -> JSONResponse:
        return JSONResponse({"data": me})

    routes = [Route("/2/oauth2/token", token, methods=["POST"]), Route("/2/users/me", users_me)]
    return Starlette(routes=routes)


def _odd_identity(base: str) -> dict[str, Any]:
    return {
        "x": {
            "client_id": "real-app",
            "client_secret": "real-secret",
            "authorize_url": f"{base}/sandbox/x/i/oauth2/authorize",
            "api_url": f"http://127.0.0.1:{_ODD_PORT}",
        }
    }


_ODD: list[Callable[[], dict[str, Any]]] = [
    lambda: {"id": "9" * 201, "username": "odd"},
    lambda: {"id": "42", "username": "u" * 201},
    lambda: {"id": "4\x002", "username": "odd"},
]


@pytest.mark.parametrize("site", [_odd_identity], indirect=True)
@pytest.mark.parametrize("me", _ODD)
async def test_an_identity_the_account_cannot_keep_is_a_message(
    site: Site, me: Callable[[], dict[str, Any]]
) -> None:
    caller = await site.env.caller([])
    browser = await site.browser(caller)
    async with serving(_odd_x_api(me()), port=_ODD_PORT):
        page = await browser.connect("x", "main", mode="real")
    assert page.status_code == 502, page.text
    assert "had no user id and username" in problem_of(page.text)
    assert await site.account(caller, "x", "main") is None


async def test_an_unknown_platform_in_the_url_is_not_echoed_whole(site: Site) -> None:
    caller = await site.env.caller([])
    browser = await site.browser(caller)
    page = await browser.http.get(f"/dashboard/integrations/{'p' * 5000}/callback")
    assert page.status_code == 404
    assert "There is no platform" in problem_of(page.text) and "p" * 41 not in page.text
