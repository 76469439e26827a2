"""Webhooks end to end: a post's outcome reaches a real HTTP receiver, signed, retried when the
receiver fails, given up after the last attempt, never sent to a refused address; on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid

from sqlalchemy import func, insert, select

from soku.db import utcnow
from soku.integrations.vault import TokenVault
from soku.webhooks import signing
from soku.webhooks.events import ENDPOINTS
from soku.webhooks.models import WebhookDelivery
from soku.webhooks.service import send_test
from tests.delivery.conftest import MakeHarness
from tests.delivery.harness import sample, text_post
from tests.delivery.webhook_receivers import (
    FAST,
    Receiver,
    add_webhook,
    deliveries_of,
    wait_settled,
)


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
