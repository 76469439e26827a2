"""Engine, sessions, the declarative base and the one transaction boundary.

SQLite allows one writer at a time. Inside one process, write transactions wait on an
asyncio lock (cheap) and open with BEGIN IMMEDIATE, so two of them never race to upgrade a
read lock (which SQLite answers with an immediate `database is locked`). Other processes
(the CLI, a second server) wait on SQLite's busy timeout.

`Database.run_write` runs a sync unit of work. On a SQLite file it goes to one writer thread:
through the async engine (aiosqlite) every statement crosses to the connection's thread and
back three or four times (cursor, execute, fetch, close), and BEGIN, COMMIT and the reset on
return once more each: about 18 crossings per accepted post, each a GIL hand-off, which cost
more CPU than SQLite's own work. The thread runs the same function on a sync engine: one
crossing per unit of work. Elsewhere (PostgreSQL, SQLite in memory) it runs through the async
engine's `run_sync`.

`Database.run_read` does the same for a read (the dry run's account check, a post and its
deliveries, a page of the listing): on a SQLite file one trip to a reader thread, whose own
connection reads a snapshot while the writer writes (WAL) and is refused any write (`PRAGMA
query_only`). Reads queue there one at a time; each is short, and the GIL would run them one
at a time anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import queue
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import JSON, Connection, DateTime, MetaData, create_engine, event, exc, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.ext.asyncio import (
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.types import TypeDecorator, TypeEngine

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")

T = TypeVar("T")


def dump_json(value: Any) -> str:
    """A JSON column's text: orjson (a few times faster than `json`, and the worker writes a
    checkpoint, an error and a platform's answer per delivery), or `json` for what orjson
    refuses (integers beyond 64 bits, keys that are not strings)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


# Twenty digits in a row: perhaps an integer beyond 64 bits, which orjson would read as a
# float (silently rounded); `json` reads it exactly. (A 19-digit integer always fits.)
_LONG_DIGITS = re.compile(r"\d{20}")


def load_json(text: str | bytes) -> Any:
    """A JSON column's value: orjson, or `json` for what orjson would round or refuses
    (NaN, Infinity)."""
    if isinstance(text, bytes):
        text = text.decode()
    if _LONG_DIGITS.search(text) is None:
        with contextlib.suppress(orjson.JSONDecodeError):
            return orjson.loads(text)
    return json.loads(text)


_JSON_CODEC = {"json_serializer": dump_json, "json_deserializer": load_json}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class _SQLiteStamp(sqlite.DATETIME):
    """SQLite's DATETIME column (the schema is unchanged) whose text `UTCDateTime` writes and
    reads itself: no second conversion per value."""

    def bind_processor(self, dialect: Dialect) -> None:
        return None

    def result_processor(self, dialect: Dialect, coltype: object) -> None:
        return None

    def literal_processor(self, dialect: Dialect) -> Callable[[str], str]:
        """SQL text with the value inline (`literal_binds`): the quoted text (digits, `-`,
        `:`, `.` and a space; nothing to escape)."""
        return lambda text: f"'{text}'"


_STAMP_LENGTH = len("YYYY-MM-DD HH:MM:SS.ffffff")


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value


def _stamp_text(value: dt.datetime | None) -> str | None:
    """A UTC column's text on SQLite: without its "+00:00" (`replace` costs more)."""
    if value is None:
        return None
    if value.tzinfo is not dt.UTC:
        value = _aware(value).astimezone(dt.UTC)
    return value.isoformat(" ", "microseconds")[:_STAMP_LENGTH]


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every database.

    SQLite keeps them as text, in SQLAlchemy's format for its DATETIME type
    (`YYYY-MM-DD HH:MM:SS.ffffff`, UTC): written and read here in one step, which costs
    about a third of SQLAlchemy's own two steps (a naive datetime, then its text). Text in
    that format sorts as time does, so comparisons and indexes work on it.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return _SQLiteStamp()  # type: ignore[no-untyped-call]
        return dialect.type_descriptor(self.impl)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite `_stamp_text` itself: TypeDecorator's own processor would call it
        through two more functions for every value bound."""
        return _stamp_text if dialect.name == "sqlite" else super().bind_processor(dialect)

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return _stamp_text(value)
        return None if value is None else _aware(value).astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        stamp: dt.datetime = value
        if isinstance(value, str):
            try:  # our text, naive UTC: read as UTC in one step (`replace` costs more)
                return dt.datetime.fromisoformat(value + "+00:00")
            except ValueError:  # text with an offset of its own
                stamp = dt.datetime.fromisoformat(value)
        if stamp.tzinfo is None:
            return stamp.replace(tzinfo=dt.UTC)
        return stamp.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def prepare_sqlite(engine: Engine) -> None:
    """Every connection in WAL mode with foreign keys and a busy timeout; a transaction opened
    with the execution option `sqlite_immediate` takes the write lock at BEGIN."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


PING_AFTER_IDLE_SECONDS = 1.0


def ping_when_idle(engine: Engine, after: float) -> None:
    """Before a pooled connection is used, ping it if it lay idle in the pool for `after`
    seconds or more; a connection that fails the ping is dropped, with every connection
    pooled before it (the server went away: they are dead too), and a new one is made.

    SQLAlchemy's `pool_pre_ping` pings at every checkout. With asyncpg a ping is BEGIN, `;`
    and ROLLBACK: about 0.37 ms of the worker's CPU, paid by every group commit and claim
    round of a busy worker, whose connections go back to the pool for milliseconds. What a
    ping finds is a connection the server closed while it sat unused (a restart, an idle
    timeout); one taken back within a second has just worked (docs/decisions.md, "Pinging
    pooled connections"). A connection that breaks while in use fails its work either way,
    and SQLAlchemy then drops the pool's connections as above.
    """
    dialect = engine.dialect

    @event.listens_for(engine.pool, "checkin")
    def _idle(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        if dbapi_connection is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _ping(dbapi_connection: Any, record: ConnectionPoolEntry, _: PoolProxiedConnection) -> None:
        since = record.info.get("idle_since")  # none yet: the connection was just made
        if since is None or time.monotonic() - since < after:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.InvalidatePoolError(f"ping failed: {error}") from error


class Database:
    """One engine per process, and the sessions that run on it (and, on a SQLite file, the
    writer thread of `run_write` and the reader thread of `run_read`, made on first use)."""

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            _ensure_sqlite_folder(url)
            self.engine = create_async_engine(
                url, pool_size=pool_size, max_overflow=0, **_JSON_CODEC
            )
            prepare_sqlite(self.engine.sync_engine)
        else:
            self.engine = create_async_engine(
                url, pool_size=pool_size, max_overflow=pool_size * 2, **_JSON_CODEC
            )
            ping_when_idle(self.engine.sync_engine, PING_AFTER_IDLE_SECONDS)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock()
        # Whether `run_write` uses the writer thread: a SQLite file (not PostgreSQL, not memory).
        file = make_url(url).database
        self.has_writer_thread = self.is_sqlite and file not in (None, "", ":memory:")
        self._writer: _ConnectionThread | None = None
        self._reader: _ConnectionThread | None = None

    @property
    def write_lock(self) -> asyncio.Lock:
        """Held by every SQLite write of this process (one writer at a time, no busy waits)."""
        return self._write_lock

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads; closing it ends its transaction (loaded objects stay usable)."""
        async with self._sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """The unit of work: commits when the block ends normally, rolls back otherwise."""
        if not self.is_sqlite:
            async with self._sessions() as session, session.begin():
                yield session
            return
        async with self._write_lock, self._sessions() as session:
            await session.connection(execution_options={"sqlite_immediate": True})
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def run_write(self, work: Callable[[Connection], T]) -> T:
        """The unit of work as one sync function: `work(connection)` in one transaction,
        committed if it returns, rolled back if it raises. On a SQLite file, one trip to the
        writer thread (BEGIN IMMEDIATE, under `write_lock`); elsewhere the async engine's
        `run_sync` runs it in a transaction of its own."""
        if self.has_writer_thread:
            if self._writer is None:
                self._writer = _ConnectionThread(self.url, "writer", self._write_lock)
            return await self._writer.run(work)
        if self.is_sqlite:  # in memory: the process's write lock and BEGIN IMMEDIATE
            async with self.transaction() as session:
                connection = await session.connection()
                return await connection.run_sync(work)
        async with self.engine.begin() as connection:  # no session needed around it
            return await connection.run_sync(work)

    async def run_read(self, work: Callable[[Connection], T]) -> T:
        """`work(connection)` in a transaction that only reads, rolled back after it. On a
        SQLite file, one trip to the reader thread (which cannot write); elsewhere the async
        engine's `run_sync`."""
        if self.has_writer_thread:
            if self._reader is None:
                self._reader = _ConnectionThread(self.url, "reader", None)
            return await self._reader.run(work)
        async with self.engine.connect() as connection:  # rolled back when it closes
            return await connection.run_sync(work)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Close the writer and reader threads (after their queued work) and the engine's
        connections."""
        threads = [t for t in (self._writer, self._reader) if t is not None]
        self._writer = self._reader = None
        for thread in threads:  # joined off the event loop: its last work may wait on a lock
            await asyncio.to_thread(thread.close)
        await self.engine.dispose()


class _ConnectionThread:
    """One thread, one connection, one transaction at a time. The writer's run under the
    process's write lock, each opened with BEGIN IMMEDIATE (other processes wait on SQLite's
    lock, its busy timeout) and committed; the reader's (`lock` None) only read, and are
    rolled back."""

    def __init__(self, url: str, role: str, lock: asyncio.Lock | None) -> None:
        sync_url = make_url(url).set(drivername="sqlite")
        self.engine: Engine = create_engine(sync_url, pool_size=1, max_overflow=0, **_JSON_CODEC)
        prepare_sqlite(self.engine)
        self.lock = lock
        # A bare queue and thread: run_in_executor's future chaining costs 3x the CPU per trip.
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        name = f"soku-sqlite-{role}"
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    async def run(self, work: Callable[[Connection], T]) -> T:
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        # The writer holds the process's write lock, which the process's other writers take
        # too: they queue here instead of polling SQLite's busy timeout. The reader has none.
        async with self.lock or contextlib.nullcontext():
            self._jobs.put((work, done))
            return await done

    def _serve(self) -> None:
        # kept open (a checkout per unit of work costs more)
        writes = self.lock is not None
        with self.engine.connect().execution_options(sqlite_immediate=writes) as connection:
            if not writes:
                connection.exec_driver_sql("PRAGMA query_only = ON")
                connection.commit()
            while (job := self._jobs.get()) is not None:
                work, done = job
                result, error = None, None
                try:
                    with connection.begin() as transaction:
                        result = work(connection)
                        if not writes:
                            transaction.rollback()
                except BaseException as exc:  # handed to the awaiting caller, as it would raise
                    error = exc
                try:
                    done.get_loop().call_soon_threadsafe(_settle, done, result, error)
                except RuntimeError:  # that event loop is closed: nobody waits any more
                    continue

    def close(self) -> None:
        """Stop after the work already queued, then release the connection (blocks)."""
        self._jobs.put(None)
        self._thread.join()
        self.engine.dispose()


_Job = tuple[Callable[[Connection], Any], "asyncio.Future[Any]"]


def _settle(done: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if done.cancelled():  # the caller went away; its work was committed (or not) anyway
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result)


def _ensure_sqlite_folder(url: str) -> None:
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if path and path != ":memory:":
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
