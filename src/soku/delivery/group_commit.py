"""Group commit: a worker's writes that are ready at about the same time share one transaction.

Each delivery still writes through its own fenced statements and still waits until its write
is committed (the publishing mark before the platform call, a checkpoint before the next step),
but many deliveries finishing together cost one BEGIN/COMMIT instead of one each. While a group
commits, the next one gathers; nothing waits for a timer. On SQLite one group is in flight at a
time (one writer); on PostgreSQL up to `PARALLEL_GROUPS`, each on its own connection: a group
there is a round trip per statement, and one at a time left the worker idle on the network.
A group starts beside one in flight only once `SIDE_GROUP` writes wait: fewer wait for a group
to end (a few milliseconds) and go in one group. Started at once with whatever was queued,
finishing deliveries went in groups of about 13 in a burst, each paying its eight statements
and BEGIN/COMMIT; held until 32 wait, in groups of about 35, and the worker's CPU per delivery
fell by about a tenth (bench/README.md).

A write is a sync function of a Connection, and a group is one `Database.run_write`: on a
SQLite file one function call on the event loop's thread for the whole group, not a thread
hand-off and a greenlet switch for every statement.

Rules for a write (`apply`):
- it raises `LeaseLost` before it has written anything (its fenced update comes first), so
  that the rest of the group can still commit without it;
- any other error rolls the group back, and each of its writes is then tried again in a
  transaction of its own, so one failing write never takes the others with it.

Writes marked `first` (the heartbeat's lease renewal) run before the others of their group:
a delivery that finishes in the same group is still renewed, not taken for lost. A group
locks the accounts its writes name in one statement before them, and the posts whose status
they change in one statement after them, each in id order: row locks are always taken in the
same order, so two groups (of one worker or of two) may wait for each other but cannot
deadlock; a delivery has one write in flight at a time, so two groups never touch the same
delivery. The exception is the renewal, one UPDATE of all the worker's leases: its group
runs alone. The rare token writes (a refresh, an account sent to needs_reauth) take a
transaction of their own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection

from soku.db import Database, utcnow
from soku.delivery import repository as repo
from soku.delivery.caps import Full, over_caps
from soku.delivery.repository import LeaseLost
from soku.platforms.base import PublishCap

T = TypeVar("T")
Apply = Callable[[Connection], T]
MAX_GROUP = 128
PARALLEL_GROUPS = 4
SIDE_GROUP = 32


@dataclass
class _Write:
    apply: Apply[Any] | None  # a function of the connection, or
    change: repo.FencedChange | None  # a fenced change (the group's go in a few statements)
    renewal: bool
    account: uuid.UUID | None
    post_id: uuid.UUID | None
    attempt: dict[str, Any] | None
    caps: tuple[PublishCap, ...] = ()  # a publishing mark's: refused over one of them
    future: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommit:
    def __init__(
        self,
        db: Database,
        max_group: int = MAX_GROUP,
        parallel: int | None = None,
        side_group: int = SIDE_GROUP,
    ) -> None:
        self.db = db
        self.max_group = max_group
        # SQLite has one writer: one group at a time. Elsewhere several groups are in flight,
        # each on its own connection, so that one group's round trips do not hold back the next.
        self.parallel = parallel or (1 if db.is_sqlite else PARALLEL_GROUPS)
        self.side_group = side_group  # writes waiting that start a group beside one in flight
        self._queue: list[_Write] = []
        self._groups: set[asyncio.Task[None]] = set()
        self._starting = False  # a group is made and has not taken its writes yet
        self._alone: asyncio.Task[Any] | None = None  # a lease renewal's group

    async def run(
        self,
        apply: Apply[T],
        *,
        account: uuid.UUID | None = None,
        post_id: uuid.UUID | None = None,
        attempt: dict[str, Any] | None = None,
        first: bool = False,
    ) -> T:
        """`apply`'s result once its transaction committed; `account`: lock that account's
        row before the group's writes (publishing caps); `post_id`: refresh that post's status
        in the same transaction (after every write of the group); `attempt`: the attempt row
        to add if `apply` succeeded (a group's rows go in one INSERT)."""
        result: T = await self._queued(_Write(apply, None, first, account, post_id, attempt))
        return result

    async def change(
        self,
        change: repo.FencedChange,
        *,
        post_id: uuid.UUID | None = None,
        attempt: dict[str, Any] | None = None,
    ) -> None:
        """`run` for a fenced change of one delivery: the group makes all of its changes in
        a few statements (`repository.apply_fenced`); LeaseLost if the lease is gone."""
        await self._queued(_Write(None, change, False, None, post_id, attempt))

    async def mark(
        self, change: repo.FencedChange, *, account: uuid.UUID, caps: tuple[PublishCap, ...]
    ) -> Full | None:
        """A publishing mark: `change` made unless it would exceed one of `caps` for
        `account`, counting the marks made before it (committed, or earlier in its group);
        then nothing is written and the answer is that cap's index and when it frees.
        LeaseLost if the lease is gone. The group locks the account first (if capped)."""
        write = _Write(None, change, False, account if caps else None, None, None, caps)
        full: Full | None = await self._queued(write)
        return full

    async def _queued(self, write: _Write) -> Any:
        self._queue.append(write)
        self._dispatch()
        return await write.future  # cancelled: skipped unless its group already began

    async def drain(self) -> None:
        """Wait until every write queued so far is committed (or failed)."""
        while self._groups:
            await asyncio.wait(list(self._groups))

    def _dispatch(self) -> None:
        """Start a group if there is room and none is about to start: a group takes its writes
        when it starts, so the writes made until then join it."""
        if not self._queue or self._starting or self._alone is not None:
            return
        if len(self._groups) >= self.parallel:
            return
        if self._groups and len(self._queue) < self.side_group:
            return  # a few writes wait for a group in flight to end, then go in one group
        if self._groups and any(w.renewal for w in self._queue):
            return  # the renewal waits for the groups in flight, then runs alone
        self._starting = True
        task = asyncio.create_task(self._group())
        self._groups.add(task)
        task.add_done_callback(self._finished)

    async def _group(self) -> None:
        """A lease renewal's group runs alone: its one UPDATE of many deliveries takes their
        row locks in no set order, against groups that may hold some of them."""
        self._starting = False
        renewals = [w for w in self._queue if w.renewal]
        others = [w for w in self._queue if not w.renewal]
        group, rest = others[: self.max_group], others[self.max_group :]
        if renewals and len(self._groups) == 1:  # no other group in flight
            self._alone = asyncio.current_task()
            group, renewals = renewals + group, []
        self._queue = renewals + rest
        self._dispatch()
        await self._commit(group)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._groups.discard(task)
        if task is self._alone:
            self._alone = None
        if task.cancelled():  # shutting down: nobody will run the queued writes
            self._starting = False  # (it may have been cancelled before it started)
            for write in self._queue:
                write.future.cancel()
            self._queue = []
            return
        self._dispatch()

    async def _commit(self, group: list[_Write]) -> None:
        group = sorted((w for w in group if not w.future.cancelled()), key=lambda w: not w.renewal)
        if not group:
            return
        try:
            outcomes = await self.db.run_write(lambda connection: _apply(connection, group))
        except Exception as exc:
            if len(group) > 1:
                for write in group:
                    await self._commit([write])
            elif not group[0].future.done():
                group[0].future.set_exception(exc)
            return
        except BaseException:
            for write in group:
                write.future.cancel()
            raise
        for write, ok, value in outcomes:
            if write.future.done():
                continue
            if ok:
                write.future.set_result(value)
            else:
                write.future.set_exception(value)


def _apply(connection: Connection, group: list[_Write]) -> list[tuple[_Write, bool, Any]]:
    """The accounts' locks, the group's write functions in order, its fenced changes (a few
    statements for all), the attempt rows of the writes that kept their lease, then the
    status of each post they touched."""
    repo.lock_accounts(connection, {w.account for w in group if w.account is not None})
    outcomes: list[tuple[_Write, bool, Any]] = []
    for write in group:
        if write.apply is None:
            continue
        try:
            outcomes.append((write, True, write.apply(connection)))
        except LeaseLost as exc:
            outcomes.append((write, False, exc))
    changes = [(w, w.change) for w in group if w.change is not None]
    outcomes += _changes(connection, changes)
    attempts = [w.attempt for w, ok, _ in outcomes if ok and w.attempt is not None]
    if attempts:
        repo.add_attempts(connection, attempts)
    posts = {w.post_id for w, ok, _ in outcomes if ok and w.post_id is not None}
    repo.refresh_post_statuses(connection, posts, utcnow())
    return outcomes


def _changes(
    connection: Connection, changes: list[tuple[_Write, repo.FencedChange]]
) -> list[tuple[_Write, bool, Any]]:
    """The group's fenced changes: the leases read (and locked), the publishing marks
    checked against their caps, then every change still held and not over a cap made."""
    holders = repo.lease_holders(connection, [change.delivery_id for _, change in changes])
    held = [(w, c) for w, c in changes if holders.get(c.delivery_id) == c.owner]
    marks = [(c.delivery_id, w.account, w.caps) for w, c in held if w.caps and w.account]
    full = over_caps(connection, marks, utcnow()) if marks else {}
    repo.apply_fenced(connection, [c for _, c in held if c.delivery_id not in full])
    kept = {c.delivery_id for _, c in held}
    return [
        (w, True, full.get(c.delivery_id))
        if c.delivery_id in kept
        else (w, False, LeaseLost(str(c.delivery_id)))
        for w, c in changes
    ]
