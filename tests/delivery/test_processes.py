"""Exactly-once delivery with real processes: `soku worker` subprocesses, killed and stopped.

Every test gets a fresh database (its schema built by the migrations), the generic fake in its
own process (`python -m soku.sandbox --port 0`), posts created through the API in this process
(no worker here), and workers started as `soku worker` with a short lease and poll, so a dead
worker's deliveries come back within seconds. Every process is killed in a `finally`; every
wait is bounded. "Exactly once" is checked on the fake: one post per delivery, matched on the
account's user, the platform and the post's text, with the id the delivery recorded.

Sections: 1 many workers on PostgreSQL; 2 a SIGKILL at every step boundary; 3 a SIGKILL while
the platform holds an accepted publish; 4 SIGTERM (drain, release); 5 regressions for the lease
bugs these tests found (one runs its worker in-process, to stall its heartbeat on purpose).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import httpx
import pytest
from sqlalchemy import select

from soku import migrate
from soku.app import create_app
from soku.context import AppContext
from soku.delivery.models import IN_FLIGHT, TERMINAL, Delivery, DeliveryAttempt
from soku.delivery.worker import Worker
from soku.integrations.models import Account
from soku.posts.models import Post
from tests.conftest import Caller, create_database, drop_database, make_caller, make_settings
from tests.media_files import MediaServer

SOKU = Path(sys.executable).with_name("soku")
SECRET = "test-secret"  # make_settings' key: the workers must open the tokens it sealed
LEASE_SECONDS = 2
START_TIMEOUT = 30.0
EXIT_TIMEOUT = 20.0
FINAL_TIMEOUT = 90.0
HTTP_TIMEOUT = httpx.Timeout(10.0)
PUBLISHED_OUTCOMES = ("published", "reconciled")
FINAL = {s.value for s in TERMINAL}
FLYING = {s.value for s in IN_FLIGHT}
T = TypeVar("T")


# --- processes ------------------------------------------------------------------------------


def _log_file(path: Path) -> BinaryIO:
    """Where a subprocess writes its stderr (the child keeps its own copy of the handle)."""
    return path.open("wb")


async def _reap(process: asyncio.subprocess.Process) -> None:
    """Kill (if still running) and wait, bounded; used in every `finally`."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), EXIT_TIMEOUT)


@dataclass
class Fake:
    """The generic fake platform in its own process, and its control API."""

    process: asyncio.subprocess.Process
    base_url: str  # …/sandbox/generic
    http: httpx.AsyncClient

    async def posts(self) -> list[dict[str, Any]]:
        answer = await self.http.get("/_inspect/posts")
        answer.raise_for_status()
        return list(answer.json()["posts"])

    async def calls(self) -> dict[str, int]:
        answer = await self.http.get("/_inspect/calls")
        answer.raise_for_status()
        return dict(answer.json())

    async def configure(self, **values: int) -> None:
        (await self.http.post("/_config", json=values)).raise_for_status()

    async def fault(self, **spec: Any) -> None:
        (await self.http.post("/_faults", json=spec)).raise_for_status()


@contextlib.asynccontextmanager
async def running_fake(logs: Path) -> AsyncIterator[Fake]:
    with _log_file(logs / "fake.stderr") as err:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "soku.sandbox", "--host", "127.0.0.1", "--port", "0"),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
        )
    try:
        assert process.stdout is not None
        try:
            line = (await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)).decode()
        except TimeoutError:
            pytest.fail(f"the fake did not say it was ready within {START_TIMEOUT} s")
        assert line.startswith("sandbox ready on http://"), line
        base_url = line.rsplit(" ", 1)[1].strip() + "/sandbox/generic"
        async with httpx.AsyncClient(base_url=base_url, timeout=HTTP_TIMEOUT) as http:
            yield Fake(process, base_url, http)
    finally:
        await _reap(process)


@dataclass
class WorkerProcess:
    process: asyncio.subprocess.Process
    log: Path

    def records(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                record = json.loads(line)
                if isinstance(record, dict):
                    found.append(record)
        return found

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("event") == name]

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    async def started(self) -> str:
        """Waits for the worker's `worker_started` line; returns the worker's name."""

        async def check() -> str | None:
            if self.process.returncode is not None:
                pytest.fail(f"soku worker exited with {self.process.returncode}:\n{self.tail()}")
            started = self.events("worker_started")
            return str(started[0]["worker"]) if started else None

        return await eventually(check, START_TIMEOUT, "soku worker to start", self.tail)

    async def exit_code(self, within: float = EXIT_TIMEOUT) -> int:
        try:
            return await asyncio.wait_for(self.process.wait(), within)
        except TimeoutError:
            pytest.fail(f"soku worker still running after {within} s:\n{self.tail()}")


# --- the world of one test ------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One delivery as the database has it, with what identifies its post on the fake."""

    id: uuid.UUID
    status: str
    platform: str
    user: str  # the account's user id on the fake
    text: str
    platform_post_id: str | None
    lease_owner: str | None
    attempts: int
    checkpoint: dict[str, Any]
    error: dict[str, Any] | None

    @property
    def fake_key(self) -> tuple[str, str, str]:
        return (self.user, self.platform, self.text)

    def media_ids(self) -> dict[str, str]:
        """The checkpointed uploads: step name -> media id."""
        steps = self.checkpoint.get("steps", {})
        return {k: str(v["media_id"]) for k, v in steps.items() if k.startswith("upload_")}


@dataclass
class World:
    ctx: AppContext
    api: httpx.AsyncClient  # the API in this process; it runs no worker
    fake: Fake
    media: MediaServer  # where the posts' images and videos are fetched from
    logs: Path
    env: dict[str, str]
    workers: list[WorkerProcess] = field(default_factory=list)

    async def worker(
        self, *, crash_at: str | None = None, concurrency: int | None = None, **env: str
    ) -> WorkerProcess:
        values = {**self.env, **env}
        if crash_at:
            values["SOKU_CRASH_AT"] = crash_at
        args = ["worker"] + (["--concurrency", str(concurrency)] if concurrency else [])
        log = self.logs / f"worker-{len(self.workers)}.stderr"
        with _log_file(log) as err:
            process = await asyncio.create_subprocess_exec(
                str(SOKU),
                *args,
                env=values,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=err,
            )
        started = WorkerProcess(process, log)
        self.workers.append(started)
        return started

    async def caller(self, platforms: tuple[str, ...]) -> Caller:
        return await make_caller(self.ctx, accounts=[(p, f"{p}_main") for p in platforms])

    async def post(self, caller: Caller, content: dict[str, Any]) -> str:
        created = await self.api.post(
            "/v1/posts", json={"post": {"content": content}}, headers=caller.headers
        )
        assert created.status_code == 201, created.text
        return str(created.json()["postSubmissionId"])

    async def rows(self) -> list[Row]:
        stmt = (
            select(Delivery, Account.platform_user_id, Post.content)
            .join(Account, Account.id == Delivery.account_ref)
            .join(Post, Post.id == Delivery.post_id)
        )
        async with self.ctx.db.read() as session:
            found = (await session.execute(stmt)).all()
        return [
            Row(
                id=d.id,
                status=d.status,
                platform=d.platform,
                user=str(user),
                text=str(content.get("text") or ""),
                platform_post_id=d.platform_post_id,
                lease_owner=d.lease_owner,
                attempts=d.attempts,
                checkpoint=dict(d.checkpoint or {}),
                error=d.error,
            )
            for d, user, content in found
        ]

    async def attempts(self) -> list[DeliveryAttempt]:
        async with self.ctx.db.read() as session:
            return list((await session.scalars(select(DeliveryAttempt))).all())

    async def all_final(self, expected: int, within: float = FINAL_TIMEOUT) -> list[Row]:
        async def check() -> list[Row] | None:
            rows = await self.rows()
            assert len(rows) == expected
            return rows if all(r.status in FINAL for r in rows) else None

        def explain() -> str:
            logs = "\n".join(f"--- {w.log.name}\n{w.tail()}" for w in self.workers[-2:])
            return f"statuses not final\n{logs}"

        return await eventually(check, within, "every delivery to be final", explain)


async def eventually(
    check: Callable[[], Awaitable[T | None]],
    within: float,
    what: str,
    explain: Callable[[], str] = lambda: "",
    interval: float = 0.1,
) -> T:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(interval)
    pytest.fail(f"timed out after {within} s waiting for {what}\n{explain()}")


@pytest.fixture(params=["sqlite", "postgresql"])
async def world(
    request: pytest.FixtureRequest, tmp_path: Path, media_server: MediaServer
) -> AsyncIterator[World]:
    url = await create_database() if request.param == "postgresql" else None
    logs = tmp_path / "logs"
    logs.mkdir()
    ctx = AppContext.build(make_settings(tmp_path / "data", url, db_pool_size=2))
    try:
        await migrate.upgrade(ctx.db.engine)
        async with (
            running_fake(logs) as fake,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(ctx=ctx)),
                base_url="http://soku.test",
                timeout=HTTP_TIMEOUT,
            ) as api,
        ):
            env = {k: v for k, v in os.environ.items() if not k.startswith("SOKU_")}
            env.update(
                SOKU_DATA_DIR=str(tmp_path / "data"),
                SOKU_DATABASE_URL=ctx.settings.database_url,
                SOKU_SECRET_KEY=SECRET,
                SOKU_SANDBOX_BASE_URL=fake.base_url,
                SOKU_SANDBOX_FAKES="generic",
                SOKU_LEASE_SECONDS=str(LEASE_SECONDS),
                # a taken-over publish is reconciled once its call deadline (this + 1 s) passed
                SOKU_HTTP_TIMEOUT_SECONDS="6",
                SOKU_POLL_SECONDS="0.2",
                SOKU_RETRY_BASE_SECONDS="0.2",
                SOKU_RETRY_MAX_SECONDS="1",
                SOKU_DB_POOL_SIZE="4",
                SOKU_LOG_FORMAT="json",
                SOKU_LOG_LEVEL="info",
            )
            world = World(ctx, api, fake, media_server, logs, env)
            try:
                yield world
            finally:
                for worker in world.workers:
                    await _reap(worker.process)
    finally:
        await ctx.aclose()
        if url:
            await drop_database(url)


# --- checks -----------------------------------------------------------------------------------


async def assert_exactly_once(world: World, rows: list[Row]) -> list[dict[str, Any]]:
    """Every delivery published, and the fake holds exactly one post for each, no other."""
    posts = await world.fake.posts()
    per_key = Counter((p["user_id"], p["platform"], p["text"]) for p in posts)
    problems = [f"posted {n} times: {key}" for key, n in per_key.items() if n > 1]
    problems += [f"{r.status}: {r.fake_key} {r.error}" for r in rows if r.status != "published"]
    if len(posts) != len(rows):
        problems.append(f"{len(posts)} posts on the fake for {len(rows)} deliveries")
    ids = [r.platform_post_id for r in rows]
    if len(set(ids)) != len(ids):
        problems.append("two deliveries recorded the same platform post")
    by_id = {p["id"]: p for p in posts}
    for row in rows:
        found = by_id.get(row.platform_post_id)
        if found is None or (found["user_id"], found["platform"], found["text"]) != row.fake_key:
            problems.append(f"{row.fake_key}: {row.platform_post_id} is not its post on the fake")
    assert not problems, "\n".join(problems)
    return posts


async def assert_published_once_each(world: World, rows: list[Row]) -> list[DeliveryAttempt]:
    attempts = await world.attempts()
    published = Counter(a.delivery_id for a in attempts if a.outcome in PUBLISHED_OUTCOMES)
    assert published == Counter(r.id for r in rows), "each delivery must be published once"
    return attempts


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
