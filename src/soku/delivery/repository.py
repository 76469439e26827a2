"""SQL of the queue. Every change a worker makes is fenced: it counts only while the worker
still holds the lease (`lease_owner` matches), so a worker that lost its lease cannot
overwrite the work of the one that took over.

On PostgreSQL, due times and leases come from the database clock (`now()`); on SQLite the
single process's clock is the only one there is. The claim's SQL is in `claims.py`.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Interval,
    Select,
    String,
    Table,
    Update,
    Uuid,
    bindparam,
    func,
    insert,
    literal,
    literal_column,
    select,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from soku.db import UTCDateTime, ids_in, is_postgres, utcnow
from soku.delivery.models import (
    IN_FLIGHT,
    NOT_STARTED,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
)
from soku.integrations.models import Account
from soku.platforms import PLATFORM_NAMES
from soku.posts.models import Post
from soku.posts.status import derive_status
from soku.webhooks.events import record_post_events

WAITING = [s.value for s in NOT_STARTED]
FLYING = [s.value for s in IN_FLIGHT]
DELIVERIES = cast(Table, Delivery.__table__)
ATTEMPTS = cast(Table, DeliveryAttempt.__table__)
POSTS = cast(Table, Post.__table__)
ACCOUNTS = cast(Table, Account.__table__)
_D, _P, _A = DELIVERIES.c, POSTS.c, ACCOUNTS.c
# Built once: the per-delivery writes are plain Core statements whose compiled form SQLAlchemy
# caches; the SET clause of the fenced update comes from the parameters' keys.
_FENCED = update(DELIVERIES).where(
    DELIVERIES.c.id == bindparam("fence_id"), DELIVERIES.c.lease_owner == bindparam("fence_owner")
)


# A fresh lease's end from the database clock (PostgreSQL), its length bound as `lease_length`.
DB_LEASE_END = type_coerce(func.now() + bindparam("lease_length", type_=Interval()), UTCDateTime())


@functools.cache
def _fenced(new_lease: bool) -> Update:
    """The fenced UPDATE, built once per shape: `new_lease`, with a fresh lease from the
    database clock (PostgreSQL)."""
    return _FENCED.values(lease_expires_at=DB_LEASE_END) if new_lease else _FENCED


# The key types of a fenced change's parameters that are not columns of `deliveries`.
_FENCE_TYPES: dict[str, TypeEngine[Any]] = {
    "fence_id": Uuid(),
    "fence_owner": String(),
    "lease_length": Interval(),
}


def _unnested(table: Table, keys: tuple[str, ...]) -> Any:
    """`unnest(:k1, :k2, ...) AS changed(k1, k2, ...)`: rows from one array per key
    (PostgreSQL), each typed as its column (or as `_FENCE_TYPES` says)."""
    types = [_FENCE_TYPES[key] if key in _FENCE_TYPES else table.c[key].type for key in keys]
    arrays = [bindparam(key, type_=ARRAY(kind)) for key, kind in zip(keys, types, strict=True)]
    return func.unnest(*arrays).table_valued(*keys).render_derived(name="changed")


@functools.cache
def _fenced_together(new_lease: bool, keys: tuple[str, ...]) -> Update:
    """The fenced UPDATE of many deliveries in one statement (PostgreSQL): their changes as
    arrays, one per key of the shape. One execution on the server instead of one per row."""
    changed = _unnested(DELIVERIES, keys)
    values: dict[str, Any] = {key: changed.c[key] for key in keys if key not in _FENCE_TYPES}
    if new_lease:
        values["lease_expires_at"] = type_coerce(func.now() + changed.c.lease_length, UTCDateTime())
    return (
        update(DELIVERIES)
        .where(_D.id == changed.c.fence_id, _D.lease_owner == changed.c.fence_owner)
        .values(values)
    )


@functools.cache
def _attempts_together(keys: tuple[str, ...]) -> Any:
    """Many attempt rows in one INSERT ... SELECT FROM unnest (PostgreSQL)."""
    changed = _unnested(ATTEMPTS, keys)
    return insert(ATTEMPTS).from_select(list(keys), select(*(changed.c[key] for key in keys)))


def _as_arrays(rows: Sequence[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, list[Any]]:
    return {key: [row[key] for row in rows] for key in keys}


_ADD_ATTEMPT = insert(ATTEMPTS)
_SET_POST_STATUS = update(POSTS).where(POSTS.c.id == bindparam("post_id"))


def _locked_in_order(table: Table, name: str, postgres: bool) -> Select[Any]:
    """Rows of `table` by id, locked FOR NO KEY UPDATE in id order (PostgreSQL; SQLite has
    one writer and no row locks). Every transaction that locks several takes them in this one
    order, so two of them can wait for each other but never deadlock."""
    return (
        select(table.c.id)
        .where(ids_in(table.c.id, name, postgres))
        .order_by(table.c.id)
        .with_for_update(key_share=True)
    )


_LOCK_ACCOUNTS = {pg: _locked_in_order(ACCOUNTS, "account_refs", pg) for pg in (False, True)}
_LOCK_POSTS = {
    pg: _locked_in_order(POSTS, "post_ids", pg).add_columns(_P.status) for pg in (False, True)
}
# each post's distinct statuses: all a post's status is derived from
_STATUSES_OF = {
    pg: select(_D.post_id, _D.status).distinct().where(ids_in(_D.post_id, "post_ids", pg))
    for pg in (False, True)
}


def _status_in(statuses: list[str]) -> ColumnElement[bool]:
    """`status IN ('a', 'b')` (one status: `status = 'a'`) with the values written into the
    SQL, not bound.

    The partial indexes (`WHERE status IN (...)`) are usable only when the query repeats their
    predicate with constants: SQLite never matches bound parameters against it (the claim
    would scan the whole table), and PostgreSQL cannot in a generic plan, which asyncpg's
    prepared statements get after a few executions.
    """
    assert all(status.isidentifier() for status in statuses)
    values: list[ColumnElement[str]] = [literal_column(f"'{status}'") for status in statuses]
    return DELIVERIES.c.status == values[0] if len(values) == 1 else DELIVERIES.c.status.in_(values)


WAITING_NOW = _status_in(WAITING)
IN_FLIGHT_NOW = _status_in(FLYING)
PUBLISHING_NOW = _status_in([DeliveryStatus.publishing.value])


class LeaseLost(Exception):
    """Another worker holds this delivery now; this one must stop touching it."""


def _clock(session: AsyncSession | Connection, now: dt.datetime) -> ColumnElement[dt.datetime]:
    if is_postgres(session):
        return type_coerce(func.now(), UTCDateTime())
    return literal(now, UTCDateTime())


# The worker's writes below are sync functions on a Connection: they run in its group commit
# (`GroupCommit`, through `Database.run_write`: on a SQLite file one function call on the
# event loop's thread).


def renew_leases(
    connection: Connection,
    ids: list[uuid.UUID],
    owner: str,
    lease: dt.timedelta,
    now: dt.datetime,
) -> set[uuid.UUID]:
    """Extend this worker's leases; returns the ids it still holds."""
    if not ids:
        return set()
    postgres = is_postgres(connection)
    end = DB_LEASE_END if postgres else literal(now + lease, UTCDateTime())
    stmt = (
        update(DELIVERIES)
        .where(ids_in(DELIVERIES.c.id, "ids", postgres), DELIVERIES.c.lease_owner == owner)
        .values(lease_expires_at=end)
        .returning(DELIVERIES.c.id)
    )
    params: dict[str, Any] = {"ids": list(ids)}
    if postgres:
        params["lease_length"] = lease
    return {row[0] for row in connection.execute(stmt, params)}


@dataclass(frozen=True)
class FencedChange:
    """A change to one delivery that counts only while `owner` holds its lease; `lease`:
    also a fresh lease of that length (from the database clock on PostgreSQL)."""

    delivery_id: uuid.UUID
    owner: str
    values: dict[str, Any]
    lease: dt.timedelta | None = None


_HOLDERS = {
    pg: _locked_in_order(DELIVERIES, "ids", pg).add_columns(_D.lease_owner) for pg in (False, True)
}


def _with_lease(params: dict[str, Any], lease: dt.timedelta | None, postgres: bool) -> bool:
    """Add a fresh lease of `lease` to a fenced update's parameters; whether the statement
    must compute its end from the database clock (`_fenced(True)`)."""
    if lease is not None and postgres:
        params["lease_length"] = lease
        return True
    if lease is not None:
        params["lease_expires_at"] = utcnow() + lease
    return False


def lease_holders(
    connection: Connection, ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, str | None]:
    """Who holds each of these deliveries' leases, their rows locked until the transaction
    ends (FOR NO KEY UPDATE on PostgreSQL; SQLite has one writer): the leases stay as read."""
    if not ids:
        return {}
    rows = connection.execute(_HOLDERS[is_postgres(connection)], {"ids": sorted(ids)})
    return dict(rows.all())


def apply_fenced(connection: Connection, changes: Sequence[FencedChange]) -> None:
    """Many deliveries' fenced changes, one statement per set of columns: on PostgreSQL one
    UPDATE from arrays (`_fenced_together`), elsewhere an executemany. For changes whose
    leases `lease_holders` found held and locked in this transaction: each UPDATE's fence
    then matches its row, and the row locks are already taken (in id order). At most one
    change per delivery (a delivery has one write in flight at a time): from arrays, only
    one of two changes to a row would be made."""
    postgres = is_postgres(connection)
    by_shape: dict[tuple[bool, tuple[str, ...]], list[dict[str, Any]]] = {}
    for change in changes:
        params = {"fence_id": change.delivery_id, "fence_owner": change.owner, **change.values}
        new_lease = _with_lease(params, change.lease, postgres)
        by_shape.setdefault((new_lease, tuple(sorted(params))), []).append(params)
    for (new_lease, keys), rows in by_shape.items():
        if postgres and len(rows) > 1:
            connection.execute(_fenced_together(new_lease, keys), _as_arrays(rows, keys))
        else:
            connection.execute(_fenced(new_lease), rows)


def refresh_post_statuses(
    connection: Connection, post_ids: Collection[uuid.UUID], now: dt.datetime
) -> dict[uuid.UUID, str]:
    """Store each post's status derived from its deliveries, where it changed.

    The posts' rows are locked first: two deliveries of a post finishing at once would
    otherwise each read the other as unfinished (neither has committed) and both store a
    stale status. With the lock the second one waits, and its read (a new statement: a new
    snapshot under READ COMMITTED) sees the first one's committed change. Three statements
    for any number of posts (the third only for the posts whose status changed).
    """
    if not post_ids:
        return {}
    postgres = is_postgres(connection)
    params = {"post_ids": sorted(post_ids)}
    stored: dict[uuid.UUID, str] = dict(connection.execute(_LOCK_POSTS[postgres], params).all())
    found: dict[uuid.UUID, list[str]] = {post_id: [] for post_id in stored}
    for post_id, status in connection.execute(_STATUSES_OF[postgres], params):
        found[post_id].append(status)
    derived = {post_id: derive_status(statuses).value for post_id, statuses in found.items()}
    changed = [
        {"post_id": post_id, "status": status, "updated_at": now}
        for post_id, status in derived.items()
        if stored[post_id] != status
    ]
    if changed:
        connection.execute(_SET_POST_STATUS, changed)
        record_post_events(connection, {p: s for p, s in derived.items() if stored[p] != s}, now)
    return derived


def refresh_post_status(connection: Connection, post_id: uuid.UUID, now: dt.datetime) -> str:
    """One post's `refresh_post_statuses`."""
    return refresh_post_statuses(connection, [post_id], now)[post_id]


def add_attempts(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Attempt rows, all with the same keys: on PostgreSQL one INSERT from arrays, elsewhere
    an executemany."""
    if is_postgres(connection) and len(rows) > 1:
        keys = tuple(sorted(rows[0]))
        connection.execute(_attempts_together(keys), _as_arrays(rows, keys))
    else:
        connection.execute(_ADD_ATTEMPT, rows)


def lock_accounts(connection: Connection, account_refs: Collection[uuid.UUID]) -> None:
    """Serialize the publishing-cap checks of these accounts until the transaction ends.

    FOR NO KEY UPDATE: it does not block new deliveries referencing the accounts. SQLite has
    one writer at a time, so there is nothing to lock.
    """
    if account_refs and is_postgres(connection):
        connection.execute(_LOCK_ACCOUNTS[True], {"account_refs": sorted(account_refs)})


def _earliest_due() -> Select[Any]:
    """The earliest waiting run_at: one index probe per platform, in one statement.

    Each probe reads the front of `ix_deliveries_due_platform`; a single index on run_at
    alone would also serve this, but PostgreSQL then picks it for the claim as well, which
    has to read past other platforms' due rows.
    """
    probes = [
        select(func.min(DELIVERIES.c.run_at).label("due")).where(
            DELIVERIES.c.platform == platform, WAITING_NOW
        )
        for platform in PLATFORM_NAMES
    ]
    earliest = union_all(*probes).subquery()
    return select(func.min(earliest.c.due))


_EARLIEST_DUE = _earliest_due()
_EARLIEST_LEASE_END = select(func.min(DELIVERIES.c.lease_expires_at)).where(IN_FLIGHT_NOW)


async def next_wakeup(session: AsyncSession) -> dt.datetime | None:
    """The earliest due time or lease expiry: when there may be work again."""
    due = (await session.execute(_EARLIEST_DUE)).scalar_one()
    lease = (await session.execute(_EARLIEST_LEASE_END)).scalar_one()
    found = [t for t in (due, lease) if t is not None]
    return min(found) if found else None


async def due_now(session: AsyncSession, now: dt.datetime) -> tuple[int, dt.datetime | None]:
    """How many deliveries are due and waiting, and the oldest due time (for metrics)."""
    clock = _clock(session, now)
    stmt = select(func.count(), func.min(Delivery.run_at)).where(
        WAITING_NOW, Delivery.run_at <= clock
    )
    count, oldest = (await session.execute(stmt)).one()
    return int(count), oldest
