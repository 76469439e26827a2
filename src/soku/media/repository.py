"""SQL for stored media."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Iterable, Sequence

from sqlalchemy import Connection, delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from soku.db import is_postgres
from soku.delivery.models import UNFINISHED
from soku.media.models import Media, MediaPin
from soku.posts.models import Post


async def get(
    session: AsyncSession, user_id: uuid.UUID, media_id: uuid.UUID, *, lock: bool = False
) -> Media | None:
    """With `lock`, the row is locked for the delete first (PostgreSQL), so that a post being
    accepted with it either commits before the check of pending posts or finds it gone."""
    stmt = select(Media).where(Media.id == media_id, Media.user_id == user_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def by_token(session: AsyncSession, token: str) -> Media | None:
    stmt = select(Media).where(Media.public_token == token)
    return (await session.execute(stmt)).scalar_one_or_none()


async def by_tokens(
    session: AsyncSession, user_id: uuid.UUID, tokens: Sequence[str]
) -> dict[str, Media]:
    if not tokens:
        return {}
    stmt = select(Media).where(Media.user_id == user_id, Media.public_token.in_(tokens))
    return {m.public_token: m for m in (await session.execute(stmt)).scalars()}


async def stored_tokens(session: AsyncSession, tokens: Sequence[str]) -> set[str]:
    """Which of these public tokens name stored media, of any user."""
    if not tokens:
        return set()
    stmt = select(Media.public_token).where(Media.public_token.in_(tokens))
    return set((await session.scalars(stmt)).all())


async def by_ids(session: AsyncSession, ids: Sequence[str]) -> dict[str, Media]:
    if not ids:
        return {}
    stmt = select(Media).where(Media.id.in_([uuid.UUID(i) for i in ids]))
    return {str(m.id): m for m in (await session.execute(stmt)).scalars()}


async def used_by_pending_post(session: AsyncSession, user_id: uuid.UUID, media_id: str) -> bool:
    """Whether a post that has not finished still names this media."""
    stmt = select(Post.media_ids).where(Post.user_id == user_id, Post.status.in_(UNFINISHED))
    return any(media_id in (ids or []) for ids in (await session.execute(stmt)).scalars())


# A pin this old is a crashed request's: it holds its object no longer.
PIN_LIFETIME = dt.timedelta(hours=1)
# A 64-bit hash of the key, the one lock number of every transaction that changes its holders.
_LOCK_KEY = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")


def lock_keys(connection: Connection, keys: Iterable[str]) -> None:
    """Until the transaction ends, no other one changes these keys' rows or pins (taken in
    sorted order, so two of them never wait on each other). PostgreSQL only: a SQLite write
    transaction has the whole database to itself already."""
    if not is_postgres(connection):
        return
    for key in sorted(set(keys)):
        connection.execute(_LOCK_KEY, {"key": key})


def add_pin(connection: Connection, pin_id: uuid.UUID, key: str, now: dt.datetime) -> None:
    lock_keys(connection, [key])
    connection.execute(insert(MediaPin).values(id=pin_id, storage_key=key, created_at=now))


def drop_pins(connection: Connection, pin_ids: Collection[uuid.UUID]) -> None:
    if pin_ids:
        connection.execute(delete(MediaPin).where(MediaPin.id.in_(list(pin_ids))))


def holders(connection: Connection, key: str, now: dt.datetime) -> int:
    """The media rows and live pins on the key: zero, and its object may go."""
    rows = select(func.count()).select_from(Media).where(Media.storage_key == key)
    pins = select(func.count()).select_from(MediaPin)
    pins = pins.where(MediaPin.storage_key == key, MediaPin.created_at > now - PIN_LIFETIME)
    stmt = select(rows.scalar_subquery() + pins.scalar_subquery())
    return int(connection.execute(stmt).scalar_one())


def stale_pin_keys(connection: Connection, now: dt.datetime) -> list[str]:
    """The keys that crashed requests' pins (older than PIN_LIFETIME) are left on."""
    stmt = select(MediaPin.storage_key).where(MediaPin.created_at <= now - PIN_LIFETIME)
    return sorted(set(connection.execute(stmt.distinct()).scalars()))


def leave_key(
    connection: Connection,
    key: str,
    now: dt.datetime,
    *,
    media_id: uuid.UUID | None = None,
    pin_ids: Collection[uuid.UUID] = (),
) -> bool:
    """Under the key's lock: drop a media row or pins on it, and a crashed request's pins;
    True when nothing holds the key any more (the caller deletes the object once this
    transaction has committed, see `unused_key`)."""
    lock_keys(connection, [key])
    if media_id is not None:
        connection.execute(delete(Media).where(Media.id == media_id))
    drop_pins(connection, pin_ids)
    stale = MediaPin.storage_key == key, MediaPin.created_at <= now - PIN_LIFETIME
    connection.execute(delete(MediaPin).where(*stale))
    return holders(connection, key, now) == 0


def unused_key(connection: Connection, key: str, now: dt.datetime) -> bool:
    """Under the key's lock: nothing holds it (its object may be deleted before this
    transaction ends)."""
    lock_keys(connection, [key])
    return holders(connection, key, now) == 0
