"""The world of the tests that run Soku as real processes: a fresh database (its schema built by
the migrations), the generic fake in its own process (`python -m soku.sandbox --port 0`), the
API in the test's process (no worker there), `soku worker` / `soku serve` subprocesses with a
short lease and poll, and the checks of exactly-once delivery on the fake.

Every process is killed in a `finally`; every wait is bounded. "Exactly once" is checked on the
fake: one post per delivery, matched on the account's user, the platform and the post's text,
with the id the delivery recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
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
from soku.integrations.models import Account
from soku.posts.models import Post
from tests.asgi_server import free_port
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
        return await self._start(args, values)

    async def serve(self) -> tuple[WorkerProcess, str]:
        """`soku serve` (the API and a worker in one process, the default shape) on a free
        port, answering; with its base URL."""
        port = free_port()
        args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
        server = await self._start(args, self.env)
        await server.started()

        async def serving() -> bool:
            return bool(server.events("serving"))

        await eventually(serving, START_TIMEOUT, "soku serve to listen", server.tail)
        return server, f"http://127.0.0.1:{port}"

    async def _start(self, args: list[str], env: dict[str, str]) -> WorkerProcess:
        log = self.logs / f"{args[0]}-{len(self.workers)}.stderr"
        with _log_file(log) as err:
            process = await asyncio.create_subprocess_exec(
                str(SOKU),
                *args,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=err,
            )
        started = WorkerProcess(process, log)
        self.workers.append(started)  # reaped when the test ends
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


@contextlib.asynccontextmanager
async def open_world(
    backend: str, tmp_path: Path, media_server: MediaServer
) -> AsyncIterator[World]:
    """The `world` fixture's: `backend` is sqlite or postgresql (a fresh database)."""
    url = await create_database() if backend == "postgresql" else None
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
