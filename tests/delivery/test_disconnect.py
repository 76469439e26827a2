"""`soku accounts disconnect`: the account's tokens are erased, posts can no longer target it,
and its deliveries that had not run fail with `account_disconnected` until it is connected
again (then `POST /v1/posts/{id}/retry` sends them)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import update

from soku import operations
from soku.delivery.engine import Engine, PlatformClients
from soku.delivery.failures import mark_needs_reauth
from soku.delivery.models import Delivery, DeliveryStatus
from soku.delivery.tokens import refresh_account
from soku.platforms.connector import AccountAccess, RefreshedTokens
from tests.api.helpers import assert_error
from tests.delivery.harness import Harness, by_platform, text_post


async def _disconnect(env: Harness, email: str, platform: str, account_id: str) -> int:
    async with env.ctx.db.transaction() as session:
        gone = await operations.disconnect_account(session, email, platform, account_id)
    assert gone["status"] == "disconnected"
    pending: int = gone["pendingDeliveries"]
    return pending


async def test_waiting_deliveries_fail_until_the_account_is_connected_again(
    env: Harness,
) -> None:
    caller = await env.caller([("x", "x_main"), ("threads", "threads_main")])
    post_id = await env.create(caller, text_post("x", "threads"))  # no worker yet: it waits
    assert await _disconnect(env, caller.email, "x", "x_main") == 1
    account = await env.account(caller, "x")
    assert (account.access_token, account.refresh_token) == (None, None)
    refused = assert_error(await env.submit(caller, text_post("x")), 400, "missing_integrations")
    assert refused["details"]["missingPlatforms"] == ["x"]

    env.start_worker()
    view = await env.wait_status(caller, post_id, "partially_published")
    x = by_platform(view)["x"]
    assert (x["status"], x["error"]["code"]) == ("failed", "account_disconnected")
    assert x["error"]["message"].startswith("The x account 'x_main' was disconnected before")
    assert [p["platform"] for p in await env.fake_posts()] == ["threads"]
    assert (await env.account(caller, "x")).status == "disconnected"  # not made needs_reauth

    async with env.ctx.db.transaction() as session:
        await operations.connect_account(
            session, env.ctx.settings, caller.email, "x", "x_main", True, None, None
        )
    retried = await env.api.post(f"/v1/posts/{post_id}/retry", headers=caller.headers)
    assert retried.status_code == 200, retried.text
    view = await env.wait_status(caller, post_id, "published")
    assert len(await env.fake_posts()) == 2


async def test_a_publish_left_in_flight_is_unknown_once_disconnected(env: Harness) -> None:
    """The earlier call may have gone through, and without tokens nobody can ask: unknown."""
    caller = await env.caller([("x", "x_main")])
    post_id = await env.create(caller, text_post("x"))
    [delivery] = (await env.get(caller, post_id))["deliveries"]
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    async with env.ctx.db.transaction() as session:  # as a worker that died mid-publish left it
        await session.execute(
            update(Delivery)
            .where(Delivery.id == uuid.UUID(delivery["id"]))
            .values(
                status=DeliveryStatus.publishing.value,
                lease_owner="dead-worker",
                lease_expires_at=long_ago,
                checkpoint={"steps": {}, "publish_started": long_ago.isoformat()},
            )
        )
    assert await _disconnect(env, caller.email, "x", "x_main") == 1
    env.start_worker()
    view = await env.wait_for(
        caller, post_id, lambda v: by_platform(v)["x"]["status"] == "unknown", what="x unknown"
    )
    x = by_platform(view)["x"]
    assert (x["status"], x["error"]["code"]) == ("unknown", "account_disconnected")
    assert "may have gone through" in x["error"]["message"]
    assert await env.fake_posts() == []  # nothing was sent, and nothing could be asked


async def test_a_refresh_or_a_reauth_mark_made_meanwhile_does_not_undo_it(env: Harness) -> None:
    """A delivery that was running when the account was disconnected may still refresh its
    token or find it refused: neither brings the erased tokens or the account back."""
    caller = await env.caller([("x", "x_main")])
    account = await env.account(caller, "x")
    await _disconnect(env, caller.email, "x", "x_main")
    await mark_needs_reauth(env.ctx, account.id)
    access = AccountAccess("x", "x_main", None, None, "old", "old-refresh", None, sandbox=True)
    engine = Engine(ctx=env.ctx, clients=PlatformClients(1, 5.0))
    try:
        refreshed = await refresh_account(engine, _Refreshes(), account.id, access)
    finally:
        await engine.clients.aclose()
    assert refreshed.access_token == "new"  # the running delivery goes on with it
    after = await env.account(caller, "x")
    assert (after.status, after.access_token, after.refresh_token) == ("disconnected", None, None)


class _Refreshes:
    platform = "x"

    async def refresh(self, account: AccountAccess, client: object) -> RefreshedTokens:
        return RefreshedTokens("new", "new-refresh", None)
