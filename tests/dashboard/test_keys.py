"""The API keys page: the user's keys, a new key shown once, revoking one."""

from __future__ import annotations

import re
import uuid

import httpx

from soku.context import AppContext
from tests.conftest import make_caller
from tests.dashboard.conftest import make_key, refuses_csrf, sign_in

_SHOWN = re.compile(r'<code class="copy">(sk_live_[^<]+)</code>')


async def test_the_page_lists_only_the_users_keys(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    assert (await browser.get("/dashboard/keys")).status_code == 303
    caller = await make_caller(backend, accounts=[])
    other = await make_caller(backend, accounts=[])
    await sign_in(browser, caller.key)
    page = await browser.get("/dashboard/keys")
    assert page.status_code == 200
    assert f"<code>{caller.key[:16]}…</code>" in page.text and "this session" in page.text
    assert other.key[:16] not in page.text
    assert caller.key not in page.text  # never the whole key


async def test_a_new_key_is_shown_once_and_works_on_the_api(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    csrf = await sign_in(browser, caller.key)
    await refuses_csrf(browser, "/dashboard/keys", {"name": "sneaky"})
    created = await browser.post("/dashboard/keys", data={"csrf": csrf, "name": "ci <robot>"})
    assert created.status_code == 303 and created.headers["location"] == "/dashboard/keys/new"
    assert _SHOWN.search(created.text) is None  # the form's answer holds no key to re-send
    page = await browser.get("/dashboard/keys/new")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"  # it shows the key
    shown = _SHOWN.search(page.text)
    assert shown, page.text
    key = shown[1]
    assert "ci &lt;robot&gt;" in page.text and "sneaky" not in page.text
    assert (await browser.get("/v1/posts", headers={"soku-api-key": key})).status_code == 200
    again = await browser.get("/dashboard/keys")
    assert key not in again.text and key[:16] in again.text
    too_long = await browser.post("/dashboard/keys", data={"csrf": csrf, "name": "n" * 201})
    assert too_long.status_code == 400 and "at most 200 characters" in too_long.text
    assert 'value="' + "n" * 201 + '"' in too_long.text


async def test_reloading_the_new_key_page_makes_no_key_and_shows_none(
    backend: AppContext, browser: httpx.AsyncClient, copy: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    csrf = await sign_in(browser, caller.key)
    created = await browser.post("/dashboard/keys", data={"csrf": csrf, "name": "once"})
    sealed = created.cookies["soku_new_key"]
    assert "sk_live_" not in sealed  # the browser holds it encrypted
    other = await make_caller(backend, accounts=[])
    await sign_in(copy, other.key)  # another sign-in cannot open it
    copy.cookies.set("soku_new_key", sealed, path="/dashboard/keys/new")
    stolen = await copy.get("/dashboard/keys/new")
    assert stolen.status_code == 303 and "sk_live_" not in stolen.text
    assert _SHOWN.search((await browser.get("/dashboard/keys/new")).text)
    reloaded = await browser.get("/dashboard/keys/new")
    assert reloaded.status_code == 303
    assert reloaded.headers["location"] == "/dashboard/keys?done=shown"
    notice = await browser.get(reloaded.headers["location"])
    assert "shown once" in notice.text and _SHOWN.search(notice.text) is None
    keys = await browser.get("/dashboard/keys")
    assert keys.text.count("/revoke") == 2  # the sign-in's key and the one made, no more


async def test_revoking_a_key_asks_first_and_the_api_then_refuses_it(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    csrf = await sign_in(browser, caller.key)
    spare = await make_key(browser, csrf, "spare")
    listed = await browser.get("/dashboard/keys")
    row = next(r for r in listed.text.split("<tr>") if "spare" in r)
    link = re.search(r'href="(/dashboard/keys/([0-9a-f-]+)/revoke)"', row)
    assert link
    confirm = await browser.get(link[1])
    assert confirm.status_code == 200
    assert "Yes, revoke this key" in confirm.text and "signs you out" not in confirm.text
    await refuses_csrf(browser, link[1], {})
    assert (await browser.get("/v1/posts", headers={"soku-api-key": spare})).status_code == 200
    done = await browser.post(link[1], data={"csrf": csrf})
    assert done.status_code == 303 and done.headers["location"] == "/dashboard/keys?done=revoked"
    assert (await browser.get("/v1/posts", headers={"soku-api-key": spare})).status_code == 401
    page = await browser.get(done.headers["location"])
    assert "The key was revoked" in page.text
    assert (await browser.get("/dashboard/account")).status_code == 200  # still signed in


async def test_revoking_the_sessions_own_key_signs_out(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    csrf = await sign_in(browser, caller.key)
    page = await browser.get("/dashboard/keys")
    own = re.search(r'href="(/dashboard/keys/[0-9a-f-]+/revoke)"', page.text)
    assert own
    confirm = await browser.get(own[1])
    assert "signs you out" in confirm.text
    done = await browser.post(own[1], data={"csrf": csrf})
    assert done.status_code == 303
    assert done.headers["location"] == "/dashboard/login?reason=own_key_revoked"
    assert "You revoked the key" in (await browser.get(done.headers["location"])).text
    assert (await browser.get("/dashboard/keys")).status_code == 303
    assert (await browser.get("/v1/posts", headers=caller.headers)).status_code == 401


async def test_anothers_key_is_404(backend: AppContext, browser: httpx.AsyncClient) -> None:
    caller = await make_caller(backend, accounts=[])
    other = await make_caller(backend, accounts=[])
    csrf = await sign_in(browser, other.key)
    page = await browser.get("/dashboard/keys")
    theirs = re.search(r'href="(/dashboard/keys/[0-9a-f-]+/revoke)"', page.text)
    assert theirs
    browser.cookies.clear()
    csrf = await sign_in(browser, caller.key)
    for path in (theirs[1], f"/dashboard/keys/{uuid.uuid4()}/revoke", "/dashboard/keys/x/revoke"):
        assert (await browser.get(path)).status_code == 404, path
        refused = await browser.post(path, data={"csrf": csrf})
        assert refused.status_code == 404 and "No API key" in refused.text
    assert (await browser.get("/v1/posts", headers=other.headers)).status_code == 200
