"""Engine, sessions, the declarative base and the one transaction boundary.

SQLite allows one writer at a time. Inside one process, write transactions wait on an
asyncio lock (cheap) and open with BEGIN IMMEDIATE, so two of them never race to upgrade a
read lock (which SQLite answers with an immediate `database is locked`). Other processes
(the CLI, a second server) wait on SQLite's busy timeout.

`Database.run_write` runs a sync unit of work. On a SQLite file it runs on a sync connection
of its own, in one piece: through the async engine (aiosqlite) every statement crosses to the
connection's thread and back three or four times (cursor, execute, fetch, close), and BEGIN,
COMMIT and the reset on return once more each: about 18 crossings per accepted post, each a
GIL hand-off, which cost more CPU than SQLite's own work. That connection lives on the event
loop's own thread (`_InlineWriter`): a write there is a function call. It used to be a
writer thread's, one crossing per unit of work; but both threads run Python, so the GIL went
back and forth during every write, and the worker delivered about a fifth fewer posts per
second (bench/README.md, `delivery_efficiency.py`). The writer thread stays for what must not
stop the event loop: a write that finds SQLite's lock held by another process waits for it
there (the busy timeout), and the WAL checkpoints of the inline commits (an fsync) run there.
Elsewhere (PostgreSQL, SQLite in memory) it runs through the async engine's `run_sync`.

`Database.run_read` runs a read written that way (the dry run's account check, a post and its
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
import math
import queue
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    DateTime,
    MetaData,
    Uuid,
    any_,
    bindparam,
    create_engine,
    event,
    exc,
    text,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.ext.asyncio import (
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Session
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
        # A SQLite file (not PostgreSQL, not memory): `run_write` on the inline connection
        # (the writer thread behind it), `run_read` on the reader thread.
        file = make_url(url).database
        self.is_sqlite_file = self.is_sqlite and file not in (None, "", ":memory:")
        self._inline: _InlineWriter | None = None
        self._checkpoints: set[asyncio.Task[None]] = set()
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
        committed if it returns, rolled back if it raises. On a SQLite file, under the
        process's write lock: on the event loop's own thread when SQLite's write lock is free
        (`_InlineWriter`), otherwise on the writer thread, which waits for it on the busy
        timeout; elsewhere the async engine's `run_sync` runs it in a transaction of its own."""
        if self.is_sqlite_file:
            async with self._write_lock:
                inline = self._inline_writer()
                if inline is not None:
                    try:
                        result = inline.run(work)
                    except WriteLocked:
                        pass  # another process is writing: wait for it off the event loop
                    else:
                        if inline.checkpoint_due():
                            self._start_checkpoint()
                        return result
                return await self._writer_thread().run(work)
        if self.is_sqlite:  # in memory: the process's write lock and BEGIN IMMEDIATE
            async with self.transaction() as session:
                connection = await session.connection()
                return await connection.run_sync(work)
        async with self.engine.begin() as connection:  # no session needed around it
            return await connection.run_sync(work)

    def _inline_writer(self) -> _InlineWriter | None:
        """The write connection of the thread running the event loop (made on first use),
        or None on another thread than the one that made it: a SQLite connection is used by
        one thread only."""
        if self._inline is None:
            self._inline = _InlineWriter(self.url)
        return self._inline if self._inline.thread == threading.get_ident() else None

    def _start_checkpoint(self) -> None:
        task = asyncio.create_task(self._checkpoint())
        self._checkpoints.add(task)
        task.add_done_callback(self._checkpoints.discard)

    async def _checkpoint(self) -> None:
        """A passive checkpoint of the WAL on the writer thread, under the process's write
        lock: with no write of this process beginning meanwhile, it copies every committed
        page, and the next write starts the WAL over from its beginning (SQLite restarts it
        only once all of it is copied). The event loop goes on meanwhile; this process's
        writes wait for it, as they did when each commit could checkpoint."""
        async with self._write_lock:
            await self._writer_thread().run(_passive_checkpoint, transaction=False)

    def _writer_thread(self) -> _ConnectionThread:
        if self._writer is None:
            self._writer = _ConnectionThread(self.url, "writer", writes=True)
        return self._writer

    async def run_read(self, work: Callable[[Connection], T]) -> T:
        """`work(connection)` in a transaction that only reads, rolled back after it. On a
        SQLite file, one trip to the reader thread (which cannot write); elsewhere the async
        engine's `run_sync`."""
        if self.is_sqlite_file:
            if self._reader is None:
                self._reader = _ConnectionThread(self.url, "reader", writes=False)
            return await self._reader.run(work)
        async with self.engine.connect() as connection:  # rolled back when it closes
            return await connection.run_sync(work)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Close the writer and reader threads (after their queued work) and the engine's
        connections."""
        for task in list(self._checkpoints):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        threads = [t for t in (self._writer, self._reader) if t is not None]
        self._writer = self._reader = None
        for thread in threads:  # joined off the event loop: its last work may wait on a lock
            await asyncio.to_thread(thread.close)
        await self.engine.dispose()


class _ConnectionThread:
    """One thread, one connection, one transaction at a time. The writer's (`writes`) are
    opened with BEGIN IMMEDIATE (other processes wait on SQLite's lock, its busy timeout) and
    committed, and it runs the WAL checkpoints of the inline writer's commits; the reader's
    only read, and are rolled back. The caller holds the process's write lock around a
    write."""

    def __init__(self, url: str, role: str, *, writes: bool) -> None:
        self.engine = _one_connection_engine(url)
        self.writes = writes
        # A bare queue and thread: run_in_executor's future chaining costs 3x the CPU per trip.
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        name = f"soku-sqlite-{role}"
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    async def run(self, work: Callable[[Connection], T], *, transaction: bool = True) -> T:
        """`work(connection)` on the thread, in a transaction (or, `transaction` False, with
        none open: what SQLite refuses inside one, such as a checkpoint)."""
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put((work, done, transaction))
        return await done

    def _serve(self) -> None:
        # kept open (a checkout per unit of work costs more)
        writes = self.writes
        with self.engine.connect().execution_options(sqlite_immediate=writes) as connection:
            if not writes:
                connection.exec_driver_sql("PRAGMA query_only = ON")
                connection.commit()
            while (job := self._jobs.get()) is not None:
                work, done, in_transaction = job
                result, error = None, None
                try:
                    if not in_transaction:
                        result = work(connection)
                    else:
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


def _one_connection_engine(url: str, **connect_args: Any) -> Engine:
    """A sync engine of one connection to the SQLite file of `url` (an aiosqlite URL), set up
    as every connection of the process is (`prepare_sqlite`)."""
    sync_url = make_url(url).set(drivername="sqlite")
    engine = create_engine(
        sync_url, pool_size=1, max_overflow=0, connect_args=connect_args, **_JSON_CODEC
    )
    prepare_sqlite(engine)
    return engine


CHECKPOINT_SECONDS = 0.2  # the inline writer's commits are checkpointed at most this often


def _passive_checkpoint(connection: Connection) -> None:
    """`PRAGMA wal_checkpoint(PASSIVE)` on the connection's own sqlite3 connection (in
    autocommit, outside any transaction); a failure (another process's checkpoint running)
    leaves the pages for the next one."""
    raw = connection.connection.driver_connection
    assert raw is not None
    with contextlib.suppress(sqlite3.Error):
        raw.execute("PRAGMA wal_checkpoint(PASSIVE)").close()


class WriteLocked(Exception):
    """SQLite's write lock is held by another connection (another process)."""


class _InlineWriter:
    """The SQLite file's write connection on the event loop's own thread.

    A write run there costs no trip to the writer thread: no hand-off of the GIL between
    the two threads, which both run Python, while the statements run (bench/README.md,
    `delivery_efficiency.py`). Its BEGIN IMMEDIATE waits for nobody (busy timeout 0): if
    another process holds SQLite's write lock, `run` raises `WriteLocked` before running
    anything, and the write goes to the writer thread, which waits there instead of
    stopping the event loop. Its commits do not checkpoint the WAL themselves (an fsync of
    the database file on the event loop's thread); `checkpoint_due` says when to have the
    writer thread do it.
    """

    def __init__(self, url: str) -> None:
        self.thread = threading.get_ident()
        # check_same_thread off only so that `close` may run elsewhere; `Database` uses it
        # from `thread` alone.
        self.engine = _one_connection_engine(url, check_same_thread=False)

        @event.listens_for(self.engine, "connect")
        def _never_wait(dbapi_conn: Any, _record: Any) -> None:  # after prepare_sqlite's
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA busy_timeout=0")
            cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.close()

        self.connection = self.engine.connect().execution_options(sqlite_immediate=True)
        self._last_checkpoint = -math.inf

    def run(self, work: Callable[[Connection], T]) -> T:
        try:
            transaction = self.connection.begin()
        except exc.OperationalError as error:
            if getattr(error.orig, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY:
                raise WriteLocked(str(error.orig)) from error
            raise
        with transaction:
            return work(self.connection)

    def checkpoint_due(self) -> bool:
        """Whether the last checkpoint was asked for `CHECKPOINT_SECONDS` ago or more (then
        it counts as asked for now)."""
        now = time.monotonic()
        if now - self._last_checkpoint < CHECKPOINT_SECONDS:
            return False
        self._last_checkpoint = now
        return True

    def close(self) -> None:
        self.connection.close()
        self.engine.dispose()


_Job = tuple[Callable[[Connection], Any], "asyncio.Future[Any]", bool]


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


def is_postgres(bind: AsyncSession | Session | Connection) -> bool:
    """Whether this session or connection is on PostgreSQL."""
    dialect = bind.dialect if isinstance(bind, Connection) else bind.get_bind().dialect
    return dialect.name == "postgresql"


def ids_in(
    column: ColumnElement[uuid.UUID] | InstrumentedAttribute[uuid.UUID], name: str, postgres: bool
) -> ColumnElement[bool]:
    """`column = ANY(:name)` on PostgreSQL: one prepared statement whatever the number of ids
    (asyncpg prepares each distinct SQL text); `column IN (...)` elsewhere."""
    if postgres:
        return column == any_(bindparam(name, type_=ARRAY(Uuid())))
    return column.in_(bindparam(name, expanding=True))
