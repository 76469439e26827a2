"""Recording events, inside the transaction that changed what they report.

`record_post_events` runs where a post's derived status is stored (`refresh_post_statuses`,
which every status change goes through). For a post that reached an outcome (published,
partially published, failed) and whose owner has an endpoint that wants that event, it writes
the event, with the post as `GET /v1/posts/{id}` shows it at that moment, and one delivery per
endpoint. A user without endpoints costs one indexed query per group of changed posts.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Mapping
from typing import Any, cast

from sqlalchemy import Connection, Table, insert, select

from soku.db import dump_json, ids_in, is_postgres
from soku.posts.models import Post
from soku.webhooks.models import (
    EventType,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookStatus,
)

ENDPOINTS = cast(Table, WebhookEndpoint.__table__)
EVENTS = cast(Table, WebhookEvent.__table__)
DELIVERIES = cast(Table, WebhookDelivery.__table__)
_POSTS = cast(Table, Post.__table__)
_E = ENDPOINTS.c

STATUS_EVENTS = {
    "published": EventType.post_published,
    "partially_published": EventType.post_partially_published,
    "failed": EventType.post_failed,
}
_ENDPOINTS_OF_POSTS = {  # by is_postgres: a group's posts as one array there (see ids_in)
    pg: select(_POSTS.c.id, _POSTS.c.user_id, _E.id, _E.events)
    .join(ENDPOINTS, _E.user_id == _POSTS.c.user_id)
    .where(ids_in(_POSTS.c.id, "post_ids", pg))
    .order_by(_E.created_at)
    for pg in (False, True)
}
_ADD_EVENT = insert(EVENTS)
_ADD_DELIVERIES = insert(DELIVERIES)


def stamp(moment: dt.datetime) -> str:
    """A UTC time as the API writes it (`2026-12-01T10:00:00.123456Z`)."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def record_post_events(
    connection: Connection, statuses: Mapping[uuid.UUID, str], now: dt.datetime
) -> int:
    """Events for the posts whose new status is an outcome; how many were written."""
    wanted = {p: STATUS_EVENTS[s] for p, s in statuses.items() if s in STATUS_EVENTS}
    if not wanted:
        return 0
    targets: dict[uuid.UUID, tuple[uuid.UUID, list[uuid.UUID]]] = {}
    for post_id, user_id, endpoint_id, events in connection.execute(
        _ENDPOINTS_OF_POSTS[is_postgres(connection)], {"post_ids": list(wanted)}
    ):
        if wanted[post_id].value in events:
            targets.setdefault(post_id, (user_id, []))[1].append(endpoint_id)
    if not targets:
        return 0
    from soku.posts.service import read_post  # posts.service builds on delivery.repository

    for post_id, (user_id, endpoints) in targets.items():
        view = read_post(connection, user_id, post_id).model_dump(mode="json")
        add_event(connection, user_id, wanted[post_id], view, endpoints, now)
    return len(targets)


def add_event(
    connection: Connection,
    user_id: uuid.UUID,
    kind: EventType,
    data: dict[str, Any],
    endpoint_ids: Collection[uuid.UUID],
    now: dt.datetime,
) -> uuid.UUID:
    """One event and a pending delivery of it to each endpoint, due now."""
    event_id = uuid.uuid4()
    body = {"id": str(event_id), "type": kind.value, "createdAt": stamp(now), "data": data}
    connection.execute(
        _ADD_EVENT,
        {
            "id": event_id,
            "user_id": user_id,
            "type": kind.value,
            "body": dump_json(body),
            "created_at": now,
        },
    )
    rows = [
        {
            "id": uuid.uuid4(),
            "event_id": event_id,
            "endpoint_id": endpoint_id,
            "status": WebhookStatus.pending.value,
            "attempts": 0,
            "run_at": now,
            "created_at": now,
        }
        for endpoint_id in endpoint_ids
    ]
    if rows:
        connection.execute(_ADD_DELIVERIES, rows)
    return event_id
