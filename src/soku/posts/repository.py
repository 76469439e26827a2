"""SQL for posts and their deliveries."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, and_, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from soku.db import ids_in, is_postgres
from soku.delivery.models import NOT_STARTED, Delivery, DeliveryAttempt, DeliveryStatus
from soku.integrations.models import AccountRef
from soku.posts.models import Post

# Built once: a statement object keeps its compiled form and cache key between requests.
_INSERT_POST = insert(Post)
_INSERT_DELIVERIES = insert(Delivery)


def insert_post(
    connection: Connection,
    post_id: uuid.UUID,
    user_id: uuid.UUID,
    content: dict[str, Any],
    scheduled: dt.datetime | None,
    accounts: Sequence[AccountRef],
    now: dt.datetime,
    request_id: str | None = None,
    media_ids: Sequence[str] = (),
) -> None:
    """The post and one delivery per target account: two Core statements, the deliveries in
    one executemany."""
    status = DeliveryStatus.scheduled if scheduled else DeliveryStatus.queued
    connection.execute(
        _INSERT_POST,
        {
            "id": post_id,
            "user_id": user_id,
            "content": content,
            "scheduled_time": scheduled,
            "status": status.value,
            "request_id": request_id,
            "media_ids": list(media_ids),
            "created_at": now,
            "updated_at": now,
        },
    )
    connection.execute(
        _INSERT_DELIVERIES,
        [
            {
                "id": uuid.uuid4(),
                "post_id": post_id,
                "user_id": user_id,
                "account_ref": account.id,
                "position": position,
                "platform": account.platform,
                "account_id": account.account_id,
                "status": status.value,
                "run_at": scheduled or now,
                "attempts": 0,
                "checkpoint": {},
                "created_at": now,
                "updated_at": now,
            }
            for position, account in enumerate(accounts)
        ],
    )


@dataclass(frozen=True)
class PostFilter:
    status: str | None = None
    platform: str | None = None
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None


# Built once, with bound parameters: a read of a post neither builds a statement nor computes
# its cache key again (a tenth of a GET's CPU).
POST_OF: Select[Post] = select(Post).where(
    Post.id == bindparam("post_id"), Post.user_id == bindparam("user_id")
)
DELIVERIES_IN: dict[bool, Select[Delivery]] = {  # by is_postgres (see ids_in)
    pg: select(Delivery).where(ids_in(Delivery.post_id, "post_ids", pg)).order_by(Delivery.position)
    for pg in (False, True)
}


def deliveries_by_post(
    session: Session, post_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Delivery]]:
    """Each post's deliveries in target order."""
    grouped: dict[uuid.UUID, list[Delivery]] = defaultdict(list)
    if not post_ids:
        return grouped
    statement = DELIVERIES_IN[is_postgres(session)]
    for delivery in session.execute(statement, {"post_ids": list(post_ids)}).scalars():
        grouped[delivery.post_id].append(delivery)
    return grouped


def attempts_by_delivery(
    connection: Connection, delivery_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[DeliveryAttempt]]:
    """Each delivery's recorded attempts, oldest first (retried ones included)."""
    grouped: dict[uuid.UUID, list[DeliveryAttempt]] = defaultdict(list)
    if not delivery_ids:
        return grouped
    stmt = (
        select(DeliveryAttempt)
        .where(ids_in(DeliveryAttempt.delivery_id, "ids", is_postgres(connection)))
        .order_by(DeliveryAttempt.started_at, DeliveryAttempt.id)
    )
    with Session(bind=connection) as session:  # joins the connection's transaction
        for attempt in session.execute(stmt, {"ids": list(delivery_ids)}).scalars():
            grouped[attempt.delivery_id].append(attempt)
    return grouped


def list_posts(
    session: Session,
    user_id: uuid.UUID,
    where: PostFilter,
    after: tuple[dt.datetime, uuid.UUID] | None,
    limit: int,
) -> list[Post]:
    """Newest first; `after` is the (created_at, id) of the last post of the previous page."""
    stmt = select(Post).where(Post.user_id == user_id)
    if where.status:
        stmt = stmt.where(Post.status == where.status)
    if where.platform:
        on_platform = select(Delivery.post_id).where(
            Delivery.user_id == user_id, Delivery.platform == where.platform
        )
        stmt = stmt.where(Post.id.in_(on_platform))
    if where.created_from:
        stmt = stmt.where(Post.created_at >= where.created_from)
    if where.created_to:
        stmt = stmt.where(Post.created_at < where.created_to)
    if after is not None:
        created, post_id = after
        stmt = stmt.where(
            or_(Post.created_at < created, and_(Post.created_at == created, Post.id < post_id))
        )
    stmt = stmt.order_by(Post.created_at.desc(), Post.id.desc()).limit(limit)
    return list(session.execute(stmt).scalars())


async def set_waiting_deliveries(
    session: AsyncSession, post_id: uuid.UUID, now: dt.datetime, **values: object
) -> int:
    """Change the deliveries that no worker has claimed; returns how many changed."""
    stmt = (
        update(Delivery)
        .where(Delivery.post_id == post_id, Delivery.status.in_([s.value for s in NOT_STARTED]))
        .values(updated_at=now, **values)
    )
    result = await session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)


def cancelled_values() -> dict[str, object]:
    return {"status": DeliveryStatus.cancelled.value}


async def retry_finished_deliveries(
    session: AsyncSession, post_id: uuid.UUID, now: dt.datetime
) -> int:
    """Failed and unknown deliveries back to the queue, due now, with a fresh attempt count."""
    stmt = (
        update(Delivery)
        .where(
            Delivery.post_id == post_id,
            Delivery.status.in_([DeliveryStatus.failed.value, DeliveryStatus.unknown.value]),
        )
        .values(
            status=DeliveryStatus.queued.value,
            run_at=now,
            attempts=0,
            error=None,
            checkpoint={},
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)
