"""SQL for dashboard sign-ins (`dashboard_sessions`): opened by the sign-in form, read on every
page with their key and user, listed for their user (all of its keys), ended by sign-out or by
the user from the list (deleted) or by revoking the key (expired), purged when stale.

The cookie carries a random token (256 bits); only its SHA-256 is stored.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from soku.auth.keys import hash_key as token_hash  # SHA-256, as API keys are stored
from soku.auth.models import ApiKey, User
from soku.dashboard.models import DashboardSession
from soku.db import utcnow

LIFETIME = dt.timedelta(hours=12)
SEEN_EVERY = dt.timedelta(minutes=5)  # `last_seen_at` is written at most this often


async def open_sign_in(session: AsyncSession, key_id: uuid.UUID) -> str:
    """A new sign-in with the key `key_id`; returns the token its cookie carries. Sign-ins
    past their time go first."""
    await purge_expired(session)
    token, now = secrets.token_urlsafe(32), utcnow()
    session.add(
        DashboardSession(
            token_hash=token_hash(token),
            key_id=key_id,
            created_at=now,
            expires_at=now + LIFETIME,
            last_seen_at=now,
        )
    )
    await session.flush()
    return token


async def sign_in_of(
    session: AsyncSession, token: str
) -> tuple[DashboardSession, ApiKey, User] | None:
    """The sign-in whose cookie carries `token`, with its key and user (expired or revoked
    ones too: the caller tells them apart)."""
    stmt = (
        select(DashboardSession, ApiKey, User)
        .join(ApiKey, ApiKey.id == DashboardSession.key_id)
        .join(User, User.id == ApiKey.user_id)
        .where(DashboardSession.token_hash == token_hash(token))
    )
    row = (await session.execute(stmt)).first()
    return (row[0], row[1], row[2]) if row else None


async def seen(session: AsyncSession, sign_in_id: uuid.UUID, when: dt.datetime) -> None:
    stmt = update(DashboardSession).where(DashboardSession.id == sign_in_id)
    await session.execute(stmt.values(last_seen_at=when))


async def end_sign_in(session: AsyncSession, sign_in_id: uuid.UUID) -> None:
    await session.execute(delete(DashboardSession).where(DashboardSession.id == sign_in_id))


async def live_sign_ins_of_user(
    session: AsyncSession, user_id: uuid.UUID
) -> list[tuple[DashboardSession, ApiKey]]:
    """The user's sign-ins not yet over, opened with any of their keys, newest first, each
    with its key. A revoked key's sign-ins were expired with it, so none of them is listed."""
    stmt = (
        select(DashboardSession, ApiKey)
        .join(ApiKey, ApiKey.id == DashboardSession.key_id)
        .where(ApiKey.user_id == user_id, DashboardSession.expires_at > utcnow())
        .order_by(DashboardSession.created_at.desc(), DashboardSession.id)
    )
    return [(row[0], row[1]) for row in await session.execute(stmt)]


async def end_live_sign_in_of_user(
    session: AsyncSession, user_id: uuid.UUID, sign_in_id: uuid.UUID
) -> bool:
    """Ends (deletes) one of the user's sign-ins not yet over; False when `sign_in_id` names
    none of them (another user's, one already ended, or no sign-in at all)."""
    stmt = delete(DashboardSession).where(
        DashboardSession.id == sign_in_id,
        DashboardSession.key_id.in_(select(ApiKey.id).where(ApiKey.user_id == user_id)),
        DashboardSession.expires_at > utcnow(),
    )
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0))


async def end_other_sign_ins_of_user(
    session: AsyncSession, user_id: uuid.UUID, keep_id: uuid.UUID
) -> int | None:
    """Ends (deletes) every sign-in of the user not yet over but `keep_id`; how many, or None
    (and nothing ended) when `keep_id` itself is no longer open.

    The user's open sign-ins, `keep_id`'s too, are locked in the order of their ids first: two
    browsers of one user asking at once then take turns, and the second finds its own sign-in
    ended by the first, rather than each deleting the other's (neither left signed in) or
    deadlocking on PostgreSQL by locking in whatever order a plan scans. (SQLite has one
    writer at a time and ignores the clause.)"""
    mine = (
        select(DashboardSession.id)
        .where(
            DashboardSession.key_id.in_(select(ApiKey.id).where(ApiKey.user_id == user_id)),
            DashboardSession.expires_at > utcnow(),
        )
        .order_by(DashboardSession.id)
        .with_for_update()
    )
    open_ids = set((await session.execute(mine)).scalars())
    if keep_id not in open_ids:
        return None
    doomed = open_ids - {keep_id}
    if doomed:
        await session.execute(delete(DashboardSession).where(DashboardSession.id.in_(doomed)))
    return len(doomed)


async def end_token(session: AsyncSession, token: str) -> None:
    """Ends the sign-in of `token`, if there is one (a browser that signs in again)."""
    stmt = delete(DashboardSession).where(DashboardSession.token_hash == token_hash(token))
    await session.execute(stmt)


async def end_sign_ins_of_key(session: AsyncSession, key_id: uuid.UUID) -> int:
    """Ends every sign-in opened with the key `key_id`, which is being revoked. The rows are
    expired rather than deleted (purged once their 12 hours are over), so that a browser
    still holding one is told its key was revoked rather than only that its session ended.
    The rows are locked in id order first, as `end_other_sign_ins_of_user` locks them: an
    UPDATE alone locks in whatever order its plan scans, and could deadlock with it."""
    now = utcnow()
    live = (DashboardSession.key_id == key_id, DashboardSession.expires_at > now)
    locked = select(DashboardSession.id).where(*live).order_by(DashboardSession.id)
    ids = list((await session.execute(locked.with_for_update())).scalars())
    if ids:
        stmt = update(DashboardSession).where(DashboardSession.id.in_(ids))
        await session.execute(stmt.values(expires_at=now))
    return len(ids)


async def purge_expired(session: AsyncSession) -> int:
    """Deletes the sign-ins whose whole `LIFETIME` is over (their cookie can no longer be
    read). One ended early by revoking its key stays until then, so that its browser is told
    its key was revoked, not only that its session ended.

    Rows another transaction holds are skipped, not waited on: sign-ins opened at once each
    end their browser's earlier sign-in (which may be expired, its key revoked) and then
    purge, so on PostgreSQL a plain DELETE of every expired row waited on the others' rows
    while they waited on its own (a deadlock, a 500). A row skipped is purged by a later
    sign-in. (SQLite has one writer at a time and ignores the clause.)"""
    now = utcnow()
    expired = (
        select(DashboardSession.id)
        .where(DashboardSession.expires_at <= now, DashboardSession.created_at <= now - LIFETIME)
        .with_for_update(skip_locked=True)
    )
    stmt = delete(DashboardSession).where(DashboardSession.id.in_(expired))
    result = await session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)
