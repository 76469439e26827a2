"""SQL for users and API keys."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from soku.auth.models import ApiKey, User


async def key_with_user(session: AsyncSession, key_hash: str) -> tuple[ApiKey, User] | None:
    stmt = select(ApiKey, User).join(User, User.id == ApiKey.user_id)
    row = (await session.execute(stmt.where(ApiKey.key_hash == key_hash))).first()
    return (row[0], row[1]) if row else None


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    return (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()


async def keys_matching(session: AsyncSession, key_hash: str, prefix: str) -> list[ApiKey]:
    stmt = select(ApiKey).where((ApiKey.key_hash == key_hash) | (ApiKey.prefix == prefix))
    return list((await session.execute(stmt)).scalars())


async def keys_of(session: AsyncSession, user_id: uuid.UUID) -> list[ApiKey]:
    """A user's keys, oldest first, revoked ones included."""
    stmt = select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at, ApiKey.id)
    return list((await session.execute(stmt)).scalars())


async def key_of(session: AsyncSession, user_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey | None:
    stmt = select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def touch_key(session: AsyncSession, key_id: uuid.UUID, when: dt.datetime) -> None:
    await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=when))


async def user_by_id(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)
