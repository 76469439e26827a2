"""The Integrations page's forms, as the dashboard's other pages: a bad field is refused as a
page, never a 500."""

from __future__ import annotations

import httpx

from soku.context import AppContext
from tests.conftest import make_caller
from tests.dashboard.conftest import sign_in


async def test_disconnecting_an_account_id_holding_a_nul_is_refused_not_a_500(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    """Connecting refuses a NUL in the account id; disconnecting looked it up as is, and
    PostgreSQL's text cannot hold one (a 500)."""
    caller = await make_caller(backend, accounts=[("x", "x_main")])
    csrf = await sign_in(browser, caller.key)
    for account_id in ("x_main\x00", "\x00"):
        answer = await browser.post(
            "/dashboard/integrations/x/disconnect", data={"csrf": csrf, "account_id": account_id}
        )
        assert answer.status_code == 400, answer.text
        assert "has no x account" in answer.text
    page = await browser.get("/dashboard/integrations")
    assert page.status_code == 200 and "x_main" in page.text
