"""When the worker wakes: a finished delivery wakes it only once there is room to claim for."""

from __future__ import annotations

import asyncio
import uuid

from soku.db import utcnow
from soku.delivery.claims import Claimed
from soku.delivery.wakeup import Wakeup
from soku.delivery.worker import Worker
from tests.delivery.conftest import MakeHarness
from tests.delivery.harness import Harness, text_post

PLATFORMS = ("x", "threads", "linkedin")


async def test_wait_says_whether_it_was_woken_and_forgets_the_wake() -> None:
    wakeup = Wakeup("sqlite+aiosqlite:///unused.db")
    assert await wakeup.wait(0.01) is False  # nobody woke it: the time ran out
    wakeup.wake()
    assert await wakeup.wait(5) is True  # woken before it waited: returns at once
    assert await wakeup.wait(0.01) is False  # that wake was used up

    later = asyncio.get_running_loop().call_later(0.02, wakeup.wake)
    assert await wakeup.wait(5) is True  # woken while waiting
    later.cancel()


def _claimed(platform: str) -> Claimed:
    now = utcnow()
    return Claimed(uuid.uuid4(), "processing", now, now, 1, platform)


async def test_a_finished_delivery_wakes_the_worker_only_when_it_can_claim(env: Harness) -> None:
    worker = Worker(env.ctx, concurrency=16)  # claims once 2 slots are free (an eighth)
    try:
        held = [_claimed("x") for _ in range(16)]
        never_done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        for claimed in held:
            worker.tasks[claimed.id] = never_done  # type: ignore[assignment]
            worker.running["x"] += 1
        assert await env.ctx.wakeup.wait(0) is False

        worker._done(held[0])  # one slot free: too few to claim for
        assert await env.ctx.wakeup.wait(0) is False
        worker._done(held[1])  # two free: claim
        assert await env.ctx.wakeup.wait(0) is True
        worker._done(held[2])  # still room: each further finish wakes it too
        assert await env.ctx.wakeup.wait(0) is True
        assert len(worker.tasks) == 13 and worker.running["x"] == 13
    finally:
        await worker.engine.clients.aclose()


async def test_the_worker_refills_its_slots_without_waiting_for_the_poll(
    make_harness: MakeHarness,
) -> None:
    # The fallback poll is a minute: only wake-ups can get these deliveries out in time.
    env = await make_harness(poll_seconds=60)
    caller = await env.caller([(p, f"{p}_main") for p in PLATFORMS])
    await env.fake.post("/_config", json={"latency_ms": 50})
    env.start_worker(concurrency=16)
    post_ids = [await env.create(caller, text_post(*PLATFORMS)) for _ in range(14)]
    for post_id in post_ids:  # 42 deliveries through 16 slots: refilled again and again
        await env.wait_status(caller, post_id, "published")
    assert (await env.calls())["publish"] == len(post_ids) * len(PLATFORMS)
