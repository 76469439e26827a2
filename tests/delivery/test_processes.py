"""Exactly-once delivery with real processes: `soku worker` subprocesses, killed and stopped.

Every test gets the world of `processes.py` (the `world` fixture): a fresh database, the generic
fake in its own process, posts created through the API in this process (no worker here), and
workers started as `soku worker` with a short lease and poll, so a dead worker's deliveries come
back within seconds. "Exactly once" is checked on the fake.

Sections: 1 many workers on PostgreSQL; 2 a SIGKILL at every step boundary; 3 a SIGKILL while
the platform holds an accepted publish; 4 SIGTERM (drain, release); 5 regressions for the lease
bugs these tests found (one runs its worker in-process, to stall its heartbeat on purpose).
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from soku.context import AppContext
from soku.delivery.worker import Worker
from tests.conftest import make_settings
from tests.delivery.processes import (
    EXIT_TIMEOUT,
    FLYING,
    START_TIMEOUT,
    Fake,
    Row,
    World,
    assert_exactly_once,
    assert_published_once_each,
    eventually,
)
from tests.media_files import MediaServer

# --- 1. many workers ----------------------------------------------------------------------------

MANY_PLATFORMS = ("facebook", "linkedin", "x")  # x's cap (100 per 15 min) is far away here


@pytest.mark.parametrize("world", ["postgresql"], indirect=True)
async def test_three_workers_publish_hundreds_of_deliveries_exactly_once(world: World) -> None:
    users = [await world.caller(MANY_PLATFORMS) for _ in range(4)]
    # Fewer deliveries per pooled connection than the default's (512 on 10 + 20), within the
    # server's connection limit. On a small, busy machine some heartbeats come later than the
    # 2 s lease: other workers take those deliveries over (reconciling), which is part of the
    # test; more attempts are allowed so that such churn is not mistaken for dying workers.
    extra = {"SOKU_DB_POOL_SIZE": "2", "SOKU_RETRY_MAX_ATTEMPTS": "20"}
    workers = [await world.worker(concurrency=64, **extra) for _ in range(3)]
    for worker in workers:
        await worker.started()
    # `soku worker` runs on uvloop, as `soku serve` does through uvicorn (soku.runtime.run)
    assert {w.events("worker_started")[0]["loop"] for w in workers} == {"uvloop"}
    run = secrets.token_hex(3)
    for index in range(140):
        content = {"text": f"many {run} #{index}", "platform": list(MANY_PLATFORMS)}
        await world.post(users[index % len(users)], content)

    rows = await world.all_final(140 * len(MANY_PLATFORMS))
    await assert_exactly_once(world, rows)
    attempts = await assert_published_once_each(world, rows)
    names = Counter(a.worker for a in attempts)
    assert len(names) > 1, f"one worker did all the work: {names}"
    assert all(worker.process.returncode is None for worker in workers)


# --- 2. a crash at every step boundary ---------------------------------------------------------

CRASH_PLATFORMS = ("facebook", "linkedin")
CRASH_POSTS = 5
CRASH_CONTENT: dict[str, Callable[[MediaServer, int], dict[str, Any]]] = {
    "step:upload_0": lambda media, i: {"mediaType": "image", "imageUrls": media.images(1)},
    "step:wait_media": lambda media, i: {"mediaType": "video", "videoUrl": media.url("clip.mp4")},
    "publishing": lambda media, i: {"mediaType": "text"},
    "published_call": lambda media, i: {"mediaType": "text"},
}


async def _assert_crash_point_was_reached(point: str, rows: list[Row], world: World) -> None:
    if point.startswith("step:"):
        step = point.removeprefix("step:")
        assert any(step in r.checkpoint.get("steps", {}) for r in rows), rows
    elif point == "publishing":
        assert any(r.status == "publishing" for r in rows), rows
    else:  # the fake took a post its delivery has not recorded: reconciliation must find it
        recorded = {r.platform_post_id for r in rows if r.status == "published"}
        accepted = [p for p in await world.fake.posts() if p["id"] not in recorded]
        assert accepted, "no publish call was accepted before the crash"


async def settled_calls(fake: Fake) -> dict[str, int]:
    """The fake's call counts once a request sent just before a kill has been counted too."""
    last = await fake.calls()
    for _ in range(50):
        await asyncio.sleep(0.3)
        now = await fake.calls()
        if now == last:
            return now
        last = now
    pytest.fail(f"the fake is still being called: {last}")


@pytest.mark.parametrize("point", list(CRASH_CONTENT))
async def test_a_worker_killed_at_a_step_boundary_loses_and_doubles_nothing(
    world: World, point: str
) -> None:
    await world.fake.configure(video_polls=2)
    caller = await world.caller(CRASH_PLATFORMS)
    for index in range(CRASH_POSTS):
        content = {
            "text": f"crash {point} #{index}",
            "platform": list(CRASH_PLATFORMS),
            **CRASH_CONTENT[point](world.media, index),
        }
        await world.post(caller, content)
    total = CRASH_POSTS * len(CRASH_PLATFORMS)

    crashing = await world.worker(crash_at=point)
    code = await crashing.exit_code()
    assert code == -signal.SIGKILL, f"exit {code}, expected SIGKILL\n{crashing.tail()}"
    calls_at_crash = await settled_calls(world.fake)
    at_crash = await world.rows()
    await _assert_crash_point_was_reached(point, at_crash, world)

    recovering = await world.worker()
    rows = await world.all_final(total)
    recovering.process.send_signal(signal.SIGTERM)
    assert await recovering.exit_code() == 0, recovering.tail()

    posts = await assert_exactly_once(world, rows)
    await assert_published_once_each(world, rows)
    media_steps = 1 if point.startswith("step:") else 0
    # A checkpointed upload is never repeated: the recovery kept its media and used it.
    final = {r.id: r for r in rows}
    post_media = {p["id"]: p["media_ids"] for p in posts}
    for before in at_crash:
        after = final[before.id]
        assert after.media_ids().items() >= before.media_ids().items(), (before, after)
        assert post_media[after.platform_post_id] == list(after.media_ids().values())
        assert len(after.media_ids()) == media_steps
    missing = sum(media_steps - len(r.media_ids()) for r in at_crash)
    calls = await world.fake.calls()
    assert calls["media"] - calls_at_crash["media"] == missing, (calls_at_crash, calls)


# --- 3. killed while the platform holds an accepted publish ------------------------------------


@pytest.mark.parametrize("stop", ["SIGKILL", "SIGTERM past the grace period"])
async def test_a_worker_killed_while_the_platform_answers_is_reconciled_once(
    world: World, stop: str
) -> None:
    caller = await world.caller(("facebook",))
    await world.fake.fault(on="publish", accept_then_delay=5)
    await world.post(caller, {"text": "held answer", "platform": ["facebook"]})

    first = await world.worker(SOKU_SHUTDOWN_GRACE_SECONDS="0.5")
    accepted = await eventually(world.fake.posts, START_TIMEOUT, "the fake to store the post")
    if stop == "SIGKILL":
        first.process.kill()
        assert await first.exit_code() == -signal.SIGKILL
    else:  # the publish in flight is not given back: it waits for its lease and reconciliation
        first.process.send_signal(signal.SIGTERM)
        assert await first.exit_code() == 0, first.tail()
        [stopped] = first.events("worker_stopped")
        assert (stopped["released"], stopped["kept"]) == (0, 1), stopped
    (row,) = await world.rows()
    assert row.status == "publishing" and row.platform_post_id is None, row

    second = await world.worker()
    rows = await world.all_final(1)
    second.process.send_signal(signal.SIGTERM)
    assert await second.exit_code() == 0, second.tail()
    posts = await assert_exactly_once(world, rows)
    assert posts == accepted
    attempts = await assert_published_once_each(world, rows)
    assert [a.outcome for a in attempts] == ["reconciled"]
    assert (await world.fake.calls())["publish"] == 1


# --- 4. graceful shutdown ------------------------------------------------------------------------


async def test_sigterm_drains_the_deliveries_in_flight_and_loses_none(world: World) -> None:
    """A slow platform: SIGTERM lets the calls in flight finish within the grace period."""
    grace = 8.0
    caller = await world.caller(CRASH_PLATFORMS)
    await world.fake.configure(latency_ms=1000)
    for index in range(8):
        await world.post(caller, {"text": f"drain #{index}", "platform": list(CRASH_PLATFORMS)})
    total = 8 * len(CRASH_PLATFORMS)

    first = await world.worker(concurrency=4, SOKU_SHUTDOWN_GRACE_SECONDS=str(grace))
    name = await first.started()

    async def in_flight() -> list[Row] | None:
        held = [r for r in await world.rows() if r.lease_owner == name and r.status in FLYING]
        return held or None

    held = await eventually(in_flight, START_TIMEOUT, "deliveries in flight")
    stopped_at = time.monotonic()
    first.process.send_signal(signal.SIGTERM)
    assert await first.exit_code() == 0, first.tail()
    assert time.monotonic() - stopped_at < grace, first.tail()
    after_stop = {r.id: r for r in await world.rows()}
    assert not [r for r in after_stop.values() if r.status in FLYING], after_stop
    for row in held:  # drained, not abandoned: the worker finished what it held
        assert after_stop[row.id].status == "published", after_stop[row.id]
    assert [e["released"] for e in first.events("worker_stopped")] == [0]

    second = await world.worker()
    rows = await world.all_final(total)
    second.process.send_signal(signal.SIGTERM)
    assert await second.exit_code() == 0, second.tail()
    await assert_exactly_once(world, rows)
    attempts = await assert_published_once_each(world, rows)
    assert len({a.worker for a in attempts}) == 2


async def test_sigterm_past_the_grace_period_releases_what_is_held(world: World) -> None:
    """Slow video processing outlasts a short grace period: the held deliveries go back to
    the queue at once (no waiting for the lease), and the next worker resumes them from their
    checkpoint without uploading again."""
    caller = await world.caller(CRASH_PLATFORMS)
    # Processing must outlast the uploads of all six, SIGTERM and the grace period: with 20
    # polls (2 s at 100 ms each) the first upload's video was sometimes ready and published
    # before the last upload was checkpointed, on a busy machine.
    await world.fake.configure(latency_ms=100, video_polls=60)
    for index in range(3):
        content = {
            "text": f"release #{index}",
            "mediaType": "video",
            "videoUrl": world.media.url("clip.mp4"),
            "platform": list(CRASH_PLATFORMS),
        }
        await world.post(caller, content)
    total = 3 * len(CRASH_PLATFORMS)

    first = await world.worker(SOKU_SHUTDOWN_GRACE_SECONDS="0.5")
    name = await first.started()

    async def all_uploaded() -> list[Row] | None:
        rows = await world.rows()
        done = all(r.lease_owner == name and "upload_0" in r.media_ids() for r in rows)
        return rows if done else None

    held = await eventually(all_uploaded, START_TIMEOUT, "every upload to be checkpointed")
    stopped_at = time.monotonic()
    first.process.send_signal(signal.SIGTERM)
    assert await first.exit_code() == 0, first.tail()
    assert time.monotonic() - stopped_at < 5, first.tail()
    released = {r.id: r for r in await world.rows()}
    for row in held:
        now = released[row.id]
        assert (now.status, now.lease_owner) == ("queued", None), now
        assert now.attempts == row.attempts - 1, (row, now)
        assert now.media_ids() == row.media_ids()
    assert [e["released"] for e in first.events("worker_stopped")] == [total]

    second = await world.worker()
    rows = await world.all_final(total, within=60)
    second.process.send_signal(signal.SIGTERM)
    assert await second.exit_code() == 0, second.tail()
    await assert_exactly_once(world, rows)
    await assert_published_once_each(world, rows)
    assert (await world.fake.calls())["media"] == total


# --- 5. lease bugs the tests above found, reproduced deterministically -----------------------


async def test_a_worker_whose_heartbeat_is_late_does_not_run_a_delivery_twice(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process, to stall the heartbeat on purpose (under load it stalls by itself)."""
    caller = await world.caller(("facebook",))
    await world.fake.configure(latency_ms=1500)
    content = {
        "text": "late heartbeat",
        "mediaType": "image",
        "imageUrls": world.media.images(1),
        "platform": ["facebook"],
    }
    await world.post(caller, content)
    settings = make_settings(
        tmp_path / "data",
        world.ctx.settings.database_url,
        sandbox_base_url=world.fake.base_url,
        sandbox_fakes="generic",
        lease_seconds=1,
        poll_seconds=0.1,
        shutdown_grace_seconds=1,
    )
    ctx = AppContext.build(settings)
    worker = Worker(ctx)

    async def stalled_heartbeat() -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(worker, "_heartbeat", stalled_heartbeat)
    running = asyncio.create_task(worker.run())
    try:
        rows = await world.all_final(1, within=30)
        await asyncio.sleep(2)  # let any second run of the delivery finish its calls
    finally:
        worker.stop()
        await asyncio.wait_for(running, EXIT_TIMEOUT)
        await ctx.aclose()
    await assert_exactly_once(world, rows)


@pytest.mark.parametrize("world", ["postgresql"], indirect=True)
async def test_a_draining_worker_keeps_its_leases_while_a_new_one_runs(world: World) -> None:
    """A rolling restart: the new worker runs while the old one drains a slow upload."""
    caller = await world.caller(("facebook",))
    await world.fake.configure(latency_ms=4000)
    content = {
        "text": "rolling restart",
        "mediaType": "image",
        "imageUrls": world.media.images(1),
        "platform": ["facebook"],
    }
    await world.post(caller, content)
    old = await world.worker(SOKU_SHUTDOWN_GRACE_SECONDS="15")
    name = await old.started()

    async def uploading() -> list[Row] | None:
        rows = await world.rows()
        return rows if rows[0].lease_owner == name else None

    await eventually(uploading, START_TIMEOUT, "the old worker to take the delivery")
    await asyncio.sleep(0.5)  # the upload call is in flight (it takes 4 s)
    new = await world.worker()
    await new.started()
    old.process.send_signal(signal.SIGTERM)
    assert await old.exit_code(within=30) == 0, old.tail()
    rows = await world.all_final(1, within=60)
    await assert_exactly_once(world, rows)
    assert not old.events("lease_lost"), "the draining worker's lease ran out"
    attempts = await assert_published_once_each(world, rows)
    assert {a.worker for a in attempts} == {name}, "the old worker finished what it held"
    assert (await world.fake.calls())["media"] == 1, "the upload was done twice"
