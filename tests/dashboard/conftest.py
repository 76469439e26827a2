"""A browser for the dashboard: its own cookie jar, over the app of the `backend` fixture."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from soku.app import create_app
from soku.context import AppContext

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found[1]


@pytest.fixture(scope="session")
def dashboard_app(backend: AppContext) -> FastAPI:
    return create_app(ctx=backend)


@pytest.fixture
async def browser(dashboard_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=dashboard_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://soku.test") as http:
        yield http


@pytest.fixture
async def copy(dashboard_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A second browser: another cookie jar over the same app."""
    transport = httpx.ASGITransport(app=dashboard_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://soku.test") as http:
        yield http


async def sign_in(http: httpx.AsyncClient, key: str, next_page: str = "/dashboard") -> str:
    """Signs `http` in with `key`; the CSRF token of the session's forms."""
    page = await http.get("/dashboard/login")
    answer = await http.post(
        "/dashboard/login", data={"key": key, "csrf": csrf_of(page.text), "next": next_page}
    )
    assert answer.status_code == 303, answer.text
    account = await http.get("/dashboard/account")
    assert account.status_code == 200, account.text
    return csrf_of(account.text)


async def make_key(http: httpx.AsyncClient, csrf: str, name: str) -> str:
    """A new API key made on the keys page (the form, then the page that shows it once)."""
    created = await http.post("/dashboard/keys", data={"csrf": csrf, "name": name})
    assert created.status_code == 303, created.text
    page = await http.get(created.headers["location"])
    shown = re.search(r'<code class="copy">(sk_live_[^<]+)</code>', page.text)
    assert shown, page.text
    return shown[1]


async def api_post(http: httpx.AsyncClient, key: str, body: dict[str, object]) -> str:
    """A post made through the API with `key`; its id."""
    answer = await http.post("/v1/posts", json=body, headers={"soku-api-key": key})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["postSubmissionId"])


async def refuses_csrf(http: httpx.AsyncClient, path: str, data: dict[str, str]) -> None:
    """`path` refuses the form without its token and with a wrong one, and does nothing."""
    for token in (None, "wrong"):
        sent = {"sent": "1", **data} if token is None else {**data, "csrf": token}
        answer = await http.post(path, data=sent)
        assert answer.status_code == 403, (path, token, answer.status_code)
        assert "stale" in answer.text
