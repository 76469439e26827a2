"""SQL for connected accounts."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from soku.integrations.models import Account, AccountStatus


async def usable_accounts(
    session: AsyncSession, user_id: uuid.UUID, platforms: Iterable[str]
) -> list[Account]:
    """The user's accounts on these platforms that have not been disconnected."""
    stmt = select(Account).where(
        Account.user_id == user_id,
        Account.platform.in_(list(platforms)),
        Account.status != AccountStatus.disconnected,
    )
    return list((await session.execute(stmt.order_by(Account.created_at))).scalars())


async def accounts_of(session: AsyncSession, user_id: uuid.UUID) -> list[Account]:
    stmt = select(Account).where(Account.user_id == user_id)
    return list(
        (await session.execute(stmt.order_by(Account.platform, Account.account_id))).scalars()
    )


async def find_account(
    session: AsyncSession, user_id: uuid.UUID, platform: str, account_id: str
) -> Account | None:
    stmt = select(Account).where(
        Account.user_id == user_id, Account.platform == platform, Account.account_id == account_id
    )
    return (await session.execute(stmt)).scalar_one_or_none()
