"""Operator actions on users and keys (used by the CLI and the tests)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from soku.auth import repository
from soku.auth.keys import DISPLAY_LENGTH, display_prefix, hash_key, new_key
from soku.auth.models import ApiKey, SubscriptionStatus, User
from soku.db import utcnow
from soku.errors import Conflict, NotFound, ValidationFailed


@dataclass(frozen=True)
class IssuedKey:
    key: str
    record: ApiKey


def _bad(field: str, message: str) -> ValidationFailed:
    return ValidationFailed.from_problems(
        [{"field": field, "reason": "invalid", "message": message}]
    )


def check_email(email: str) -> str:
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or not domain or " " in email or len(email) > 320:
        raise _bad("email", f"{email!r} is not an email address.")
    return email


async def require_user(session: AsyncSession, email: str) -> User:
    user = await repository.user_by_email(session, check_email(email))
    if user is None:
        raise NotFound(f"No user {email}.")
    return user


async def create_user(
    session: AsyncSession, email: str, subscription: SubscriptionStatus, plan: str
) -> User:
    email = check_email(email)
    if await repository.user_by_email(session, email) is not None:
        raise Conflict(f"User {email} exists already.")
    user = User(email=email, subscription_status=subscription.value, plan=plan, created_at=utcnow())
    session.add(user)
    await session.flush()
    return user


MAX_NAME_LENGTH = 200


def check_key_name(name: str | None) -> str | None:
    """A key's name as stored: trimmed, None when empty, at most MAX_NAME_LENGTH characters
    that PostgreSQL can store."""
    name = name.strip() if name is not None else None
    if not name:
        return None
    if len(name) > MAX_NAME_LENGTH:
        raise _bad("name", f"A key's name is at most {MAX_NAME_LENGTH} characters.")
    if not name.isprintable():  # no NUL (PostgreSQL), no line breaks in a listing
        raise _bad("name", "A key's name must not contain control characters.")
    return name


async def issue_key(session: AsyncSession, user: User, name: str | None) -> IssuedKey:
    name = check_key_name(name)
    key = new_key()
    record = ApiKey(
        user_id=user.id,
        prefix=display_prefix(key),
        key_hash=hash_key(key),
        name=name,
        created_at=utcnow(),
    )
    session.add(record)
    await session.flush()
    return IssuedKey(key=key, record=record)


async def revoke_key_of(session: AsyncSession, user_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    """Revoke one of the user's keys by its id (NotFound for another user's); revoking a
    revoked key changes nothing."""
    record = await repository.key_of(session, user_id, key_id)
    if record is None:
        raise NotFound(f"No API key {key_id}.")
    if record.revoked_at is None:
        record.revoked_at = utcnow()
    await session.flush()
    return record


async def revoke_key(session: AsyncSession, key_or_prefix: str) -> ApiKey:
    """Revoke by the whole key or by its displayed prefix (which must match exactly one key)."""
    matches = await repository.keys_matching(session, hash_key(key_or_prefix), key_or_prefix)
    # a whole key given is named by its prefix only: the output may go to a log or a terminal
    shown = (
        display_prefix(key_or_prefix) + "…"
        if len(key_or_prefix) > DISPLAY_LENGTH
        else key_or_prefix
    )
    if not matches:
        raise NotFound(f"No API key matches {shown!r}.")
    if len(matches) > 1:
        raise Conflict(f"{len(matches)} keys match {shown!r}; give the whole key.")
    record = matches[0]
    if record.revoked_at is None:
        record.revoked_at = utcnow()
    await session.flush()
    return record
