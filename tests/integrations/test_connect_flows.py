"""Connecting accounts from the dashboard by signing in at each platform's sandbox fake.

Over real HTTP, as a browser does it: the connect form answers a redirect to the fake's
consent page, whose form sends the browser back to our callback with a code; the account is
then connected with the tokens the fake issued, and a post to it is published on the fake
through the platform's real connector, with those tokens.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from soku.integrations.models import AccountStatus
from soku.integrations.repository import find_account
from soku.integrations.vault import TokenVault
from soku.platforms import INTEGRATIONS, RULES
from tests.delivery.harness import text_post, video_post
from tests.integrations.conftest import Site, csrf_of, problem_of
from tests.media_files import MediaServer

PLATFORMS = (
    "x", "linkedin", "threads", "facebook", "tiktok", "youtube", "instagram", "snapchat"
)  # fmt: skip


def token_owner(site: Site, platform: str, token: str) -> str:
    """Who the fake says a token it issued belongs to (its user, member or Page id)."""
    state = site.fake_state(platform)
    if platform in ("x", "youtube"):
        return str(state.tokens[token][0])
    if platform == "linkedin":
        return f"urn:li:person:{state.tokens[token][0]}"
    if platform in ("threads", "instagram"):
        return str(state.tokens[token].user_id)
    if platform == "tiktok":
        return str(state.tokens[token][0])
    if platform == "snapchat":  # the Public Profile the token is for
        return str(state.tokens[token][0])
    return str(state.tokens[token])  # Facebook: the Page a Page token acts for


def author(platform: str, post: dict[str, Any]) -> str:
    if platform == "x":
        return str(post["user_id"])
    if platform == "linkedin":
        return str(post["author"])
    if platform in ("threads", "instagram"):
        return str(post["user"]["id"])
    if platform == "tiktok":
        return str(post["open_id"])
    if platform == "youtube":
        return str(post["channel_id"])
    if platform == "snapchat":
        return str(post["profile_id"])
    return str(post["page"])


def first_post(platform: str, media: MediaServer) -> dict[str, Any]:
    """A text post, or a video post where the platform takes no text-only post."""
    rules = getattr(RULES[platform], "media", None)
    if rules is None or rules.text_only:
        return text_post(platform, text=f"Hello {platform}")
    return video_post(media, platform, text=f"Hello {platform}")


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_connect_then_publish_with_the_issued_token(
    site: Site, platform: str, media_server: MediaServer
) -> None:
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
    post_id = await site.env.create(caller, first_post(platform, media_server))
    view = await site.env.wait_status(caller, post_id, "published", within=30)
    [post] = await site.fake_posts(platform)
    assert author(platform, post) == account.platform_user_id
    assert post["id"] == view["deliveries"][0]["platformPostId"]


async def test_reconnect_repairs_an_account_that_needs_reauth(site: Site) -> None:
    caller = await site.env.caller([])
    browser = await site.browser(caller)
    assert (await browser.connect("threads", "main", login="first_login")).status_code == 303
    twice = await browser.start("threads", "main")
    assert twice.status_code == 400  # a connected one is not replaced by a plain connect...
    assert "Reconnect" in problem_of(twice.text)  # ...the message points at the button
    async with site.env.ctx.db.transaction() as session:
        account = await find_account(session, caller.user_id, "threads", "main")
        assert account is not None
        account.status = AccountStatus.needs_reauth
        old_token = account.access_token
    page = await browser.http.get("/dashboard/integrations")
    assert "needs reauth" in page.text and "Reconnect" in page.text
    asked = await browser.start("threads", "main", reconnect="1")
    done = await browser.follow(await browser.consent(asked, login="first_login"))
    assert done.status_code == 303, done.text
    repaired = await site.account(caller, "threads", "main")
    assert repaired is not None and repaired.status == AccountStatus.connected
    assert repaired.access_token != old_token and repaired.username == "first_login"
    site.env.start_worker()
    post_id = await site.env.create(caller, text_post("threads", text="Back again"))
    await site.env.wait_status(caller, post_id, "published", within=30)


async def test_facebook_with_two_pages_asks_which(site: Site) -> None:
    await site.config("facebook", pages_per_user=2)
    caller = await site.env.caller([])
    browser = await site.browser(caller)
    chooser = await browser.connect("facebook", "brand", login="two.pages")
    assert chooser.status_code == 200, chooser.text
    assert "Which Facebook Page is" in chooser.text
    pages = re.findall(r'name="page_id" value="([0-9]+)"', chooser.text)
    assert len(pages) == 2
    assert "access_token" not in chooser.text and "EAA" not in chooser.text
    assert await site.account(caller, "facebook", "brand") is None
    state = re.search(r'name="state" value="([^"]+)"', chooser.text)
    assert state
    form = {"csrf": csrf_of(chooser.text), "state": state[1], "page_id": pages[1]}
    done = await browser.http.post("/dashboard/integrations/facebook/choose", data=form)
    assert done.status_code == 303, done.text
    account = await site.account(caller, "facebook", "brand")
    assert account is not None and account.platform_user_id == pages[1]
    assert account.username == "two.pages sandbox Page 2"
    again = await browser.http.post("/dashboard/integrations/facebook/choose", data=form)
    assert again.status_code == 400  # the choice is used up too


async def test_disconnect_and_platforms_without_a_sign_in(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every platform has a sign-in today; one added with its rules alone connects sandbox
    # accounts at once, as Snapchat's did before its connector
    platform, label = "snapchat", "Snapchat"
    monkeypatch.delitem(INTEGRATIONS, platform)
    caller = await site.env.caller([])
    browser = await site.browser(caller)
    made = await browser.start(platform, "ig_main")  # a sandbox account, no sign-in
    assert made.status_code == 303 and "connected=" in made.headers["location"]
    assert f"Connected your sandbox {label} account" in (await browser.follow(made)).text
    form = {"csrf": await browser.csrf(), "account_id": "ig_main"}
    gone = await browser.http.post(f"/dashboard/integrations/{platform}/disconnect", data=form)
    assert gone.status_code == 303
    assert f"Disconnected your {label} account" in (await browser.follow(gone)).text
    account = await site.account(caller, platform, "ig_main")
    assert account is not None and account.status == AccountStatus.disconnected
    assert account.access_token is None
    unknown = await browser.start("myspace", "main")
    assert unknown.status_code == 404


async def test_reconnect_as_another_user_is_refused_while_posts_wait(site: Site) -> None:
    caller = await site.env.caller([])
    browser = await site.browser(caller)
    assert (await browser.connect("threads", "main", login="first_login")).status_code == 303
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat()
    post_id = await site.env.create(caller, text_post("threads", scheduledTime=later))
    async with site.env.ctx.db.transaction() as session:
        account = await find_account(session, caller.user_id, "threads", "main")
        assert account is not None
        account.status = AccountStatus.needs_reauth
    asked = await browser.start("threads", "main", reconnect="1")
    refused = await browser.follow(await browser.consent(asked, login="someone_else"))
    assert refused.status_code == 400, refused.text  # the page answers a refused flow so
    message = problem_of(refused.text)
    assert "@first_login" in message and "1 of its posts wait" in message
    assert "@someone_else" in message
    kept = await site.account(caller, "threads", "main")
    assert kept is not None and kept.username == "first_login"
    assert kept.status == AccountStatus.needs_reauth
    # with nothing waiting, the account may become the other user's
    cancelled = await site.env.api.delete(f"/v1/posts/{post_id}", headers=caller.headers)
    assert cancelled.status_code == 200, cancelled.text
    asked = await browser.start("threads", "main", reconnect="1")
    done = await browser.follow(await browser.consent(asked, login="someone_else"))
    assert done.status_code == 303, done.text
    moved = await site.account(caller, "threads", "main")
    assert moved is not None and moved.username == "someone_else"
