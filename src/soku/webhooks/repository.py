"""The webhooks' SQL: the sender's claim and finish, the endpoints and their deliveries for
the API, and the purge of old events. Sync functions of a Connection (`Database.run_write`
and `run_read`)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, exists, func, select, update

from soku.db import ids_in, is_postgres
from soku.webhooks.events import DELIVERIES, ENDPOINTS, EVENTS
from soku.webhooks.models import WebhookStatus

_W, _E, _V = DELIVERIES.c, ENDPOINTS.c, EVENTS.c
PENDING = WebhookStatus.pending.value


@dataclass(frozen=True)
class Due:
    """One claimed delivery and what sending it needs."""

    id: uuid.UUID
    attempts: int  # counting this one
    endpoint_id: uuid.UUID
    url: str
    secret: str  # sealed
    previous_secret: str | None  # sealed; signs too while `previous_until` is ahead
    previous_until: dt.datetime | None
    event_id: uuid.UUID
    event_type: str
    body: str


_DUE = (
    select(_W.id)
    .where(_W.status == PENDING, _W.run_at <= bindparam("now"))
    .order_by(_W.run_at)
    .limit(bindparam("batch"))
    .with_for_update(skip_locked=True)
)
_TAKE = (
    update(DELIVERIES)
    .where(_W.id.in_(_DUE.scalar_subquery()))
    .values(run_at=bindparam("lease_end"), lease_token=bindparam("token"), attempts=_W.attempts + 1)
    .returning(_W.id)
)
_TAKEN = {  # by is_postgres (see ids_in)
    pg: select(
        *(_W.id, _W.attempts, _E.id, _E.url, _E.secret, _E.previous_secret, _E.previous_until),
        *(_V.id, _V.type, _V.body),
    )
    .join(ENDPOINTS, _E.id == _W.endpoint_id)
    .join(EVENTS, _V.id == _W.event_id)
    .where(ids_in(_W.id, "ids", pg))
    .order_by(_W.run_at)
    for pg in (False, True)
}
_FINISH = (
    update(DELIVERIES)
    .where(_W.id == bindparam("b_id"), _W.lease_token == bindparam("b_token"))
    .values(lease_token=None)
)


def claim_due(
    connection: Connection, token: str, batch: int, now: dt.datetime, lease_end: dt.datetime
) -> list[Due]:
    """Take up to `batch` due deliveries: each counts an attempt and is due again at
    `lease_end`, so one whose sender died is sent again then (at least once)."""
    params = {"now": now, "batch": batch, "lease_end": lease_end, "token": token}
    return taken(connection, [row[0] for row in connection.execute(_TAKE, params)])


def taken(connection: Connection, ids: list[uuid.UUID]) -> list[Due]:
    """These deliveries with their endpoints and events, the earliest due first."""
    if not ids:
        return []
    rows = connection.execute(_TAKEN[is_postgres(connection)], {"ids": ids})
    return [Due(*tuple(row)) for row in rows]


def finish(connection: Connection, token: str, outcomes: list[dict[str, Any]]) -> None:
    """Store each attempt's outcome (status, run_at, last_status_code, last_error,
    delivered_at) on the rows this sender still holds."""
    for outcome in outcomes:
        params = {"b_id": outcome["id"], "b_token": token}
        values = {k: v for k, v in outcome.items() if k != "id"}
        connection.execute(_FINISH.values(**values), params)


def next_due(connection: Connection) -> dt.datetime | None:
    found = connection.execute(select(func.min(_W.run_at)).where(_W.status == PENDING))
    value: dt.datetime | None = found.scalar_one_or_none()
    return value


def endpoints_of(connection: Connection, user_id: uuid.UUID) -> list[Any]:
    query = select(ENDPOINTS).where(_E.user_id == user_id).order_by(_E.created_at, _E.id)
    return list(connection.execute(query))


def endpoint_of(connection: Connection, user_id: uuid.UUID, endpoint_id: uuid.UUID) -> Any:
    query = select(ENDPOINTS).where(_E.user_id == user_id, _E.id == endpoint_id)
    return connection.execute(query).one_or_none()


def endpoint_with_url(connection: Connection, user_id: uuid.UUID, url: str) -> uuid.UUID | None:
    query = select(_E.id).where(_E.user_id == user_id, _E.url == url)
    found: uuid.UUID | None = connection.execute(query.limit(1)).scalar_one_or_none()
    return found


def set_secret(
    connection: Connection,
    endpoint_id: uuid.UUID,
    secret: str,
    previous: str | None,
    until: dt.datetime | None,
) -> None:
    values = {"secret": secret, "previous_secret": previous, "previous_until": until}
    connection.execute(update(ENDPOINTS).where(_E.id == endpoint_id).values(**values))


def count_endpoints(connection: Connection, user_id: uuid.UUID) -> int:
    query = select(func.count()).select_from(ENDPOINTS).where(_E.user_id == user_id)
    return int(connection.execute(query).scalar_one())


def remove_endpoint(connection: Connection, user_id: uuid.UUID, endpoint_id: uuid.UUID) -> bool:
    """Delete the endpoint and its deliveries (pending ones are never sent); False if the user
    has no such endpoint."""
    connection.execute(delete(DELIVERIES).where(_W.endpoint_id == endpoint_id, _owned(user_id)))
    gone = connection.execute(delete(ENDPOINTS).where(_E.id == endpoint_id, _E.user_id == user_id))
    return bool(gone.rowcount)


def _owned(user_id: uuid.UUID) -> Any:
    return exists().where(_E.id == _W.endpoint_id, _E.user_id == user_id)


def deliveries_of(connection: Connection, endpoint_id: uuid.UUID, limit: int) -> list[Any]:
    """The endpoint's newest deliveries, with their event's id and type."""
    query = (
        select(DELIVERIES, _V.type.label("event_type"))
        .join(EVENTS, _V.id == _W.event_id)
        .where(_W.endpoint_id == endpoint_id)
        .order_by(_W.created_at.desc(), _W.id.desc())
        .limit(limit)
    )
    return list(connection.execute(query))


def purge(connection: Connection, before: dt.datetime, chunk: int = 1000) -> int:
    """Delete up to `chunk` events older than `before` that no delivery still waits to send,
    and their deliveries; how many events went."""
    old = (
        select(_V.id)
        .where(_V.created_at < before, ~exists().where(_W.event_id == _V.id, _W.status == PENDING))
        .limit(chunk)
    )
    ids = [row[0] for row in connection.execute(old)]
    if not ids:
        return 0
    connection.execute(delete(DELIVERIES).where(_W.event_id.in_(ids)))
    connection.execute(delete(EVENTS).where(_V.id.in_(ids)))
    return len(ids)
