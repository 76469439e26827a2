"""Connect flows that must not connect: cancelled, replayed, expired, another user's,
refused by the platform, or with the platform unreachable. Each ends on the Integrations page
with a message that says what happened (never a 500, never a token), and no account."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import update

from soku.integrations.models import AccountStatus, OAuthState
from soku.integrations.vault import TokenVault
from tests.asgi_server import free_port
from tests.integrations.conftest import Site, problem_of


async def _callback_url(
    site: Site, platform: str = "x", account_id: str = "main"
) -> tuple[Any, str]:
    caller = await site.env.caller([])
    browser = await site.browser(caller)
    back = await browser.consent(await browser.start(platform, account_id))
    return (caller, browser), back.headers["location"]


async def test_cancel_on_the_consent_page(site: Site) -> None:
    caller = await site.env.caller([])
    browser = await site.browser(caller)
    back = await browser.consent(await browser.start("linkedin", "main"), decision="cancel")
    query = parse_qs(urlsplit(back.headers["location"]).query)
    assert query["error"] == ["access_denied"] and query["state"]
    page = await browser.follow(back)
    assert page.status_code == 400
    assert "You cancelled connecting LinkedIn" in problem_of(page.text)
    assert await site.account(caller, "linkedin", "main") is None


async def test_a_state_works_once(site: Site) -> None:
    (_caller, browser), url = await _callback_url(site)
    first = await browser.http.get(url)
    assert first.status_code == 303
    again = await browser.http.get(url)
    assert again.status_code == 400
    assert "unknown or was used already" in problem_of(again.text)


async def test_two_callbacks_with_one_state_connect_once(site: Site) -> None:
    (caller, browser), url = await _callback_url(site)
    answers = await asyncio.gather(browser.http.get(url), browser.http.get(url))
    assert sorted(a.status_code for a in answers) == [303, 400]
    account = await site.account(caller, "x", "main")
    assert account is not None and account.status == AccountStatus.connected


async def test_an_expired_state_is_refused(site: Site) -> None:
    (caller, browser), url = await _callback_url(site)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    async with site.env.ctx.db.transaction() as session:
        await session.execute(update(OAuthState).values(expires_at=past))
    page = await browser.http.get(url)
    assert page.status_code == 400 and "expired" in problem_of(page.text)
    assert await site.account(caller, "x", "main") is None


async def test_another_users_session_cannot_finish_a_flow(site: Site) -> None:
    (attacker, _), url = await _callback_url(site)
    victim = await site.env.caller([])
    browser = await site.browser(victim)
    page = await browser.http.get(url)
    assert page.status_code == 403
    assert "another dashboard session" in problem_of(page.text)
    assert await site.account(victim, "x", "main") is None
    assert await site.account(attacker, "x", "main") is None


async def test_a_wrong_pkce_verifier_is_refused_by_the_fake(site: Site) -> None:
    (caller, browser), url = await _callback_url(site)
    vault = TokenVault(site.env.ctx.settings.resolved_secret_key)
    async with site.env.ctx.db.transaction() as session:
        await session.execute(update(OAuthState).values(code_verifier=vault.seal("not-it" * 8)))
    page = await browser.http.get(url)
    assert page.status_code == 502
    message = problem_of(page.text)
    assert "X refused the sign-in" in message and "code verifier did not match" in message
    assert await site.account(caller, "x", "main") is None


@pytest.mark.parametrize(
    "platform", ["x", "linkedin", "threads", "facebook", "tiktok", "instagram", "snapchat"]
)
async def test_a_token_endpoint_error_is_a_message(site: Site, platform: str) -> None:
    (caller, browser), url = await _callback_url(site, platform)
    await site.fault(platform, on="token", status=500)
    page = await browser.http.get(url)
    assert page.status_code == 502, page.text
    message = problem_of(page.text)
    assert "refused the sign-in" in message and "HTTP 500" in message
    assert await site.account(caller, platform, "main") is None


def _real_x(api: Callable[[str], str]) -> Callable[[str], dict[str, Any]]:
    """Real-account settings for X whose app is the fake's (consent page) and whose API is
    where `api` says."""
    return lambda base: {
        "x": {
            "client_id": "real-app",
            "client_secret": "real-secret",
            "authorize_url": f"{base}/sandbox/x/i/oauth2/authorize",
            "api_url": api(base),
        }
    }


@pytest.mark.parametrize(
    "site", [_real_x(lambda _base: f"http://127.0.0.1:{free_port()}")], indirect=True
)
async def test_an_unreachable_platform_is_a_message(site: Site) -> None:
    caller = await site.env.caller([])
    browser = await site.browser(caller)
    back = await browser.consent(await browser.start("x", "main", mode="real"))
    page = await browser.follow(back)
    assert page.status_code == 502
    assert "X could not be reached" in problem_of(page.text)
    assert "real-secret" not in page.text


@pytest.mark.parametrize("site", [_real_x(lambda base: f"{base}/sandbox/x")], indirect=True)
async def test_a_real_connect_uses_the_configured_app(site: Site) -> None:
    caller = await site.env.caller([])
    browser = await site.browser(caller)
    page = await browser.http.get("/dashboard/integrations")
    assert "Connect with X" in page.text and "Connect with LinkedIn" not in page.text
    await site.config("x", client_secret="real-secret")  # Basic auth, checked by the fake
    done = await browser.connect("x", "main", mode="real")
    assert done.status_code == 303, done.text
    account = await site.account(caller, "x", "main")
    assert account is not None and not account.sandbox
    await site.config("x", client_secret="another")
    refused = await browser.connect("x", "second", mode="real")
    assert refused.status_code == 502 and "unauthorized_client" in problem_of(refused.text)


async def test_real_connect_needs_the_app_configured(site: Site) -> None:
    caller = await site.env.caller([])
    browser = await site.browser(caller)
    page = await browser.http.get("/dashboard/integrations")
    assert "Connect with X" not in page.text
    assert (
        "SOKU_PLATFORM_OPTIONS" in page.text and "/dashboard/integrations/x/callback" in page.text
    )
    answer = await browser.start("x", "main", mode="real")
    assert answer.status_code == 400 and "not set up on this service" in problem_of(answer.text)
