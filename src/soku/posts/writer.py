"""Accepting a post on SQLite: the whole unit of work in one trip to one writer thread.

Through the async engine (aiosqlite) every statement crosses to the connection's thread and
back three or four times (cursor, execute, fetch, close), and BEGIN, COMMIT and the reset on
return once more each: about 18 crossings per accepted post, each a GIL hand-off, which cost
more CPU than SQLite's own work. Here a sync engine runs the same unit of work (the same
function PostgreSQL runs through `run_sync`) in a single thread: one crossing per post.

The thread holds one connection and runs one transaction at a time, under the database's
write lock like every other write of the process (`Database.write_lock`); other processes wait
on SQLite's lock (busy timeout).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import make_url

from soku.db import Database, prepare_sqlite

T = TypeVar("T")


class SqliteWriter:
    def __init__(self, url: str, lock: asyncio.Lock) -> None:
        sync_url = make_url(url).set(drivername="sqlite")
        self.engine: Engine = create_engine(sync_url, pool_size=1, max_overflow=0)
        prepare_sqlite(self.engine)
        self.lock = lock
        # A bare queue and thread: run_in_executor's future chaining costs 3x the CPU per trip.
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="soku-sqlite-writer", daemon=True)
        self._thread.start()

    async def run(self, work: Callable[[Connection], T]) -> T:
        """`work` in one transaction on the writer thread: committed if it returns."""
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        # The process's other writers take the same lock: they queue here instead of polling
        # SQLite's busy timeout.
        async with self.lock:
            self._jobs.put((work, done))
            return await done

    def _serve(self) -> None:
        # kept open (a checkout per post costs more); every transaction BEGIN IMMEDIATE
        with self.engine.connect().execution_options(sqlite_immediate=True) as connection:
            while (job := self._jobs.get()) is not None:
                work, done = job
                result, error = None, None
                try:
                    with connection.begin():
                        result = work(connection)
                except BaseException as exc:  # handed to the awaiting request, as it would raise
                    error = exc
                try:
                    done.get_loop().call_soon_threadsafe(_settle, done, result, error)
                except RuntimeError:  # that event loop is closed: nobody waits any more
                    continue

    def close(self) -> None:
        self._jobs.put(None)
        if threading.current_thread() is not self._thread:  # a collection may run anywhere
            self._thread.join()
            self.engine.dispose()


_Job = tuple[Callable[[Connection], Any], "asyncio.Future[Any]"]


def _settle(done: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if done.cancelled():  # the request went away; its work was committed (or not) anyway
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result)


_writers: weakref.WeakKeyDictionary[Database, SqliteWriter] = weakref.WeakKeyDictionary()


def writer_for(db: Database) -> SqliteWriter | None:
    """The writer of this SQLite file database (made on first use, closed with `db`'s last
    reference), or None: PostgreSQL, or SQLite in memory."""
    writer = _writers.get(db)
    if writer is None:
        if not db.is_sqlite or make_url(db.url).database in (None, "", ":memory:"):
            return None
        writer = _writers[db] = SqliteWriter(db.url, db.write_lock)
        weakref.finalize(db, writer.close)
    return writer
