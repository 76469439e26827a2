"""SQL for connected accounts."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from soku.integrations.models import Account, AccountRef, AccountStatus
from soku.platforms import PLATFORM_NAMES

_SLOTS = len(PLATFORM_NAMES)  # one parameter per platform: no expanding IN, one compiled form
_USABLE_ACCOUNTS = (
    select(Account.id, Account.platform, Account.account_id)
    .where(
        Account.user_id == bindparam("user_id"),
        Account.platform.in_([bindparam(f"p{n}") for n in range(_SLOTS)]),
        Account.status != AccountStatus.disconnected,
    )
    .order_by(Account.created_at)
)


def usable_accounts_in(
    connection: Connection, user_id: uuid.UUID, platforms: Iterable[str]
) -> list[AccountRef]:
    """The user's accounts on these platforms that have not been disconnected, oldest first:
    what targeting needs of each (id, platform, account_id)."""
    names = sorted(set(platforms))
    if not names:
        return []
    if len(names) > _SLOTS:
        raise ValueError(f"more than {_SLOTS} platforms: {names}")
    slots = {f"p{n}": names[min(n, len(names) - 1)] for n in range(_SLOTS)}
    rows = connection.execute(_USABLE_ACCOUNTS, {"user_id": user_id, **slots})
    return [AccountRef(*row) for row in rows]


async def accounts_of(session: AsyncSession, user_id: uuid.UUID) -> list[Account]:
    stmt = select(Account).where(Account.user_id == user_id)
    return list(
        (await session.execute(stmt.order_by(Account.platform, Account.account_id))).scalars()
    )


async def find_account(
    session: AsyncSession, user_id: uuid.UUID, platform: str, account_id: str
) -> Account | None:
    if "\x00" in account_id:  # none holds a NUL (PostgreSQL refuses one even in a query)
        return None
    stmt = select(Account).where(
        Account.user_id == user_id, Account.platform == platform, Account.account_id == account_id
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def unfinished_deliveries(session: AsyncSession, account_ref: uuid.UUID) -> int:
    """How many of the account's deliveries have not finished (scheduled, queued, running)."""
    from soku.delivery.models import UNFINISHED, Delivery

    stmt = select(func.count()).select_from(Delivery)
    stmt = stmt.where(Delivery.account_ref == account_ref, Delivery.status.in_(UNFINISHED))
    return int(await session.scalar(stmt) or 0)
