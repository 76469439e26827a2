"""The claim: a worker takes due deliveries (and lapsed ones) under a lease, and reads what
their runs need. Sync functions of a Connection: a worker's claim round is one
`Database.run_write` of three statements (the lapsed leases' probe, the due rows of every
platform, what the runs need), a fourth when a lease has lapsed; on a SQLite file one call
on the event loop's thread.

The statements are built once per database: the clock and the lease's end are the database's
`now()` on PostgreSQL and bound values on SQLite (one process, one clock).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Update,
    bindparam,
    func,
    select,
    type_coerce,
    union_all,
    update,
)

from soku.db import UTCDateTime, ids_in, is_postgres
from soku.delivery.models import DeliveryStatus
from soku.delivery.repository import (
    ACCOUNTS,
    DB_LEASE_END,
    DELIVERIES,
    IN_FLIGHT_NOW,
    POSTS,
    WAITING_NOW,
)
from soku.platforms import PLATFORM_NAMES

_D, _P, _A = DELIVERIES.c, POSTS.c, ACCOUNTS.c
_SLOTS = len(PLATFORM_NAMES)  # a claim round's platforms: at most one of each


@dataclass(frozen=True)
class Claimed:
    id: uuid.UUID
    status: str  # processing, or publishing when a publish call was left in flight
    run_at: dt.datetime
    claimed_at: dt.datetime
    attempts: int
    platform: str


@dataclass(frozen=True)
class Target:
    """What one attempt needs of its delivery, post and account, read with the claim."""

    delivery_id: uuid.UUID
    post_id: uuid.UUID
    account_ref: uuid.UUID
    platform: str
    checkpoint: dict[str, Any] | None
    request_id: str | None
    content: dict[str, Any]
    media_ids: list[str] | None
    account_id: str
    platform_user_id: str | None
    username: str | None
    access_token: str | None  # sealed (integrations.vault)
    refresh_token: str | None  # sealed
    expires_at: dt.datetime | None
    sandbox: bool
    account_status: str  # connected, needs_reauth or disconnected


def _clock_of(postgres: bool) -> ColumnElement[dt.datetime]:
    if postgres:
        return type_coerce(func.now(), UTCDateTime())
    return bindparam("now", type_=UTCDateTime())


def _lease_end_of(postgres: bool) -> ColumnElement[dt.datetime]:
    return DB_LEASE_END if postgres else bindparam("lease_end", type_=UTCDateTime())


def _due(postgres: bool, slot: str) -> Select[tuple[uuid.UUID]]:
    """The claim's inner SELECT: one platform's due, waiting deliveries, in due order.

    It matches the partial index `ix_deliveries_due_platform` (platform, run_at WHERE waiting),
    so its cost does not grow with the rows waiting in the future or the finished ones.
    `slot` names its platform's and limit's parameters (one per platform in `_due_all`).
    """
    return (
        select(_D.id)
        .where(
            _D.platform == bindparam(f"claim_platform{slot}"),
            WAITING_NOW,
            _D.run_at <= _clock_of(postgres),
        )
        .order_by(_D.run_at)
        .limit(bindparam(f"claim_limit{slot}"))
        .with_for_update(skip_locked=True)
    )


def _due_all(postgres: bool) -> Select[tuple[uuid.UUID]]:
    """Every platform's due deliveries in one SELECT: one `_due` per platform (each with its
    own platform and limit bound, a limit of 0 for a platform with no room), in the order
    they are bound, at most `claim_limit` in all.

    A claim round is then one statement, not one per platform: on PostgreSQL each is a round
    trip (and a switch to the server and back). The branches are read in order and each
    locks only the rows it hands on, so the outer limit stops the reading as the loop over
    the platforms did; a branch limited to 0 reads nothing. One shape for every round: one
    prepared statement, whatever the order and the room.
    """
    branches = [_due(postgres, str(slot)).subquery().select() for slot in range(_SLOTS)]
    chosen = union_all(*branches).limit(bindparam("claim_limit")).subquery()
    return select(chosen.c.id)


def _stale(postgres: bool) -> Select[tuple[uuid.UUID]]:
    """In-flight deliveries whose lease has lapsed, but for the ids in `running`."""
    return (
        select(_D.id)
        .where(IN_FLIGHT_NOW, _D.lease_expires_at < _clock_of(postgres))
        .where(~ids_in(_D.id, "running", postgres))
        .order_by(_D.lease_expires_at)
        .limit(bindparam("claim_limit"))
        .with_for_update(skip_locked=True)
    )


def _taking(chosen: Select[Any], postgres: bool, **values: Any) -> Update:
    """Lease the chosen rows to `owner`, counting an attempt; what the worker needs back."""
    clock = _clock_of(postgres)
    return (
        update(DELIVERIES)
        .where(_D.id.in_(chosen.scalar_subquery()))
        .values(
            lease_owner=bindparam("owner"),
            lease_expires_at=_lease_end_of(postgres),
            attempts=_D.attempts + 1,
            updated_at=clock,
            **values,
        )
        .returning(_D.id, _D.status, _D.run_at, clock, _D.attempts, _D.platform)
    )


def _lapsed(postgres: bool) -> Select[tuple[uuid.UUID]]:
    """Whether any in-flight lease has lapsed: one probe of `ix_deliveries_lease`."""
    return select(_D.id).where(IN_FLIGHT_NOW, _D.lease_expires_at < _clock_of(postgres)).limit(1)


_DUE_ALL = {pg: _due_all(pg) for pg in (False, True)}
_LAPSED = {pg: _lapsed(pg) for pg in (False, True)}
_CLAIM = {
    pg: _taking(_DUE_ALL[pg], pg, status=DeliveryStatus.processing.value) for pg in (False, True)
}
_RECLAIM = {pg: _taking(_stale(pg), pg) for pg in (False, True)}


def _claim_params(
    postgres: bool, owner: str, lease: dt.timedelta, now: dt.datetime, **more: Any
) -> dict[str, Any]:
    if postgres:
        return {"owner": owner, "lease_length": lease, **more}
    return {"owner": owner, "now": now, "lease_end": now + lease, **more}


def claim_query(
    connection: Connection, rooms: Sequence[tuple[str, int]], limit: int, now: dt.datetime
) -> Select[tuple[uuid.UUID]]:
    """The SELECT of a whole claim round's due rows (`claim_due_platforms`) with its values
    bound (to look at its plan)."""
    postgres = is_postgres(connection)
    values = {"claim_limit": limit, **_slots(rooms)} | ({} if postgres else {"now": now})
    return _DUE_ALL[postgres].params(values)


def lapsed_query(connection: Connection, now: dt.datetime) -> Select[tuple[uuid.UUID]]:
    """`reclaim_expired`'s probe with its values bound (to look at its plan)."""
    postgres = is_postgres(connection)
    return _LAPSED[postgres] if postgres else _LAPSED[postgres].params(now=now)


def claim_due(
    connection: Connection,
    platform: str,
    owner: str,
    lease: dt.timedelta,
    limit: int,
    now: dt.datetime,
) -> list[Claimed]:
    """Take up to `limit` due deliveries of one platform, oldest first, skipping locked rows."""
    return claim_due_platforms(connection, [(platform, limit)], owner, lease, limit, now)


def claim_due_platforms(
    connection: Connection,
    rooms: Sequence[tuple[str, int]],
    owner: str,
    lease: dt.timedelta,
    limit: int,
    now: dt.datetime,
) -> list[Claimed]:
    """Take up to `limit` due deliveries in all, in one statement: platform by platform in
    the order of `rooms`, each platform's oldest first and at most its room, skipping
    locked rows (each platform at most once)."""
    if limit <= 0:
        return []
    postgres = is_postgres(connection)
    params = _claim_params(postgres, owner, lease, now, claim_limit=limit, **_slots(rooms))
    return [Claimed(*row) for row in connection.execute(_CLAIM[postgres], params)]


def _slots(rooms: Sequence[tuple[str, int]]) -> dict[str, Any]:
    """The platform and the limit of each of `_due_all`'s branches: `rooms` in order, then
    branches limited to 0 (they read nothing)."""
    if not rooms or len(rooms) > _SLOTS or len({p for p, _ in rooms}) < len(rooms):
        raise ValueError(f"one to {_SLOTS} rooms, at most one per platform: {rooms!r}")
    values: dict[str, Any] = {}
    for slot in range(_SLOTS):
        platform, room = rooms[slot] if slot < len(rooms) else (rooms[0][0], 0)
        values |= {f"claim_platform{slot}": platform, f"claim_limit{slot}": max(0, room)}
    return values


def reclaim_expired(
    connection: Connection,
    owner: str,
    lease: dt.timedelta,
    limit: int,
    now: dt.datetime,
    running: Collection[uuid.UUID] = (),
) -> list[Claimed]:
    """Take over deliveries whose worker stopped renewing its lease (it died).

    `running` are the deliveries the claiming worker still runs itself: a late heartbeat lets
    their leases lapse too, and taking them again would run them twice under the same owner,
    where fencing cannot tell the two runs apart.

    A probe comes first: nearly always no lease has lapsed, and the probe costs a fraction of
    the UPDATE, which binds every id in `running` (hundreds in a busy worker).
    """
    postgres = is_postgres(connection)
    if connection.execute(_LAPSED[postgres], {} if postgres else {"now": now}).first() is None:
        return []
    params = _claim_params(postgres, owner, lease, now, running=list(running), claim_limit=limit)
    return [Claimed(*row) for row in connection.execute(_RECLAIM[postgres], params)]


_TARGETS = select(
    *(_D.id.label("delivery_id"), _D.post_id, _D.account_ref, _D.platform, _D.checkpoint),
    *(_P.request_id, _P.content, _P.media_ids),
    *(_A.account_id, _A.platform_user_id, _A.username, _A.access_token, _A.refresh_token),
    *(_A.expires_at, _A.sandbox, _A.status.label("account_status")),
).select_from(DELIVERIES.join(POSTS, _P.id == _D.post_id).join(ACCOUNTS, _A.id == _D.account_ref))


assert [c.name for c in _TARGETS.selected_columns] == [f.name for f in fields(Target)]
_TARGETS_OF = {pg: _TARGETS.where(ids_in(_D.id, "ids", pg)) for pg in (False, True)}


def load_targets(connection: Connection, ids: list[uuid.UUID]) -> dict[uuid.UUID, Target]:
    """The claimed deliveries with their posts and accounts, in one statement."""
    if not ids:
        return {}
    rows = connection.execute(_TARGETS_OF[is_postgres(connection)], {"ids": ids})
    return {row[0]: Target(*tuple(row)) for row in rows}  # in the order of Target's fields
