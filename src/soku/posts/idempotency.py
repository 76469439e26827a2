"""Idempotency keys (DESIGN.md section 7).

The unique (user_id, key) insert decides which of two concurrent requests does the work: it is
written in the same transaction as the post, so the loser's insert waits for the winner's
commit (PostgreSQL) or lock (SQLite) and then fails, and the loser returns the stored answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from soku.db import utcnow
from soku.errors import IdempotencyConflict, ValidationFailed
from soku.posts.models import IdempotencyKey

if TYPE_CHECKING:
    from soku.context import AppContext

MAX_KEY_LENGTH = 255
log = structlog.get_logger("soku.idempotency")


class KeyTaken(Exception):
    """Another request holds this key; its transaction must end before the answer is read."""


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: bytes
    replayed: bool = False  # read back for a repeat of the key, not made by this request


def canonical_hash(payload: Any) -> str:
    """SHA-256 of the body as parsed JSON, so spacing and key order don't matter."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def resolve_key(header: str | None, user_id: uuid.UUID, request_hash: str, scope: str) -> str:
    """The caller's key, or one derived from the user and the body (the contract's rule)."""
    if header is None:
        derived = hashlib.sha256(f"{user_id}:{scope}:{request_hash}".encode()).hexdigest()
        return f"auto:{scope}:{derived}"
    key = header.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationFailed.from_problems(
            [
                {
                    "field": "Idempotency-Key",
                    "reason": "invalid",
                    "message": f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable "
                    "characters.",
                }
            ]
        )
    return f"{scope}:{key}"


async def lookup(
    session: AsyncSession, user_id: uuid.UUID, key: str, request_hash: str, now: dt.datetime
) -> StoredResponse | None:
    """The stored answer for this key, 409 if it was used with another body, None if free."""
    stmt = select(IdempotencyKey).where(
        IdempotencyKey.user_id == user_id,
        IdempotencyKey.key == key,
        IdempotencyKey.expires_at > now,
    )
    row = (await session.execute(stmt)).scalar_one_or_none()
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise IdempotencyConflict(details={"idempotencyKey": key.split(":", 1)[1]})
    return StoredResponse(row.response_status, row.response_body, replayed=True)


_INSERT_KEY = insert(IdempotencyKey)  # built once: compiled once


def claim_in(
    connection: Connection,
    user_id: uuid.UUID,
    key: str,
    request_hash: str,
    response: StoredResponse,
    now: dt.datetime,
    ttl_seconds: int,
) -> None:
    """Insert the key row with its answer; KeyTaken when another request holds the key."""
    params = {
        "user_id": user_id,
        "key": key,
        "request_hash": request_hash,
        "response_status": response.status,
        "response_body": response.body,
        "created_at": now,
        "expires_at": now + dt.timedelta(seconds=ttl_seconds),
    }
    try:
        connection.execute(_INSERT_KEY, params)
    except IntegrityError as exc:
        raise KeyTaken from exc


async def claim(
    session: AsyncSession,
    user_id: uuid.UUID,
    key: str,
    request_hash: str,
    response: StoredResponse,
    now: dt.datetime,
    ttl_seconds: int,
) -> None:
    """`claim_in` on the session's connection."""
    connection = await session.connection()
    await connection.run_sync(claim_in, user_id, key, request_hash, response, now, ttl_seconds)


async def drop_expired(
    session: AsyncSession, user_id: uuid.UUID, key: str, now: dt.datetime
) -> None:
    await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.key == key,
            IdempotencyKey.expires_at <= now,
        )
    )


async def purge_expired(session: AsyncSession, now: dt.datetime) -> int:
    result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= now))
    return int(getattr(result, "rowcount", 0) or 0)


async def purge_idempotency_keys(ctx: AppContext) -> None:
    """Delete expired keys now and then, for as long as the service runs."""
    while True:
        try:
            async with ctx.db.transaction() as session:
                purged = await purge_expired(session, utcnow())
            log.info("idempotency_keys_purged", count=purged)
        except Exception:
            log.exception("idempotency_purge_failed")
        await asyncio.sleep(ctx.settings.idempotency_purge_seconds)
