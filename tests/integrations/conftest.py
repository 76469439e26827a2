"""Fixtures of the connect-flow tests: the service over real HTTP on its public URL, with the
platforms' fakes mounted at /sandbox, a worker delivering, on SQLite and PostgreSQL (the
`database_url` fixture of the engine's tests), and a browser that signs in to the dashboard.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from starlette.routing import Mount

from soku.integrations.models import Account
from soku.integrations.repository import find_account
from soku.platforms import INTEGRATIONS
from tests.asgi_server import free_port, serving
from tests.conftest import Caller
from tests.delivery.conftest import MakeHarness, database_url, fake_server, make_harness
from tests.delivery.harness import Harness

__all__ = ["database_url", "fake_server", "make_harness"]  # fixtures, used by name
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
_ACTION = re.compile(r'<form method="post" action="([^"]+)">')


class Browser:
    """A person at the dashboard: one cookie jar, following redirects by hand."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.AsyncClient(base_url=base, timeout=20, follow_redirects=False)

    async def sign_in(self, key: str) -> None:
        page = await self.http.get("/dashboard/login")
        answer = await self.http.post(
            "/dashboard/login", data={"key": key, "csrf": csrf_of(page.text), "next": "/dashboard"}
        )
        assert answer.status_code == 303, answer.text

    async def csrf(self) -> str:
        page = await self.http.get("/dashboard/integrations")
        assert page.status_code == 200, page.text
        return csrf_of(page.text)

    async def start(self, platform: str, account_id: str, **form: str) -> httpx.Response:
        data = {"csrf": await self.csrf(), "account_id": account_id, "mode": "sandbox", **form}
        return await self.http.post(f"/dashboard/integrations/{platform}/connect", data=data)

    async def consent(
        self, authorize: httpx.Response, decision: str = "allow", login: str | None = None
    ) -> httpx.Response:
        """Opens the consent page the connect form sent us to; answers it; the redirect."""
        assert authorize.status_code == 303, authorize.text
        page = await self.http.get(authorize.headers["location"])
        assert page.status_code == 200, page.text
        fields = {name: html.unescape(value) for name, value in _HIDDEN.findall(page.text)}
        action = _ACTION.search(page.text)
        assert action, page.text
        if login:
            fields["login"] = login
        answer = await self.http.post(
            urljoin(str(page.url), html.unescape(action[1])), data={**fields, "decision": decision}
        )
        assert answer.status_code == 303, answer.text
        return answer

    async def follow(self, response: httpx.Response) -> httpx.Response:
        return await self.http.get(response.headers["location"])

    async def connect(
        self, platform: str, account_id: str, login: str | None = None, **form: str
    ) -> httpx.Response:
        """The whole flow, allowed: the callback's answer."""
        back = await self.consent(await self.start(platform, account_id, **form), login=login)
        return await self.follow(back)

    async def aclose(self) -> None:
        await self.http.aclose()


def problem_of(page: str) -> str:
    """The page's problem message (its text up to the end of its paragraph)."""
    start = page.index('class="problem"')
    return page[start : page.index("</p>", start)]


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found, "the page has no form with a CSRF token"
    return found[1]


class Site:
    """The service over HTTP (its public URL), its harness, and the fakes it mounts."""

    def __init__(self, env: Harness, base: str) -> None:
        self.env, self.base = env, base
        self.browsers: list[Browser] = []

    def fake_state(self, platform: str) -> Any:
        for route in self.env.app.routes:
            if isinstance(route, Mount) and route.path == f"/sandbox/{platform}":
                return route.app.state.fake  # type: ignore[attr-defined]
        raise AssertionError(f"no fake mounted for {platform}")

    async def browser(self, caller: Caller) -> Browser:
        browser = Browser(self.base)
        await browser.sign_in(caller.key)
        self.browsers.append(browser)
        return browser

    async def account(self, caller: Caller, platform: str, account_id: str) -> Account | None:
        async with self.env.ctx.db.read() as session:
            return await find_account(session, caller.user_id, platform, account_id)

    async def fake_posts(self, platform: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=f"{self.base}/sandbox/{platform}") as fake:
            answer = await fake.get("/_inspect/posts")
        assert answer.status_code == 200, answer.text
        posts: list[dict[str, Any]] = answer.json()["posts"]
        return posts

    async def fault(self, platform: str, **spec: Any) -> None:
        async with httpx.AsyncClient(base_url=f"{self.base}/sandbox/{platform}") as fake:
            answer = await fake.post("/_faults", json=spec)
        assert answer.status_code == 201, answer.text

    async def config(self, platform: str, **values: Any) -> None:
        async with httpx.AsyncClient(base_url=f"{self.base}/sandbox/{platform}") as fake:
            answer = await fake.post("/_config", json=values)
        assert answer.status_code == 200, answer.text


@pytest.fixture
async def site(request: pytest.FixtureRequest, make_harness: MakeHarness) -> AsyncIterator[Site]:
    """The site; parametrized indirectly with a function of its base URL, its platform
    options (SOKU_PLATFORM_OPTIONS) come from that."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    options = getattr(request, "param", lambda _base: {})(base)
    env = await make_harness(
        public_base_url=base,
        sandbox_fakes="platform",
        http_timeout_seconds=5,
        platform_options=options,
    )
    async with serving(env.app, port=port):
        found = Site(env, base)
        try:
            yield found
        finally:
            for browser in found.browsers:
                await browser.aclose()
            for platform in INTEGRATIONS:
                async with httpx.AsyncClient(base_url=f"{base}/sandbox/{platform}") as fake:
                    await fake.delete("/_inspect")
