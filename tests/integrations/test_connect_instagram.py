"""Connecting an Instagram account at its sandbox fake: what only Instagram's sign-in does.

Its code exchange answers `{"data": [{…}]}` (the documented shape) or flat (seen in
practice), and both connect; the short-lived token is swapped for a 60-day one, and the
account is the professional account's `user_id`.
"""

from __future__ import annotations

import datetime as dt

import pytest

from soku.integrations.models import AccountStatus
from soku.integrations.vault import TokenVault
from tests.integrations.conftest import Site, problem_of


@pytest.mark.parametrize("shape", ["nested", "flat"])
async def test_either_token_answer_connects(site: Site, shape: str) -> None:
    await site.config("instagram", token_answer=shape)
    caller = await site.env.caller([])
    browser = await site.browser(caller)
    done = await browser.connect("instagram", "main", login="ig_shop")
    assert done.status_code == 303, done.text
    account = await site.account(caller, "instagram", "main")
    assert account is not None and account.status == AccountStatus.connected
    assert account.username == "ig_shop" and account.refresh_token is None
    state = site.fake_state("instagram")
    token = TokenVault(site.env.ctx.settings.resolved_secret_key).open(account.access_token)
    assert token and token not in state.short_tokens  # the long-lived one is kept
    assert account.platform_user_id == state.tokens[token].user_id
    lasting = dt.timedelta(seconds=state.config.token_lifetime_secs)
    assert account.expires_at is not None
    expires = account.expires_at.replace(tzinfo=account.expires_at.tzinfo or dt.UTC)
    assert abs(expires - dt.datetime.now(dt.UTC) - lasting) < dt.timedelta(minutes=1)


async def test_a_refused_exchange_is_a_message(site: Site) -> None:
    caller = await site.env.caller([])
    browser = await site.browser(caller)
    start = await browser.start("instagram", "main")
    back = await browser.consent(start, login="ig_shop")
    await site.fault("instagram", on="token", status=500)  # the code exchange
    page = await browser.follow(back)
    assert page.status_code == 502, page.text
    assert "Instagram" in problem_of(page.text)
    assert await site.account(caller, "instagram", "main") is None
