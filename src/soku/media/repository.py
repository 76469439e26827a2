"""SQL for stored media."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from soku.delivery.models import UNFINISHED
from soku.media.models import Media
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


async def remove(session: AsyncSession, media: Media) -> bool:
    """Delete the row; True when no other row uses the same stored object."""
    await session.execute(delete(Media).where(Media.id == media.id))
    stmt = select(func.count()).select_from(Media).where(Media.storage_key == media.storage_key)
    return int((await session.execute(stmt)).scalar_one()) == 0
