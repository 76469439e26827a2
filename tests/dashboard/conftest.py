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
