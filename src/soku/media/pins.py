"""Pins: how a stored object shared by many media rows is deleted, and only when unused.

An object (`sha256/<hex>.<ext>`) is held by every media row with its key and by every pin: a
row of `media_pins` that a request taking a file in writes, in a transaction of its own,
before it asks the store whether the object is there. The pin goes in the transaction that
writes the request's media rows; on any other way out (a refusal, an error, an idempotency
replay, a cancelled task) `Pins.release_rest` drops it. Whoever leaves a key last (a
`DELETE /v1/media/{id}`, a release) deletes the object, once its transaction has committed,
in a second one that checks again that nothing holds the key. Every transaction that changes
or reads a key's rows or pins for that holds the key's lock first (`repository.lock_keys`), so
a delete either ran entirely before a pin (the object is gone, and the intake stores it
again) or sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Collection
from functools import partial
from pathlib import Path
from types import TracebackType

import structlog
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from soku.context import AppContext
from soku.db import Database, utcnow
from soku.media import repository
from soku.media.storage import MediaStore

log = structlog.get_logger("soku.media")
SWEEP_SECONDS = 600.0  # how often `keep_tidy` looks for what crashed requests left
_RELEASING: set[asyncio.Task[None]] = set()  # held here: the event loop keeps only weak ones


class Pins:
    """The pins of one request: `add` one before asking the store for the object,
    `release_in` the transaction that writes the media rows and `committed` once that has
    committed; `release_rest` (the `async with` exit) releases whatever was not."""

    def __init__(self, db: Database, store: MediaStore) -> None:
        self._db, self._store = db, store
        self._held: dict[uuid.UUID, str] = {}  # pin id: storage key
        self._released_in: set[uuid.UUID] = set()

    @classmethod
    def of(cls, ctx: AppContext) -> Pins:
        return cls(ctx.db, ctx.media_store)

    async def add(self, key: str) -> None:
        """Pin the key, committed before this returns."""
        pin_id = uuid.uuid4()
        self._held[pin_id] = key  # first: if the insert is cut short, the release tries anyway
        await self._db.run_write(partial(repository.add_pin, pin_id=pin_id, key=key, now=utcnow()))

    def release_in(self, connection: Connection) -> None:
        """In the transaction that writes this request's media rows: lock the keys, drop the
        pins; they are gone when it commits (`committed`)."""
        if not self._held:
            return
        repository.lock_keys(connection, self._held.values())
        repository.drop_pins(connection, list(self._held))
        self._released_in = set(self._held)

    def committed(self) -> None:
        """The transaction that ran `release_in` has committed."""
        for pin_id in self._released_in:
            self._held.pop(pin_id, None)
        self._released_in = set()

    async def release_rest(self) -> None:
        """Release every pin not released by a committed transaction, one transaction per
        key, deleting each object nothing holds any more. Runs to its end even when the
        request's task is cancelled meanwhile."""
        by_key: dict[str, list[uuid.UUID]] = {}
        for pin_id, key in self._held.items():
            by_key.setdefault(key, []).append(pin_id)
        self._held, self._released_in = {}, set()
        if not by_key:
            return
        task = asyncio.ensure_future(self._release(by_key))
        _RELEASING.add(task)
        task.add_done_callback(_RELEASING.discard)
        await asyncio.shield(task)

    async def _release(self, by_key: dict[str, list[uuid.UUID]]) -> None:
        for key, pin_ids in sorted(by_key.items()):
            try:
                await leave_alone(self._db, self._store, key, pin_ids=pin_ids)
            except Exception as exc:  # the request's own outcome stands; an hour frees the pin
                log.warning("media_pin_not_released", storage_key=key, error=repr(exc))

    async def __aenter__(self) -> Pins:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release_rest()


async def leave(
    session: AsyncSession,
    key: str,
    *,
    media_id: uuid.UUID | None = None,
    pin_ids: Collection[uuid.UUID] = (),
) -> bool:
    """In the session's transaction, under the key's lock: drop the media row or the pins.
    True when nothing holds the key any more: once that transaction has committed, the
    caller runs `delete_unused`. The object stays until then, so a transaction that fails to
    commit leaves its row with its file."""
    connection = await session.connection()
    return await connection.run_sync(
        partial(repository.leave_key, key=key, now=utcnow(), media_id=media_id, pin_ids=pin_ids)
    )


async def delete_unused(db: Database, store: MediaStore, key: str) -> None:
    """After a `leave` that found the key unused has committed: under the key's lock again,
    delete the object if still nothing holds it (an intake may have pinned it in between, and
    then keeps it). A process killed between the two leaves the object behind, unused, as a
    store that fails to delete does: logged, not raised, and it harms nobody."""
    try:
        async with db.transaction() as session:
            connection = await session.connection()
            if await connection.run_sync(partial(repository.unused_key, key=key, now=utcnow())):
                await store.delete(key)
    except Exception as exc:
        log.warning("stored_media_not_deleted", storage_key=key, error=repr(exc))


async def leave_alone(
    db: Database, store: MediaStore, key: str, *, pin_ids: Collection[uuid.UUID] = ()
) -> None:
    """`leave` in a transaction of its own, then `delete_unused`."""
    async with db.transaction() as session:
        unused = await leave(session, key, pin_ids=pin_ids)
    if unused:
        await delete_unused(db, store, key)


async def sweep(db: Database, store: MediaStore) -> int:
    """Drop the pins of requests that crashed (older than PIN_LIFETIME) and delete each
    object nothing else holds, one transaction per key as a release; how many keys."""
    keys = await db.run_read(partial(repository.stale_pin_keys, now=utcnow()))
    for key in keys:
        try:
            await leave_alone(db, store, key)
        except Exception as exc:  # the next sweep tries again
            log.warning("media_pin_not_released", storage_key=key, error=repr(exc))
    return len(keys)


def sweep_temporary_files(folder: Path) -> int:
    """Delete the intake files (`incoming-*`) of requests that crashed: those untouched for
    longer than PIN_LIFETIME, as long as an intake may take; how many."""
    oldest = time.time() - repository.PIN_LIFETIME.total_seconds()
    removed = 0
    for path in folder.glob("incoming-*"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < oldest:
                path.unlink()
                removed += 1
    return removed


async def keep_tidy(ctx: AppContext) -> None:
    """For as long as the service runs: what a killed process left between an intake's pin
    and its release (the pins, objects only they held, temporary files) goes once it is an
    hour old, rather than waiting for the next request on the same bytes."""
    while True:
        try:
            keys = await sweep(ctx.db, ctx.media_store)
            files = await asyncio.to_thread(sweep_temporary_files, ctx.settings.data_dir / "tmp")
            if keys or files:
                log.info("media_leftovers_swept", keys=keys, temporary_files=files)
        except Exception:
            log.exception("media_sweep_failed")
        await asyncio.sleep(SWEEP_SECONDS)
