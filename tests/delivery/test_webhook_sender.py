"""The webhook sender: claims shared by senders, a dead sender's claim sent again, a hanging
receiver that delays no other, stopping, one connection per attempt, the retention purge; on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid

from sqlalchemy import Connection, func, select, update

from soku.db import utcnow
from soku.webhooks import repository as repo
from soku.webhooks import signing
from soku.webhooks.events import DELIVERIES, ENDPOINTS, EVENTS, add_event
from soku.webhooks.models import EventType, WebhookDelivery
from soku.webhooks.sender import WebhookSender
from soku.webhooks.service import send_test
from tests.delivery.conftest import MakeHarness
from tests.delivery.harness import Harness
from tests.delivery.webhook_receivers import (
    FAST,
    Hanging,
    Receiver,
    add_webhook,
    deliveries_of,
    ping,
    until,
    wait_settled,
)


async def test_two_senders_never_send_one_delivery_twice(
    make_harness: MakeHarness, receiver: Receiver
) -> None:
    env = await make_harness(**FAST)
    caller = await env.caller([("x", "x_main")])
    webhook = await add_webhook(env, caller, receiver.url)
    endpoint_id = uuid.UUID(webhook["id"])
    for _ in range(60):
        await env.ctx.db.run_write(lambda c: send_test(c, caller.user_id, endpoint_id))
    senders = [WebhookSender(env.ctx), WebhookSender(env.ctx)]  # rounds driven by hand
    try:
        while await _pending(env):
            await asyncio.gather(*(sender.send_due() for sender in senders))
    finally:
        for sender in senders:
            await sender.client.aclose()
    ids = [headers["soku-event-id"] for headers, _body in receiver.got]
    assert len(ids) == 60 and len(set(ids)) == 60


async def _pending(env: Harness) -> int:
    query = select(func.count()).where(WebhookDelivery.status == "pending")
    return int(await env.ctx.db.run_read(lambda c: c.execute(query).scalar_one()))


async def test_a_claim_whose_sender_died_is_sent_when_its_lease_ends(
    make_harness: MakeHarness, receiver: Receiver
) -> None:
    """A sender that claimed and never stored an outcome (killed): the row is due again at the
    lease's end and another sender sends it, counted as the second attempt."""
    env = await make_harness(**FAST)
    caller = await env.caller([("x", "x_main")])
    webhook = await add_webhook(env, caller, receiver.url)
    endpoint_id = uuid.UUID(webhook["id"])
    event_id = await env.ctx.db.run_write(lambda c: send_test(c, caller.user_id, endpoint_id))
    now = utcnow()
    lease_end = now + dt.timedelta(seconds=0.3)
    [claimed] = await env.ctx.db.run_write(
        lambda c: repo.claim_due(c, "dead-sender", 10, now, lease_end)
    )
    assert (claimed.event_id, claimed.attempts) == (event_id, 1)
    # while its lease holds, no other sender takes it
    assert await env.ctx.db.run_write(lambda c: repo.claim_due(c, "other", 10, now, now)) == []
    env.start_worker()
    [delivery] = await wait_settled(env, caller, webhook["id"])
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 2)
    [(headers, _body)] = receiver.got
    assert (headers["soku-event-id"], headers["soku-attempt"]) == (str(event_id), "2")
    # the dead sender's late outcome changes nothing: the row is no longer its own
    late = {"id": claimed.id, "status": "failed", "last_error": "late"}
    await env.ctx.db.run_write(lambda c: repo.finish(c, "dead-sender", [late]))
    [still] = await deliveries_of(env, caller, webhook["id"])
    assert (still["status"], still["lastError"]) == ("delivered", None)


async def test_a_hanging_receiver_delays_no_other_endpoint(
    make_harness: MakeHarness, receiver: Receiver, hanging: Hanging
) -> None:
    env = await make_harness(**FAST, webhook_timeout_seconds=30)
    caller = await env.caller([("x", "x_main")])
    slow = await add_webhook(env, caller, hanging.url)
    quick = await add_webhook(env, caller, receiver.url)
    env.start_worker()
    await ping(env, caller, slow)
    await until(lambda: hanging.got == 1)  # its attempt hangs until the timeout
    started = time.monotonic()
    await ping(env, caller, quick)
    await receiver.wait_for(1)
    assert time.monotonic() - started < 10  # not after the hanging attempt's 30 s
    [delivery] = await wait_settled(env, caller, quick["id"])
    assert delivery["status"] == "delivered"


async def test_stopping_cuts_a_hanging_attempt_short_and_gives_it_back(
    make_harness: MakeHarness, hanging: Hanging
) -> None:
    env = await make_harness(**FAST, webhook_timeout_seconds=30, shutdown_grace_seconds=0.2)
    caller = await env.caller([("x", "x_main")])
    webhook = await add_webhook(env, caller, hanging.url)
    sender = WebhookSender(env.ctx)
    running = asyncio.create_task(sender.run())
    await ping(env, caller, webhook)
    await until(lambda: hanging.got == 1)
    started = time.monotonic()
    sender.stop()
    await asyncio.wait_for(running, timeout=15)  # not the attempt's 30 s
    assert time.monotonic() - started < 10
    [delivery] = await deliveries_of(env, caller, webhook["id"])
    assert (delivery["status"], delivery["attempts"]) == ("pending", 1)
    assert delivery["lastError"] == "interrupted: the sender stopped during the attempt"
    due = dt.datetime.fromisoformat(delivery["nextAttemptAt"].replace("Z", "+00:00"))
    assert due <= utcnow()  # due again at once, not when the lease ends


async def test_each_outcome_is_stored_when_known_not_with_its_round(
    make_harness: MakeHarness, receiver: Receiver, hanging: Hanging
) -> None:
    """Two deliveries claimed in one round: the quick receiver's shows delivered while the
    other's attempt still hangs."""
    env = await make_harness(**FAST, webhook_timeout_seconds=30)
    caller = await env.caller([("x", "x_main")])
    slow = await add_webhook(env, caller, hanging.url)
    quick = await add_webhook(env, caller, receiver.url)
    for webhook in (slow, quick):  # both due before any sender runs: one claim takes both
        endpoint = uuid.UUID(webhook["id"])
        await env.ctx.db.run_write(lambda c, e=endpoint: send_test(c, caller.user_id, e))
    env.start_worker()
    [delivered] = await wait_settled(env, caller, quick["id"])
    assert delivered["status"] == "delivered"
    assert hanging.got == 1 and not hanging.release.is_set()
    [waiting] = await deliveries_of(env, caller, slow["id"])
    assert (waiting["status"], waiting["attempts"]) == ("pending", 1)


async def test_webhooks_are_sent_on_connections_never_reused(
    make_harness: MakeHarness, receiver: Receiver
) -> None:
    env = await make_harness(**FAST)
    caller = await env.caller([("x", "x_main")])
    webhook = await add_webhook(env, caller, receiver.url)
    env.start_worker()
    await ping(env, caller, webhook)
    await receiver.wait_for(1)
    [(headers, _body)] = receiver.got
    assert headers["connection"] == "close"


async def test_purge_keeps_what_is_recent_or_still_to_send(
    make_harness: MakeHarness, receiver: Receiver
) -> None:
    env = await make_harness(**FAST, webhook_retention_days=30)
    caller = await env.caller([("x", "x_main")])
    webhook = await add_webhook(env, caller, receiver.url)
    endpoint_id = uuid.UUID(webhook["id"])
    old = utcnow() - dt.timedelta(days=31)

    def event_at(moment: dt.datetime, status: str) -> uuid.UUID:
        def write(connection: Connection) -> uuid.UUID:
            data = {"note": status}
            made = add_event(
                connection, caller.user_id, EventType.ping, data, [endpoint_id], moment
            )
            connection.execute(
                update(DELIVERIES).where(DELIVERIES.c.event_id == made).values(status=status)
            )
            return made

        return write

    kept_pending = await env.ctx.db.run_write(event_at(old, "pending"))
    gone_delivered = await env.ctx.db.run_write(event_at(old, "delivered"))
    gone_failed = await env.ctx.db.run_write(event_at(old, "failed"))
    kept_recent = await env.ctx.db.run_write(event_at(utcnow(), "delivered"))
    sender = WebhookSender(env.ctx)
    try:
        assert await sender.purge() == 2
        assert await sender.purge() == 0
    finally:
        await sender.client.aclose()
    left = await env.ctx.db.run_read(lambda c: {row[0] for row in c.execute(select(EVENTS.c.id))})
    assert {kept_pending, kept_recent} <= left
    assert not {gone_delivered, gone_failed} & left
    sent = await deliveries_of(env, caller, webhook["id"])
    assert {d["eventId"] for d in sent} == {str(kept_pending), str(kept_recent)}


async def test_after_a_rotation_both_secrets_sign_until_the_overlap_ends(
    make_harness: MakeHarness, receiver: Receiver
) -> None:
    env = await make_harness(**FAST)
    caller = await env.caller([("x", "x_main")])
    webhook = await add_webhook(env, caller, receiver.url)
    path = f"/v1/webhooks/{webhook['id']}/rotate-secret"
    new = (await env.api.post(path, headers=caller.headers)).json()["secret"]
    env.start_worker()
    await ping(env, caller, webhook)
    await receiver.wait_for(1)
    (headers, body) = receiver.got[0]
    for secret in (new, webhook["secret"]):
        assert signing.verify(secret, headers["soku-signature"], body)
    endpoint_id = uuid.UUID(webhook["id"])
    ended = utcnow() - dt.timedelta(seconds=1)
    await env.ctx.db.run_write(
        lambda c: c.execute(
            update(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id).values(previous_until=ended)
        )
    )
    await ping(env, caller, webhook)
    await receiver.wait_for(2)
    (headers, body) = receiver.got[1]
    assert signing.verify(new, headers["soku-signature"], body)
    assert not signing.verify(webhook["secret"], headers["soku-signature"], body)
    shown = (await env.api.get(f"/v1/webhooks/{webhook['id']}", headers=caller.headers)).json()
    assert shown["previousSecretValidUntil"] is None
