"""Per-account publishing caps delay a delivery (run_at moves to when the cap frees)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
from sqlalchemy import update

import soku.platforms
from soku.db import utcnow
from soku.delivery.engine import Engine
from soku.delivery.models import Delivery, DeliveryStatus
from soku.platforms.base import DeliveryLimits, PublishCap
from tests.delivery.claimed import claim_runs, count_transactions
from tests.delivery.harness import Harness, parse_time, text_post

WINDOW = 60


@pytest.fixture
def x_cap_of_two(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = DeliveryLimits(publish_caps=(PublishCap(2, WINDOW),))
    monkeypatch.setitem(soku.platforms.LIMITS, "x", limits)


@pytest.mark.usefixtures("x_cap_of_two")
async def test_over_the_cap_is_deferred_not_failed(env: Harness) -> None:
    caller = await env.caller([("x", "x_main"), ("x", "x_other")])
    env.start_worker()
    published = []
    for _ in range(2):
        post_id = await env.create(caller, text_post({"platform": "x", "accountId": "x_main"}))
        published.append(await env.wait_status(caller, post_id, "published"))
    oldest = parse_time(published[0]["deliveries"][0]["publishedAt"])

    third = await env.create(caller, text_post({"platform": "x", "accountId": "x_main"}))
    view = await env.wait_for(
        caller,
        third,
        lambda v: v["deliveries"][0]["error"] is not None,
        what="a deferral",
    )
    [delivery] = view["deliveries"]
    assert view["status"] == "queued"
    assert delivery["status"] == "queued"
    assert delivery["attempts"] == 0  # a deferral is not an attempt
    assert delivery["error"]["code"] == "publish_cap"
    assert delivery["error"]["retryable"] is True
    run_at = parse_time(delivery["runAt"])
    expected = oldest + dt.timedelta(seconds=WINDOW)
    assert abs((run_at - expected).total_seconds()) < 0.01
    [attempt] = await env.attempts(delivery["id"])
    assert attempt.outcome == "deferred"
    assert attempt.error is not None and attempt.error["code"] == "publish_cap"

    # The cap is per account: another X account of the same user is not held back.
    other = await env.create(caller, text_post({"platform": "x", "accountId": "x_other"}))
    await env.wait_status(caller, other, "published")
    assert len(await env.fake_posts(await env.platform_user(caller, "x", "x_main"))) == 2
    assert (await env.get(caller, third))["deliveries"][0]["status"] == "queued"


@pytest.mark.usefixtures("x_cap_of_two")
async def test_cap_holds_when_posts_are_claimed_together(env: Harness) -> None:
    caller = await env.caller([("x", "x_main")])
    await env.fake.post("/_config", json={"latency_ms": 100})
    post_ids = [await env.create(caller, text_post("x")) for _ in range(4)]
    env.start_worker()  # claims all four in one batch
    views = await asyncio.gather(
        *(
            env.wait_for(
                caller,
                post_id,
                lambda v: v["status"] == "published" or v["deliveries"][0]["error"] is not None,
                what="published or deferred",
            )
            for post_id in post_ids
        )
    )
    statuses = sorted(v["status"] for v in views)
    assert statuses == ["published", "published", "queued", "queued"]
    assert len(await env.fake_posts()) == 2


async def test_deferred_delivery_goes_out_when_the_cap_frees(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = 2
    monkeypatch.setitem(
        soku.platforms.LIMITS, "x", DeliveryLimits(publish_caps=(PublishCap(1, window),))
    )
    caller = await env.caller([("x", "x_main")])
    env.start_worker()
    first = await env.create(caller, text_post("x"))
    published_at = parse_time(
        (await env.wait_status(caller, first, "published"))["deliveries"][0]["publishedAt"]
    )
    second = await env.create(caller, text_post("x"))
    view = await env.wait_status(caller, second, "published", within=10)
    [delivery] = view["deliveries"]
    frees_at = published_at + dt.timedelta(seconds=window)
    assert parse_time(delivery["publishedAt"]) >= frees_at
    assert delivery["attempts"] == 1  # the deferral did not count
    attempts = await env.attempts(delivery["id"])
    assert [a.outcome for a in attempts] == ["deferred", "published"]
    assert attempts[1].scheduled_for == frees_at
    assert len(await env.fake_posts()) == 2


async def published_ago(env: Harness, post_id: str, seconds: float) -> dt.datetime:
    """The post's deliveries published `seconds` ago (as if a worker had done it)."""
    at = utcnow() - dt.timedelta(seconds=seconds)
    async with env.ctx.db.transaction() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.post_id == uuid.UUID(post_id))
            .values(status=DeliveryStatus.published.value, published_at=at)
        )
    return at


@pytest.mark.usefixtures("x_cap_of_two")
async def test_a_groups_marks_count_the_window_and_each_other_per_account(
    env: Harness, engine: Engine
) -> None:
    caller = await env.caller([("x", "x_main"), ("x", "x_other")])
    main, other = (
        {"platform": "x", "accountId": "x_main"},
        {"platform": "x", "accountId": "x_other"},
    )
    recent = await published_ago(env, await env.create(caller, text_post(main)), 10)
    await published_ago(env, await env.create(caller, text_post(main)), WINDOW + 60)  # expired
    for target in (main, main, main, other, other):
        await env.create(caller, text_post(target))
    runs = await claim_runs(env, engine, "x")
    opened = count_transactions(env)

    results = await asyncio.gather(*(run._reserve_publish() for run in runs))

    assert opened[0] == 1  # one group: one count per window, then the marks in order
    by_account: dict[str, list[object]] = {"x_main": [], "x_other": []}
    for run, result in zip(runs, results, strict=True):
        by_account[run.target.account_id].append(result)
    # x_main: one published inside the window, so one of its three marks fits under 2
    assert by_account["x_main"][0] is None
    for refused in by_account["x_main"][1:]:
        assert isinstance(refused, tuple)
        cap, frees_at = refused
        assert cap == PublishCap(2, WINDOW)
        assert abs((frees_at - (recent + dt.timedelta(seconds=WINDOW))).total_seconds()) < 0.01
    assert by_account["x_other"] == [None, None]  # caps are per account
    statuses = [(await env.delivery(str(run.claimed.id))).status for run in runs]
    assert sorted(statuses) == ["processing"] * 2 + ["publishing"] * 3


@pytest.mark.usefixtures("x_cap_of_two")
async def test_a_mark_does_not_count_its_own_delivery_already_publishing(
    env: Harness, engine: Engine
) -> None:
    """Taken over while `publishing` and found not published: marked again, it is not one
    of the posts that count against the cap."""
    caller = await env.caller([("x", "x_main")])
    await published_ago(env, await env.create(caller, text_post("x")), 10)
    await env.create(caller, text_post("x"))
    (run,) = await claim_runs(env, engine, "x")
    async with env.ctx.db.transaction() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.id == run.claimed.id)
            .values(status=DeliveryStatus.publishing.value)
        )

    assert await run._reserve_publish() is None  # 1 other inside the window: under 2
