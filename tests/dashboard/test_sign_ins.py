"""Sign-ins stored on the server (`dashboard_sessions`): sign-out ends a copied cookie at once,
expired sign-ins end and are purged, revoking a key ends its sign-ins, and the CSRF token is
bound to one sign-in."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib

import httpx
from fastapi import FastAPI
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select, update

from soku import operations
from soku.auth.models import ApiKey
from soku.context import AppContext
from soku.dashboard import sign_ins
from soku.dashboard.models import DashboardSession
from soku.dashboard.session import Sessions
from soku.db import utcnow
from tests.conftest import make_caller
from tests.dashboard.conftest import csrf_of, make_key, sign_in


def token_in(app: FastAPI, browser: httpx.AsyncClient) -> str:
    jar: Sessions = app.state.dashboard_sessions
    token = jar.token_of(browser.cookies["soku_session"])
    assert token is not None
    return token


async def rows_of(backend: AppContext, whole_key: str) -> list[DashboardSession]:
    """The sign-in rows opened with the key `whole_key`."""
    digest = hashlib.sha256(whole_key.encode()).hexdigest()
    async with backend.db.read() as session:
        stmt = select(DashboardSession).join(ApiKey, ApiKey.id == DashboardSession.key_id)
        found = await session.execute(stmt.where(ApiKey.key_hash == digest))
        return list(found.scalars())


async def test_a_sign_in_is_a_row_holding_only_its_tokens_hash(
    backend: AppContext, dashboard_app: FastAPI, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    await sign_in(browser, caller.key)
    token = token_in(dashboard_app, browser)
    [row] = await rows_of(backend, caller.key)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() != token
    assert row.expires_at - row.created_at == dt.timedelta(hours=12)
    assert str(row.key_id) not in browser.cookies["soku_session"]


async def test_signing_out_ends_a_copied_cookie_at_once(
    backend: AppContext, browser: httpx.AsyncClient, copy: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    csrf = await sign_in(browser, caller.key)
    copy.cookies.set("soku_session", browser.cookies["soku_session"])
    assert (await copy.get("/dashboard/account")).status_code == 200
    assert (await browser.post("/dashboard/logout", data={"csrf": csrf})).status_code == 303
    answer = await copy.get("/dashboard/account")
    assert answer.status_code == 303
    assert answer.headers["location"].endswith("&reason=ended")
    assert await rows_of(backend, caller.key) == []


async def test_signing_out_leaves_the_keys_other_sign_ins_open(
    backend: AppContext, browser: httpx.AsyncClient, copy: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    csrf = await sign_in(browser, caller.key)
    await sign_in(copy, caller.key)
    assert (await browser.post("/dashboard/logout", data={"csrf": csrf})).status_code == 303
    assert (await copy.get("/dashboard/account")).status_code == 200
    assert len(await rows_of(backend, caller.key)) == 1


async def test_signing_in_again_replaces_this_browsers_sign_in(
    backend: AppContext, browser: httpx.AsyncClient, copy: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    old_csrf = await sign_in(browser, caller.key)
    copy.cookies.set("soku_session", browser.cookies["soku_session"])
    new_csrf = await sign_in(browser, caller.key)
    assert new_csrf != old_csrf
    assert (await copy.get("/dashboard/account")).status_code == 303
    assert len(await rows_of(backend, caller.key)) == 1
    stale = await browser.post("/dashboard/logout", data={"csrf": old_csrf})
    assert stale.status_code == 403 and "stale" in stale.text


async def test_a_csrf_token_works_only_with_its_own_sign_in(
    backend: AppContext, browser: httpx.AsyncClient, copy: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    mine = await sign_in(browser, caller.key)
    theirs = await sign_in(copy, caller.key)  # the same key, another sign-in
    assert mine != theirs
    refused = await browser.post("/dashboard/logout", data={"csrf": theirs})
    assert refused.status_code == 403
    assert (await browser.get("/dashboard/account")).status_code == 200


async def test_an_expired_sign_in_ends_and_the_next_sign_in_purges_it(
    backend: AppContext, browser: httpx.AsyncClient, copy: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    await sign_in(browser, caller.key)
    [row] = await rows_of(backend, caller.key)
    async with backend.db.transaction() as session:  # its 12 hours have gone by
        past = utcnow() - dt.timedelta(seconds=1)
        stmt = update(DashboardSession).where(DashboardSession.id == row.id)
        await session.execute(stmt.values(expires_at=past, created_at=past - sign_ins.LIFETIME))
    answer = await browser.get("/dashboard/account")
    assert answer.status_code == 303
    assert answer.headers["location"].endswith("&reason=ended")
    await sign_in(copy, caller.key)
    assert [r.id for r in await rows_of(backend, caller.key)] != [row.id]
    assert len(await rows_of(backend, caller.key)) == 1


async def test_a_cookie_of_the_old_kind_naming_a_key_is_no_session(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    await sign_in(browser, caller.key)
    [row] = await rows_of(backend, caller.key)
    secret = backend.settings.resolved_secret_key
    signer = URLSafeTimedSerializer(secret, salt="soku.dashboard.session")
    browser.cookies.clear()
    browser.cookies.set("soku_session", signer.dumps({"k": str(row.key_id), "n": "x"}))
    answer = await browser.get("/dashboard/account")
    assert answer.status_code == 303
    assert answer.headers["location"].endswith("&reason=ended")


async def test_revoking_a_key_on_the_keys_page_ends_its_sign_ins(
    backend: AppContext, browser: httpx.AsyncClient, copy: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    csrf = await sign_in(browser, caller.key)
    laptop = await make_key(browser, csrf, "laptop")
    await sign_in(copy, laptop)
    [row] = await rows_of(backend, laptop)
    done = await browser.post(f"/dashboard/keys/{row.key_id}/revoke", data={"csrf": csrf})
    assert done.headers["location"] == "/dashboard/keys?done=revoked"
    [ended] = await rows_of(backend, laptop)
    assert ended.expires_at <= utcnow()
    [kept] = await rows_of(backend, caller.key)
    assert kept.expires_at > utcnow()
    answer = await copy.get("/dashboard/account")
    assert answer.headers["location"].endswith("&reason=revoked")
    assert (await browser.get("/dashboard/account")).status_code == 200


async def test_last_seen_is_written_now_and_then(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    await sign_in(browser, caller.key)
    [row] = await rows_of(backend, caller.key)
    async with backend.db.transaction() as session:
        hour_ago = utcnow() - dt.timedelta(hours=1)
        stmt = update(DashboardSession).where(DashboardSession.id == row.id)
        await session.execute(stmt.values(last_seen_at=hour_ago))
    assert (await browser.get("/dashboard/account")).status_code == 200
    [seen] = await rows_of(backend, caller.key)
    assert utcnow() - seen.last_seen_at < dt.timedelta(minutes=1)


async def test_revoking_a_key_with_the_cli_ends_its_sign_ins(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    await sign_in(browser, caller.key)
    async with backend.db.transaction() as session:
        await operations.revoke_key(session, caller.key)
    [ended] = await rows_of(backend, caller.key)
    assert ended.expires_at <= utcnow()


async def test_browsers_signing_in_again_at_once_as_their_sign_ins_expire_all_get_in(
    backend: AppContext, dashboard_app: FastAPI
) -> None:
    """Each sign-in ends its browser's earlier sign-in, then purges the expired ones: with the
    earlier sign-ins expired but their cookies still read (a key revoked, or 12 hours ending
    as the browser signs in again), sign-ins at the same moment each deleted their own row
    and then waited on the others', which deadlocked on PostgreSQL (a 500)."""
    caller = await make_caller(backend, accounts=[])
    transport = httpx.ASGITransport(app=dashboard_app)
    browsers = [
        httpx.AsyncClient(transport=transport, base_url="http://soku.test") for _ in range(12)
    ]

    async def again(browser: httpx.AsyncClient, csrf: str) -> int:
        answer = await browser.post("/dashboard/login", data={"key": caller.key, "csrf": csrf})
        return answer.status_code

    try:
        for browser in browsers:
            await sign_in(browser, caller.key)
        for _round in range(3):
            async with backend.db.transaction() as session:  # every one of them is over
                now = utcnow()
                stmt = update(DashboardSession).values(
                    expires_at=now, created_at=now - sign_ins.LIFETIME
                )
                await session.execute(stmt.where(DashboardSession.expires_at > now))
            forms = [csrf_of((await b.get("/dashboard/login")).text) for b in browsers]
            statuses = await asyncio.gather(*map(again, browsers, forms))
            assert statuses == [303] * len(browsers)
    finally:
        for browser in browsers:
            await browser.aclose()


async def test_a_browser_of_a_revoked_key_is_told_so_after_others_sign_in(
    backend: AppContext, browser: httpx.AsyncClient, copy: httpx.AsyncClient
) -> None:
    """Revoking expires a key's sign-ins so that their browsers are told why they ended; the
    purge at the next sign-in (anyone's) deleted those rows, and they were told only that
    their session had ended."""
    caller, other = await make_caller(backend, accounts=[]), await make_caller(backend, accounts=[])
    await sign_in(browser, caller.key)
    async with backend.db.transaction() as session:
        await operations.revoke_key(session, caller.key)
    await sign_in(copy, other.key)  # purges what is past its time
    answer = await browser.get("/dashboard/account")
    assert answer.headers["location"].endswith("&reason=revoked")
