"""Connecting accounts from the dashboard by signing in at each platform's sandbox fake.

Over real HTTP, as a browser does it: the connect form answers a redirect to the fake's
consent page, whose form sends the browser back to our callback with a code; the account is
then connected with the tokens the fake issued, and a post to it is published on the fake
through the platform's real connector, with those tokens.
"""

from __future__ import annotations

from typing import Any

import pytest

from soku.integrations.models import AccountStatus
from soku.integrations.vault import TokenVault
from tests.delivery.harness import text_post
from tests.integrations.conftest import Site

PLATFORMS = ("x", "linkedin", "threads", "facebook")


def token_owner(site: Site, platform: str, token: str) -> str:
    """Who the fake says a token it issued belongs to (its user, member or Page id)."""
    state = site.fake_state(platform)
    if platform == "x":
        return str(state.tokens[token][0])
    if platform == "linkedin":
        return f"urn:li:person:{state.tokens[token][0]}"
    if platform == "threads":
        return str(state.tokens[token].user_id)
    return str(state.tokens[token])  # Facebook: the Page a Page token acts for


def author(platform: str, post: dict[str, Any]) -> str:
    if platform == "x":
        return str(post["user_id"])
    if platform == "linkedin":
        return str(post["author"])
    if platform == "threads":
        return str(post["user"]["id"])
    return str(post["page"])


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_connect_then_publish_with_the_issued_token(site: Site, platform: str) -> None:
    caller = await site.env.caller([])
    browser = await site.browser(caller)
    done = await browser.connect(platform, "main", login="ada_sbx")
    assert done.status_code == 303, done.text
    assert done.headers["location"].startswith("/dashboard/integrations?connected=")
    page = await browser.follow(done)
    assert "Connected your sandbox" in page.text and "&#39;main&#39;" in page.text
    account = await site.account(caller, platform, "main")
    assert account is not None and account.status == AccountStatus.connected and account.sandbox
    vault = TokenVault(site.env.ctx.settings.resolved_secret_key)
    token = vault.open(account.access_token)
    assert token and token not in (account.access_token or "")  # sealed at rest
    assert token_owner(site, platform, token) == account.platform_user_id
    if platform == "x":
        assert account.username == "ada_sbx" and account.refresh_token is not None
        assert account.expires_at is not None
    site.env.start_worker()
    post_id = await site.env.create(caller, text_post(platform, text=f"Hello {platform}"))
    view = await site.env.wait_status(caller, post_id, "published", within=30)
    [post] = await site.fake_posts(platform)
    assert author(platform, post) == account.platform_user_id
    assert post["id"] == view["deliveries"][0]["platformPostId"]
