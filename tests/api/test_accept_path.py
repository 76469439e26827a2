"""The accept path's shortcuts: the API key cache and its bound, the SQLite writes on the event
loop's thread (and the writer thread behind them), and the reader thread of the dry run."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Connection, func, select, text, update
from sqlalchemy.exc import OperationalError

from soku.auth.cache import TTL_SECONDS, KeyCache, KeyFacts
from soku.auth.keys import hash_key
from soku.auth.models import ApiKey, User
from soku.context import AppContext
from soku.db import Database, utcnow
from soku.delivery.models import Delivery
from soku.delivery.wakeup import CHANNEL
from soku.posts.models import IdempotencyKey, Post
from tests.api.helpers import assert_error, text_post
from tests.conftest import Caller, make_caller

pytestmark = pytest.mark.asyncio


class FakeClock:
    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(backend: AppContext, monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(backend.key_cache, "clock", fake)
    return fake


async def _change_elsewhere(ctx: AppContext, statement: object) -> None:
    """A Core UPDATE: what the CLI or another server process does, unseen by this process."""
    async with ctx.db.transaction() as session:
        await session.execute(statement)  # type: ignore[call-overload]


async def test_a_key_revoked_elsewhere_is_refused_once_the_bound_passes(
    backend: AppContext, client: httpx.AsyncClient, caller: Caller, clock: FakeClock
) -> None:
    assert (await client.get("/v1/posts", headers=caller.headers)).status_code == 200
    revoke = update(ApiKey).where(ApiKey.user_id == caller.user_id).values(revoked_at=utcnow())
    await _change_elsewhere(backend, revoke)
    clock.now += TTL_SECONDS - 0.5  # still within the documented bound: the cached answer
    assert (await client.get("/v1/posts", headers=caller.headers)).status_code == 200
    clock.now += 1.0
    response = await client.get("/v1/posts", headers=caller.headers)
    assert assert_error(response, 401, "unauthorized")["message"] == "API key revoked"


async def test_a_subscription_cancelled_elsewhere_is_refused_once_the_bound_passes(
    backend: AppContext, client: httpx.AsyncClient, caller: Caller, clock: FakeClock
) -> None:
    body = text_post("x", text=f"before {uuid.uuid4()}")
    response = await client.post("/v1/posts", json=body, headers=caller.headers)
    assert response.status_code == 201, response.text
    cancel = update(User).where(User.id == caller.user_id).values(subscription_status="canceled")
    await _change_elsewhere(backend, cancel)
    clock.now += TTL_SECONDS
    body = text_post("x", text=f"after {uuid.uuid4()}")
    response = await client.post("/v1/posts", json=body, headers=caller.headers)
    assert_error(response, 403, "forbidden")


async def test_an_unknown_key_is_never_cached(
    backend: AppContext, client: httpx.AsyncClient
) -> None:
    # Made known after a first refusal, the key works at once: no negative entry was kept.
    other = await make_caller(backend)
    bogus = "sk_live_" + uuid.uuid4().hex
    response = await client.get("/v1/posts", headers={"soku-api-key": bogus})
    assert_error(response, 401, "unauthorized")
    swap = update(ApiKey).where(ApiKey.user_id == other.user_id).values(key_hash=hash_key(bogus))
    await _change_elsewhere(backend, swap)
    assert (await client.get("/v1/posts", headers={"soku-api-key": bogus})).status_code == 200


async def test_the_cache_stays_bounded() -> None:
    clock = FakeClock()
    cache = KeyCache(ttl_seconds=5, max_entries=3, clock=clock)
    facts = [
        KeyFacts(uuid.uuid4(), f"h{n}", False, uuid.uuid4(), "a@b.c", "active", "standard")
        for n in range(4)
    ]
    for f in facts:
        cache.put(f.key_hash, f)
    assert len(cache) <= 3
    assert cache.get("h3") == facts[3]
    clock.now += 5
    assert cache.get("h3") is None


async def test_the_sqlite_backend_writes_through_its_inline_connection(backend: AppContext) -> None:
    """A SQLite file: writes inline on the loop's thread, reads on the reader thread."""
    assert backend.db.is_sqlite_file == backend.db.is_sqlite


def _writer_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "soku-sqlite-writer"}


def _create_table(connection: Connection) -> None:
    connection.execute(text("CREATE TABLE t (x INTEGER)"))


def _insert_then_fail(connection: Connection) -> None:
    connection.execute(text("INSERT INTO t VALUES (1)"))
    raise ZeroDivisionError


def _count(connection: Connection) -> int:
    return int(connection.execute(text("SELECT count(*) FROM t")).scalar_one())


async def test_writes_run_on_the_loops_thread_and_roll_back_on_error(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'writes.db'}", pool_size=1)
    before = _writer_threads()
    await db.run_write(_create_table)
    threads: list[int] = []

    def insert_then_fail(connection: Connection) -> None:
        threads.append(threading.get_ident())
        _insert_then_fail(connection)

    with pytest.raises(ZeroDivisionError):  # raised to the caller, the insert rolled back
        await db.run_write(insert_then_fail)
    assert threads == [threading.get_ident()]  # no trip to another thread
    assert await db.run_write(_count) == 0
    await asyncio.sleep(0)  # the first write's checkpoint starts the writer thread
    (thread,) = _writer_threads() - before  # there for the checkpoints (and a locked file)
    await db.dispose()
    assert not thread.is_alive()


def _insert(connection: Connection) -> None:
    connection.execute(text("INSERT INTO t VALUES (1)"))


async def test_the_reader_thread_reads_committed_rows_and_refuses_writes(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'reads.db'}", pool_size=1)
    await db.run_write(_create_table)
    await db.run_write(_insert)
    assert await db.run_read(_count) == 1
    (reader,) = [t for t in threading.enumerate() if t.name == "soku-sqlite-reader"]
    with pytest.raises(OperationalError, match="readonly"):  # raised to the caller
        await db.run_read(_insert)
    await db.run_write(_insert)
    assert await db.run_read(_count) == 2  # each read is a new snapshot
    await db.dispose()
    assert not reader.is_alive()


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another process's writer, as SQLite sees it: its own connection, in a write
    transaction with a row inserted and not committed."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (7)")
    return other


async def test_a_read_does_not_wait_for_a_writer(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'both.db'}", pool_size=1)
    await db.run_write(_create_table)
    other = _hold_write_lock(tmp_path / "both.db")
    # the write holds SQLite's lock, uncommitted: the read goes ahead and sees the row absent
    assert await asyncio.wait_for(db.run_read(_count), 5) == 0
    other.execute("COMMIT")
    assert await db.run_read(_count) == 1
    other.close()
    await db.dispose()


async def test_a_write_waits_for_another_process_off_the_event_loop(tmp_path: Path) -> None:
    """SQLite's lock held elsewhere: the write goes to the writer thread, which waits for the
    lock while the event loop goes on; once the lock is free, writes run inline again."""
    path = tmp_path / "locked.db"
    db = Database(f"sqlite+aiosqlite:///{path}", pool_size=1)
    await db.run_write(_create_table)
    threads: list[int] = []

    def insert(connection: Connection) -> int:
        threads.append(threading.get_ident())
        _insert(connection)
        return _count(connection)

    other = _hold_write_lock(path)
    write = asyncio.create_task(db.run_write(insert))
    ticks = 0
    for _ in range(5):  # the loop keeps running while the write waits
        await asyncio.sleep(0.02)
        ticks += 1
    assert ticks == 5 and not write.done() and threads == []
    other.execute("COMMIT")
    assert await asyncio.wait_for(write, 10) == 2  # after the other's row
    assert threads[0] != threading.get_ident()  # it ran on the writer thread
    assert await db.run_write(insert) == 3
    assert threads[1] == threading.get_ident()  # and the next one inline again
    other.close()
    await db.dispose()


async def test_the_inline_writes_are_checkpointed_by_the_writer_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inline connection never checkpoints (SQLite's automatic one is off on it): the
    writer thread does, so the WAL stays small. 300 commits of 8 KiB rows would leave about
    2.4 MB in it otherwise, under SQLite's own automatic threshold (1,000 pages)."""
    monkeypatch.setattr("soku.db.CHECKPOINT_SECONDS", 0.0)
    path = tmp_path / "wal.db"
    db = Database(f"sqlite+aiosqlite:///{path}", pool_size=1)
    await db.run_write(lambda c: c.execute(text("CREATE TABLE b (x BLOB)")))
    row = b"x" * 8192
    for _ in range(300):
        await db.run_write(lambda c: c.execute(text("INSERT INTO b VALUES (:x)"), {"x": row}))
        await asyncio.sleep(0)
    wal = path.with_name("wal.db-wal").stat().st_size
    assert wal < 1_000_000, wal
    assert await db.run_write(lambda c: c.execute(text("SELECT count(*) FROM b")).scalar()) == 300
    await db.dispose()


async def test_a_write_from_another_thread_goes_to_the_writer_thread(tmp_path: Path) -> None:
    """The inline connection belongs to the thread that made it; a write from another thread
    (its own event loop, after this one's writes ended) takes the writer thread instead of
    sharing it."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'threads.db'}", pool_size=1)
    await db.run_write(_create_table)
    await asyncio.sleep(0)  # the write's checkpoint starts, under the write lock,
    async with db.write_lock:  # and is done: nothing of this loop's holds the lock
        pass
    threads: list[int] = []

    def insert(connection: Connection) -> None:
        threads.append(threading.get_ident())
        _insert(connection)

    elsewhere: list[int] = []

    def other_thread() -> None:
        elsewhere.append(threading.get_ident())
        asyncio.run(db.run_write(insert))

    await asyncio.to_thread(other_thread)
    assert threads and threads[0] not in (threading.get_ident(), elsewhere[0])
    assert await db.run_write(_count) == 1
    await db.dispose()


async def test_reads_see_the_posts_table_on_either_database(
    backend: AppContext, client: httpx.AsyncClient, caller: Caller
) -> None:
    def posts_of_caller(connection: Connection) -> int:
        query = select(func.count()).select_from(Post).where(Post.user_id == caller.user_id)
        return int(connection.execute(query).scalar_one())

    assert await backend.db.run_read(posts_of_caller) == 0
    body = text_post("x", text=f"read {uuid.uuid4()}")
    assert (await client.post("/v1/posts", json=body, headers=caller.headers)).status_code == 201
    assert await backend.db.run_read(posts_of_caller) == 1


async def test_a_post_and_its_rows_are_committed_before_the_answer(
    backend: AppContext, client: httpx.AsyncClient, caller: Caller
) -> None:
    body = text_post("threads", "x", "linkedin", text=f"committed {uuid.uuid4()}")
    response = await client.post("/v1/posts", json=body, headers=caller.headers)
    assert response.status_code == 201, response.text
    post_id = uuid.UUID(response.json()["postSubmissionId"])
    async with backend.db.read() as session:  # another connection than the writer's
        post = await session.get(Post, post_id)
        count = select(func.count()).select_from(Delivery).where(Delivery.post_id == post_id)
        deliveries = (await session.execute(count)).scalar_one()
        keys = select(func.count()).select_from(IdempotencyKey)
        mine = keys.where(IdempotencyKey.user_id == caller.user_id)
        stored = (await session.execute(mine)).scalar_one()
    assert post is not None and post.content["text"] == body["post"]["content"]["text"]
    assert deliveries == 3
    assert stored == 1


async def test_an_accepted_post_wakes_the_workers_and_a_refused_one_does_not(
    backend: AppContext, client: httpx.AsyncClient, caller: Caller
) -> None:
    # In-process workers wait on Wakeup's event; on PostgreSQL other processes LISTEN too.
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = None
    if backend.wakeup.is_postgres:
        import asyncpg  # type: ignore[import-untyped]

        listener = await asyncpg.connect(backend.settings.database_url.replace("+asyncpg", ""))
        await listener.add_listener(CHANNEL, lambda *args: heard.put_nowait(args[2]))
    try:
        await backend.wakeup.wait(0)  # forget earlier tests' wake-ups
        rejected = text_post("x", text="x" * 400)  # refused: nothing committed, nothing sent
        assert (await client.post("/v1/posts", json=rejected, headers=caller.headers)).is_error
        assert not await backend.wakeup.wait(0.2)
        body = text_post("x", text=f"wake {uuid.uuid4()}")
        response = await client.post("/v1/posts", json=body, headers=caller.headers)
        assert response.status_code == 201, response.text
        assert await backend.wakeup.wait(1.0)
        if listener is not None:
            assert await asyncio.wait_for(heard.get(), 10) == CHANNEL
            assert heard.empty()
    finally:
        if listener is not None:
            await listener.close()
