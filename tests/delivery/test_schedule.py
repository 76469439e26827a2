"""Scheduled posts: due times kept, cancel and reschedule up to the claim, a worker's downtime."""

from __future__ import annotations

import asyncio
import datetime as dt

from tests.api.helpers import assert_error
from tests.delivery.harness import Harness, in_future, parse_time, sample, text_post


async def sleep_until(moment: dt.datetime) -> None:
    """A bounded wait for a negative check (nothing may happen before `moment`)."""
    await asyncio.sleep(max(0.0, (moment - dt.datetime.now(dt.UTC)).total_seconds()))


async def test_scheduled_post_goes_out_at_its_time_not_before(env: Harness) -> None:
    caller = await env.caller([("x", "x_main")])
    env.start_worker()
    when = in_future(2)
    post_id = await env.create(caller, text_post("x", scheduledTime=when))
    due = parse_time(when)
    view = await env.get(caller, post_id)
    assert view["status"] == "scheduled"
    assert view["deliveries"][0]["status"] == "scheduled"

    view = await env.wait_status(caller, post_id, "published", within=10)
    [delivery] = view["deliveries"]
    [on_fake] = await env.fake_posts()
    assert parse_time(on_fake["created_at"]) >= due  # not before its time
    assert parse_time(delivery["publishedAt"]) >= due
    [attempt] = await env.attempts(delivery["id"])
    assert attempt.scheduled_for == due
    lateness = (attempt.started_at - due).total_seconds()
    assert 0 <= lateness < 1.0  # the worker slept until the due time, not a full poll more


async def test_cancel_before_the_claim_never_reaches_the_platform(env: Harness) -> None:
    caller = await env.caller([("x", "x_main"), ("threads", "threads_main")])
    env.start_worker()
    when = in_future(2.5)
    post_id = await env.create(caller, text_post("x", "threads", scheduledTime=when))
    response = await env.api.delete(f"/v1/posts/{post_id}", headers=caller.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"

    await sleep_until(parse_time(when) + dt.timedelta(seconds=0.8))
    view = await env.get(caller, post_id)
    assert view["status"] == "cancelled"
    assert {d["status"] for d in view["deliveries"]} == {"cancelled"}
    assert all(d["attempts"] == 0 for d in view["deliveries"])
    for delivery in view["deliveries"]:
        assert await env.attempts(delivery["id"]) == []
    assert await env.fake_posts() == []
    assert (await env.calls())["publish"] == 0


async def test_cancel_and_reschedule_are_refused_once_claimed(env: Harness) -> None:
    caller = await env.caller([("x", "x_main")])
    await env.fake.post("/_config", json={"latency_ms": 1000})  # a slow platform
    env.start_worker()
    post_id = await env.create(caller, text_post("x"))
    await env.wait_for(
        caller,
        post_id,
        lambda v: v["deliveries"][0]["status"] == "publishing",
        what="publishing",
    )
    cancel = await env.api.delete(f"/v1/posts/{post_id}", headers=caller.headers)
    error = assert_error(cancel, 409, "conflict")
    assert error["details"]["deliveries"] == {"x:x_main": "publishing"}
    later = await env.api.patch(
        f"/v1/posts/{post_id}", json={"scheduledTime": in_future(60)}, headers=caller.headers
    )
    assert_error(later, 409, "conflict")
    view = await env.wait_status(caller, post_id, "published")
    assert view["deliveries"][0]["attempts"] == 1
    assert len(await env.fake_posts()) == 1


async def test_reschedule_later_holds_the_post_back(env: Harness) -> None:
    caller = await env.caller([("x", "x_main")])
    env.start_worker()
    first = in_future(2.5)
    post_id = await env.create(caller, text_post("x", scheduledTime=first))
    later = in_future(4.5)
    response = await env.api.patch(
        f"/v1/posts/{post_id}", json={"scheduledTime": later}, headers=caller.headers
    )
    assert response.status_code == 200, response.text
    assert parse_time(response.json()["deliveries"][0]["runAt"]) == parse_time(later)

    await sleep_until(parse_time(first) + dt.timedelta(seconds=0.5))
    assert (await env.get(caller, post_id))["status"] == "scheduled"
    assert await env.fake_posts() == []
    view = await env.wait_status(caller, post_id, "published", within=10)
    assert parse_time(view["deliveries"][0]["publishedAt"]) >= parse_time(later)
    [on_fake] = await env.fake_posts()
    assert parse_time(on_fake["created_at"]) >= parse_time(later)


async def test_reschedule_earlier_or_to_now(env: Harness) -> None:
    caller = await env.caller([("x", "x_main")])
    env.start_worker()
    sooner = await env.create(caller, text_post("x", scheduledTime=in_future(3600)))
    now = await env.create(caller, text_post("x", scheduledTime=in_future(3600)))
    earlier = in_future(2.5)
    for post_id, value in ((sooner, earlier), (now, None)):
        response = await env.api.patch(
            f"/v1/posts/{post_id}", json={"scheduledTime": value}, headers=caller.headers
        )
        assert response.status_code == 200, response.text
    assert (await env.get(caller, now))["scheduledTime"] is None

    published_now = await env.wait_status(caller, now, "published", within=5)
    view = await env.wait_status(caller, sooner, "published", within=10)
    assert parse_time(view["deliveries"][0]["publishedAt"]) >= parse_time(earlier)
    assert parse_time(published_now["deliveries"][0]["publishedAt"]) < parse_time(earlier)
    assert len(await env.fake_posts()) == 2


async def test_post_due_while_the_worker_is_down_goes_out_late_and_says_so(
    env: Harness,
) -> None:
    downtime = 1.0
    caller = await env.caller([("x", "x_main")])
    env.start_worker()
    when = in_future(2.5)  # room for a slow request on a busy machine
    post_id = await env.create(caller, text_post("x", scheduledTime=when))
    await env.stop_workers()
    due = parse_time(when)
    await sleep_until(due + dt.timedelta(seconds=downtime))

    view = await env.get(caller, post_id)
    assert view["status"] == "scheduled"  # due, and nobody to deliver it
    metrics = await env.metrics()
    assert sample(metrics, "soku_queue_due") == 1
    assert sample(metrics, "soku_queue_oldest_due_seconds") >= downtime * 0.9

    env.start_worker()
    view = await env.wait_status(caller, post_id, "published", within=10)
    [delivery] = view["deliveries"]
    [attempt] = await env.attempts(delivery["id"])
    assert attempt.scheduled_for == due
    assert (attempt.started_at - due).total_seconds() >= downtime
    metrics = await env.metrics()
    assert sample(metrics, "soku_delivery_lateness_seconds_count", platform="x") == 1
    assert sample(metrics, "soku_delivery_lateness_seconds_sum", platform="x") >= downtime
    assert sample(metrics, "soku_delivery_lateness_seconds_bucket", platform="x", le="0.5") == 0
    assert sample(await env.metrics(), "soku_queue_due") == 0
