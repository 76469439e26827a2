"""Webhooks end to end: a post's outcome reaches a real HTTP receiver, signed, retried when the
receiver fails, given up after the last attempt, never sent to a refused address; on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Connection, func, insert, select, update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from soku.db import utcnow
from soku.integrations.vault import TokenVault
from soku.webhooks import repository as repo
from soku.webhooks import signing
from soku.webhooks.events import DELIVERIES, ENDPOINTS, EVENTS, add_event
from soku.webhooks.models import EventType, WebhookDelivery
from soku.webhooks.sender import WebhookSender
from soku.webhooks.service import send_test
from tests.asgi_server import serving
from tests.conftest import Caller
from tests.delivery.conftest import MakeHarness
from tests.delivery.harness import Harness, sample, text_post

FAST = {
    "webhook_allow_private": True,  # the receiver is on loopback
    "webhook_poll_seconds": 0.05,
    "webhook_retry_base_seconds": 0.05,
    "webhook_retry_max_seconds": 0.2,
}
WAIT = 15.0


@dataclass
class Receiver:
    """What the receiver got; it answers 503 to the first `failures` requests, then 204."""

    url: str = ""
    failures: int = 0
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def hook(self, request: Request) -> Response:
        self.got.append((dict(request.headers), await request.body()))
        if self.failures > 0:
            self.failures -= 1
            return Response("receiver down for maintenance", status_code=503)
        return Response(status_code=204)

    async def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + WAIT
        while len(self.got) < count:
            assert time.monotonic() < deadline, f"{len(self.got)} of {count} requests arrived"
            await asyncio.sleep(0.02)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _headers, body in self.got]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = Starlette(routes=[Route("/hook", found.hook, methods=["POST"])])
    async with serving(app) as url:
        found.url = f"{url}/hook"
        yield found


@dataclass
class Hanging:
    """A receiver that never answers (until the test ends)."""

    url: str = ""
    got: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def hook(self, request: Request) -> Response:
        self.got += 1
        await self.release.wait()
        return Response(status_code=204)


@pytest.fixture
async def hanging() -> AsyncIterator[Hanging]:
    found = Hanging()
    app = Starlette(routes=[Route("/hook", found.hook, methods=["POST"])])
    async with serving(app) as url:
        found.url = f"{url}/hook"
        yield found
        found.release.set()


async def add_webhook(env: Harness, caller: Caller, url: str, **extra: Any) -> dict[str, Any]:
    response = await env.api.post(
        "/v1/webhooks", json={"url": url, **extra}, headers=caller.headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def deliveries_of(env: Harness, caller: Caller, webhook_id: str) -> list[dict[str, Any]]:
    response = await env.api.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=caller.headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def wait_settled(env: Harness, caller: Caller, webhook_id: str) -> list[dict[str, Any]]:
    """The endpoint's deliveries once none is pending."""
    deadline = time.monotonic() + WAIT
    while True:
        found = await deliveries_of(env, caller, webhook_id)
        if found and all(d["status"] != "pending" for d in found):
            return found
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.05)


async def test_published_post_sends_a_signed_event(
    make_harness: MakeHarness, receiver: Receiver
) -> None:
    env = await make_harness(**FAST)
    caller = await env.caller([("x", "x_main"), ("threads", "threads_main")])
    webhook = await add_webhook(env, caller, receiver.url)
    assert webhook["secret"].startswith("whsec_")
    assert webhook["events"] == ["post.published", "post.partially_published", "post.failed"]
    env.start_worker()
    post_id = await env.create(caller, text_post("x", "threads"))
    view = await env.wait_status(caller, post_id, "published")
    await receiver.wait_for(1)

    [(headers, raw)] = receiver.got
    assert signing.verify(webhook["secret"], headers["soku-signature"], raw)
    assert not signing.verify("whsec_other", headers["soku-signature"], raw)
    assert not signing.verify(webhook["secret"], headers["soku-signature"], raw + b" ")
    event = json.loads(raw)
    assert (event["type"], headers["soku-event"]) == ("post.published", "post.published")
    assert headers["soku-event-id"] == event["id"]
    assert headers["soku-attempt"] == "1"
    assert headers["content-type"] == "application/json"
    assert event["data"]["postSubmissionId"] == post_id
    assert event["data"]["status"] == "published"
    sent = {d["platform"]: d for d in event["data"]["deliveries"]}
    shown = {d["platform"]: d for d in view["deliveries"]}
    assert {p: d["platformPostId"] for p, d in sent.items()} == {
        p: d["platformPostId"] for p, d in shown.items()
    }
    assert all(d["url"] and d["status"] == "published" for d in sent.values())

    [delivery] = await wait_settled(env, caller, webhook["id"])
    assert delivery["eventId"] == event["id"]
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 1)
    assert (delivery["lastStatusCode"], delivery["lastError"]) == (204, None)
    assert delivery["deliveredAt"] is not None and delivery["nextAttemptAt"] is None
    assert sample(await env.metrics(), "soku_webhook_attempts_total", outcome="delivered") == 1


async def test_failed_post_event_is_retried_until_the_receiver_takes_it(
    make_harness: MakeHarness, receiver: Receiver
) -> None:
    env = await make_harness(**FAST)
    caller = await env.caller([("x", "x_main")])
    webhook = await add_webhook(env, caller, receiver.url, events=["post.failed"])
    user = await env.platform_user(caller, "x")
    await env.fault(user_id=user, on="publish", error_code="duplicate_content")
    receiver.failures = 2
    env.start_worker()
    post_id = await env.create(caller, text_post("x"))
    await env.wait_status(caller, post_id, "failed")

    [delivery] = await wait_settled(env, caller, webhook["id"])
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 3)
    assert len(receiver.got) == 3
    ids = {headers["soku-event-id"] for headers, _body in receiver.got}
    assert ids == {delivery["eventId"]}  # one event, sent three times: the receiver dedupes
    assert [h["soku-attempt"] for h, _b in receiver.got] == ["1", "2", "3"]
    event = receiver.bodies()[-1]
    assert event["type"] == "post.failed"
    [failed] = event["data"]["deliveries"]
    assert failed["error"]["code"] == "duplicate_content"
    metrics = await env.metrics()
    assert sample(metrics, "soku_webhook_attempts_total", outcome="retrying") == 2
    assert sample(metrics, "soku_webhook_attempts_total", outcome="delivered") == 1


async def test_gives_up_after_the_last_attempt_and_says_why(
    make_harness: MakeHarness, receiver: Receiver
) -> None:
    env = await make_harness(**FAST, webhook_max_attempts=3)
    caller = await env.caller([("x", "x_main")])
    webhook = await add_webhook(env, caller, receiver.url)
    receiver.failures = 100
    env.start_worker()
    response = await env.api.post(f"/v1/webhooks/{webhook['id']}/test", headers=caller.headers)
    assert response.status_code == 202, response.text
    event_id = response.json()["eventId"]

    [delivery] = await wait_settled(env, caller, webhook["id"])
    assert (delivery["eventId"], delivery["eventType"]) == (event_id, "ping")
    assert (delivery["status"], delivery["attempts"]) == ("failed", 3)
    assert delivery["lastStatusCode"] == 503
    assert delivery["lastError"] == "answered HTTP 503: receiver down for maintenance"
    assert delivery["deliveredAt"] is None and delivery["nextAttemptAt"] is None
    assert len(receiver.got) == 3
    assert receiver.bodies()[0]["data"]["webhookId"] == webhook["id"]
    assert sample(await env.metrics(), "soku_webhook_attempts_total", outcome="failed") == 1


async def test_events_an_endpoint_did_not_ask_for_are_not_recorded(
    make_harness: MakeHarness, receiver: Receiver
) -> None:
    env = await make_harness(**FAST)
    caller = await env.caller([("x", "x_main")])
    only_failures = await add_webhook(env, caller, receiver.url, events=["post.failed"])
    other = await env.caller([("x", "x_main")])  # another user's outcome reaches no one here
    env.start_worker()
    await env.wait_status(caller, await env.create(caller, text_post("x")), "published")
    await env.wait_status(other, await env.create(other, text_post("x")), "published")
    # the event would have been written with the status, in its transaction: none was
    assert await deliveries_of(env, caller, only_failures["id"]) == []
    assert receiver.got == []


async def test_a_refused_address_is_never_contacted(
    make_harness: MakeHarness, receiver: Receiver
) -> None:
    """An endpoint stored while private addresses were allowed, sent when they are not (the
    operator turned it off): the sender checks every address at each attempt."""
    env = await make_harness(**{**FAST, "webhook_allow_private": False}, webhook_max_attempts=2)
    caller = await env.caller([("x", "x_main")])
    endpoint_id = uuid.uuid4()
    vault = TokenVault(env.ctx.settings.resolved_secret_key)
    values = {
        "id": endpoint_id,
        "user_id": caller.user_id,
        "url": receiver.url,
        "events": ["post.published"],
        "secret": vault.seal("whsec_test"),
        "created_at": utcnow(),
    }
    await env.ctx.db.run_write(lambda c: c.execute(insert(ENDPOINTS), values))
    await env.ctx.db.run_write(lambda c: send_test(c, caller.user_id, endpoint_id))
    env.start_worker()
    [delivery] = await wait_settled(env, caller, str(endpoint_id))
    assert (delivery["status"], delivery["attempts"]) == ("failed", 2)
    assert delivery["lastStatusCode"] is None
    assert delivery["lastError"] == "blocked_address: 127.0.0.1 is loopback"
    assert receiver.got == []


async def test_deleting_an_endpoint_stops_its_deliveries(
    make_harness: MakeHarness, receiver: Receiver
) -> None:
    env = await make_harness(**{**FAST, "webhook_retry_base_seconds": 0.3})
    caller = await env.caller([("x", "x_main")])
    webhook = await add_webhook(env, caller, receiver.url)
    receiver.failures = 100
    env.start_worker()
    await env.api.post(f"/v1/webhooks/{webhook['id']}/test", headers=caller.headers)
    await receiver.wait_for(1)
    response = await env.api.delete(f"/v1/webhooks/{webhook['id']}", headers=caller.headers)
    assert response.status_code == 204
    count = len(receiver.got)
    await asyncio.sleep(1.0)  # several retry delays: none is sent
    assert len(receiver.got) == count
    query = select(func.count()).where(WebhookDelivery.endpoint_id == uuid.UUID(webhook["id"]))
    assert await env.ctx.db.run_read(lambda c: c.execute(query).scalar_one()) == 0


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


async def _ping(env: Harness, caller: Caller, webhook: dict[str, Any]) -> None:
    response = await env.api.post(f"/v1/webhooks/{webhook['id']}/test", headers=caller.headers)
    assert response.status_code == 202, response.text


async def _until(check: Any) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)


async def test_a_hanging_receiver_delays_no_other_endpoint(
    make_harness: MakeHarness, receiver: Receiver, hanging: Hanging
) -> None:
    env = await make_harness(**FAST, webhook_timeout_seconds=30)
    caller = await env.caller([("x", "x_main")])
    slow = await add_webhook(env, caller, hanging.url)
    quick = await add_webhook(env, caller, receiver.url)
    env.start_worker()
    await _ping(env, caller, slow)
    await _until(lambda: hanging.got == 1)  # its attempt hangs until the timeout
    started = time.monotonic()
    await _ping(env, caller, quick)
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
    await _ping(env, caller, webhook)
    await _until(lambda: hanging.got == 1)
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
    await _ping(env, caller, webhook)
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
