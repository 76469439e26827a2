"""The Account page's sign-ins: every open sign-in of the user (all of their keys) listed with
this browser's marked, one of them ended, or all but this one."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from soku import operations
from soku.auth.models import ApiKey, SubscriptionStatus
from soku.context import AppContext
from soku.dashboard import sign_ins
from soku.dashboard.models import DashboardSession
from soku.dashboard.pages import when
from soku.dashboard.session import Sessions
from soku.db import utcnow
from tests.conftest import Caller, make_caller
from tests.dashboard.conftest import refuses_csrf, sign_in

ACCOUNT = "/dashboard/account"
THIS = '<span class="tag">this browser</span>'


@asynccontextmanager
async def another(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """One more browser, with its own cookie jar."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://soku.test") as http:
        yield http


async def row_of(backend: AppContext, app: FastAPI, http: httpx.AsyncClient) -> DashboardSession:
    """The sign-in row of the browser `http`."""
    jar: Sessions = app.state.dashboard_sessions
    token = jar.token_of(http.cookies["soku_session"])
    assert token is not None
    async with backend.db.read() as session:
        stmt = select(DashboardSession).where(
            DashboardSession.token_hash == sign_ins.token_hash(token)
        )
        return (await session.execute(stmt)).scalar_one()


async def rows_of_user(backend: AppContext, caller: Caller) -> set[uuid.UUID]:
    async with backend.db.read() as session:
        stmt = select(DashboardSession.id).join(ApiKey, ApiKey.id == DashboardSession.key_id)
        found = await session.execute(stmt.where(ApiKey.user_id == caller.user_id))
        return set(found.scalars())


async def second_key(backend: AppContext, caller: Caller, name: str) -> str:
    async with backend.db.transaction() as session:
        issued = await operations.create_key(session, caller.email, name)
    return str(issued["key"])


def listed(page: str, sign_in_id: uuid.UUID) -> str | None:
    """The row of the list showing `sign_in_id`, or None."""
    found = re.search(rf'<tr id="sign-in-{sign_in_id}">(.*?)</tr>', page, re.DOTALL)
    return found[1] if found else None


def end_path(sign_in_id: object) -> str:
    return f"{ACCOUNT}/sign-ins/{sign_in_id}/end"


async def is_signed_in(http: httpx.AsyncClient) -> bool:
    return (await http.get(ACCOUNT)).status_code == 200


async def test_the_list_shows_each_browsers_sign_in_and_marks_this_one(
    backend: AppContext, dashboard_app: FastAPI, browser: httpx.AsyncClient, copy: httpx.AsyncClient
) -> None:
    caller, other = await make_caller(backend, accounts=[]), await make_caller(backend, accounts=[])
    laptop = await second_key(backend, caller, "laptop")
    await sign_in(browser, caller.key)
    await sign_in(copy, laptop)
    async with another(dashboard_app) as stranger:
        await sign_in(stranger, other.key)
        theirs = await row_of(backend, dashboard_app, stranger)
    mine, copied = [await row_of(backend, dashboard_app, b) for b in (browser, copy)]
    page = (await browser.get(ACCOUNT)).text
    here, there = listed(page, mine.id), listed(page, copied.id)
    assert here is not None and there is not None
    assert listed(page, theirs.id) is None and other.key[:16] not in page
    assert page.count(THIS) == 1 and THIS in here
    assert f"<code>{caller.key[:16]}…</code>" in here and f"<code>{laptop[:16]}…</code>" in there
    assert "<td>laptop</td>" in there and "<td>test</td>" in here  # the keys' names
    assert f"about {when(mine.last_seen_at)}" in here and when(mine.created_at) in here
    assert when(copied.expires_at) in there
    assert "Sign out everywhere else" in page
    seen_there = (await copy.get(ACCOUNT)).text
    assert THIS in (listed(seen_there, copied.id) or "")
    assert THIS not in (listed(seen_there, mine.id) or THIS)


async def test_the_page_shows_no_token_or_its_hash(
    backend: AppContext, dashboard_app: FastAPI, browser: httpx.AsyncClient, copy: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    await sign_in(browser, caller.key)
    await sign_in(copy, caller.key)
    rows = [await row_of(backend, dashboard_app, b) for b in (browser, copy)]
    jar: Sessions = dashboard_app.state.dashboard_sessions
    page = (await browser.get(ACCOUNT)).text
    assert all(listed(page, row.id) for row in rows)
    for http, row in zip((browser, copy), rows, strict=True):
        cookie = http.cookies["soku_session"]
        assert row.token_hash not in page and cookie not in page
        assert str(jar.token_of(cookie)) not in page


async def test_ending_another_sign_in_sends_its_browser_to_sign_in(
    backend: AppContext, dashboard_app: FastAPI, browser: httpx.AsyncClient, copy: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    csrf = await sign_in(browser, caller.key)
    await sign_in(copy, caller.key)
    copied = await row_of(backend, dashboard_app, copy)
    done = await browser.post(end_path(copied.id), data={"csrf": csrf})
    assert done.status_code == 303 and done.headers["location"] == f"{ACCOUNT}?done=ended"
    page = await browser.get(done.headers["location"])
    assert "That sign-in has ended" in page.text and listed(page.text, copied.id) is None
    answer = await copy.get("/dashboard/posts")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/dashboard/login?")
    assert answer.headers["location"].endswith("&reason=ended")
    mine = await row_of(backend, dashboard_app, browser)
    assert await rows_of_user(backend, caller) == {mine.id}
    again = await browser.post(end_path(copied.id), data={"csrf": csrf})  # ended already
    assert again.status_code == 404


async def test_ending_this_browsers_own_sign_in_from_the_list_signs_out(
    backend: AppContext, dashboard_app: FastAPI, browser: httpx.AsyncClient, copy: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    csrf = await sign_in(browser, caller.key)
    await sign_in(copy, caller.key)
    mine = await row_of(backend, dashboard_app, browser)
    done = await browser.post(end_path(mine.id), data={"csrf": csrf})
    assert done.status_code == 303
    assert done.headers["location"] == "/dashboard/login?reason=signed_out"
    assert "soku_session" not in browser.cookies
    assert mine.id not in await rows_of_user(backend, caller)
    assert await is_signed_in(copy)


async def test_sign_out_everywhere_else_ends_every_other_sign_in_of_the_user(
    backend: AppContext, dashboard_app: FastAPI, browser: httpx.AsyncClient, copy: httpx.AsyncClient
) -> None:
    caller, other = await make_caller(backend, accounts=[]), await make_caller(backend, accounts=[])
    laptop = await second_key(backend, caller, "laptop")
    csrf = await sign_in(browser, caller.key)
    await sign_in(copy, caller.key)  # the same key
    async with another(dashboard_app) as third, another(dashboard_app) as stranger:
        await sign_in(third, laptop)  # another key of the same user
        await sign_in(stranger, other.key)
        done = await browser.post(f"{ACCOUNT}/sign-ins/end-others", data={"csrf": csrf})
        assert done.status_code == 303
        assert done.headers["location"] == f"{ACCOUNT}?done=ended_others"
        for ended in (copy, third):
            answer = await ended.get(ACCOUNT)
            assert answer.status_code == 303 and answer.headers["location"].endswith("=ended")
        assert await is_signed_in(stranger)
    page = await browser.get(done.headers["location"])
    assert page.status_code == 200 and "Every other sign-in has ended" in page.text
    assert "Sign out everywhere else" not in page.text  # nothing else to end
    mine = await row_of(backend, dashboard_app, browser)
    assert await rows_of_user(backend, caller) == {mine.id}
    assert await rows_of_user(backend, other) != set()


async def test_anothers_sign_in_is_404_and_nothing_ends(
    backend: AppContext, dashboard_app: FastAPI, browser: httpx.AsyncClient, copy: httpx.AsyncClient
) -> None:
    caller, other = await make_caller(backend, accounts=[]), await make_caller(backend, accounts=[])
    csrf = await sign_in(browser, caller.key)
    await sign_in(copy, other.key)
    theirs = await row_of(backend, dashboard_app, copy)
    for target in (theirs.id, uuid.uuid4(), "x"):
        refused = await browser.post(end_path(target), data={"csrf": csrf})
        assert refused.status_code == 404, target
        assert f"No open sign-in {target}." in refused.text and 'class="problem"' in refused.text
    assert await is_signed_in(copy) and await is_signed_in(browser)
    assert await rows_of_user(backend, other) == {theirs.id}


async def test_a_lapsed_subscription_can_still_end_its_sign_ins(
    backend: AppContext, dashboard_app: FastAPI, browser: httpx.AsyncClient, copy: httpx.AsyncClient
) -> None:
    """Ending sign-ins stands for no API call and only takes access away: it is not refused
    with the 403 the forms admitted as API calls give an inactive subscription."""
    caller = await make_caller(backend, accounts=[], subscription=SubscriptionStatus.canceled)
    csrf = await sign_in(browser, caller.key)
    await sign_in(copy, caller.key)
    copied = await row_of(backend, dashboard_app, copy)
    done = await browser.post(end_path(copied.id), data={"csrf": csrf})
    assert done.headers["location"] == f"{ACCOUNT}?done=ended"
    await sign_in(copy, caller.key)
    done = await browser.post(f"{ACCOUNT}/sign-ins/end-others", data={"csrf": csrf})
    assert done.headers["location"] == f"{ACCOUNT}?done=ended_others"
    assert not await is_signed_in(copy)


async def test_the_forms_need_their_csrf_token(
    backend: AppContext, dashboard_app: FastAPI, browser: httpx.AsyncClient, copy: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    await sign_in(browser, caller.key)
    their_csrf = await sign_in(copy, caller.key)
    copied = await row_of(backend, dashboard_app, copy)
    await refuses_csrf(browser, end_path(copied.id), {})
    await refuses_csrf(browser, f"{ACCOUNT}/sign-ins/end-others", {})
    stolen = await browser.post(f"{ACCOUNT}/sign-ins/end-others", data={"csrf": their_csrf})
    assert stolen.status_code == 403  # another sign-in's token is no token here
    assert await is_signed_in(copy)
    assert len(await rows_of_user(backend, caller)) == 2


async def test_expired_and_revoked_sign_ins_are_not_listed_nor_ended_again(
    backend: AppContext, dashboard_app: FastAPI, browser: httpx.AsyncClient, copy: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    laptop = await second_key(backend, caller, "laptop")
    csrf = await sign_in(browser, caller.key)
    await sign_in(copy, caller.key)
    copied = await row_of(backend, dashboard_app, copy)
    async with backend.db.transaction() as session:  # over, but not yet purged
        stmt = update(DashboardSession).where(DashboardSession.id == copied.id)
        await session.execute(stmt.values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    async with another(dashboard_app) as third:
        await sign_in(third, laptop)
        revoked = await row_of(backend, dashboard_app, third)
        await browser.post(f"/dashboard/keys/{revoked.key_id}/revoke", data={"csrf": csrf})
        page = (await browser.get(ACCOUNT)).text
        assert listed(page, (await row_of(backend, dashboard_app, browser)).id)
        assert listed(page, copied.id) is None and listed(page, revoked.id) is None
        assert "Sign out everywhere else" not in page
        for gone in (copied.id, revoked.id):
            assert (await browser.post(end_path(gone), data={"csrf": csrf})).status_code == 404
        await browser.post(f"{ACCOUNT}/sign-ins/end-others", data={"csrf": csrf})
        answer = await third.get(ACCOUNT)  # its row was left: it is still told why it ended
        assert answer.headers["location"].endswith("&reason=revoked")
    assert await rows_of_user(backend, caller) >= {copied.id, revoked.id}


async def test_browsers_of_one_user_each_ending_the_others_at_once_leave_one_signed_in(
    backend: AppContext, dashboard_app: FastAPI
) -> None:
    """Each locks the user's open sign-ins in one order: on PostgreSQL they take turns (no
    deadlock, no 500), and the ones after the first find their own sign-in ended."""
    caller = await make_caller(backend, accounts=[])
    transport = httpx.ASGITransport(app=dashboard_app)
    browsers = [
        httpx.AsyncClient(transport=transport, base_url="http://soku.test") for _ in range(8)
    ]

    async def end_others(http: httpx.AsyncClient, csrf: str) -> httpx.Response:
        return await http.post(f"{ACCOUNT}/sign-ins/end-others", data={"csrf": csrf})

    try:
        forms = [await sign_in(http, caller.key) for http in browsers]
        answers = await asyncio.gather(*map(end_others, browsers, forms))
        assert [a.status_code for a in answers] == [303] * len(browsers)
        kept = [a for a in answers if a.headers["location"] == f"{ACCOUNT}?done=ended_others"]
        assert len(kept) == 1
        assert len(await rows_of_user(backend, caller)) == 1
        assert sum([await is_signed_in(http) for http in browsers]) == 1
    finally:
        for http in browsers:
            await http.aclose()
