"""A short-lived in-process cache of API key lookups: key hash -> the key's and user's facts.

It spares every authenticated request a session and a query. The bound on staleness:
- a change committed through an ORM session of this process (a key revoked, a subscription
  or plan changed by `soku.operations` or the auth service) empties every cache at commit;
- a change made elsewhere (the `soku` CLI, another server process, a hand-written UPDATE) is
  seen at the latest TTL_SECONDS after it was committed: an entry is never used once older.
Unknown keys are not cached (each one reaches the database, behind the anonymous limit).
"""

from __future__ import annotations

import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from soku.auth.models import ApiKey, User

TTL_SECONDS = 5.0
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class KeyFacts:
    """What authentication needs of a key and its user, as read at `read_at`."""

    key_id: uuid.UUID
    key_hash: str
    revoked: bool
    user_id: uuid.UUID
    email: str
    subscription_status: str
    plan: str

    @classmethod
    def of(cls, key: ApiKey, user: User) -> KeyFacts:
        return cls(
            key_id=key.id,
            key_hash=key.key_hash,
            revoked=key.revoked_at is not None,
            user_id=user.id,
            email=user.email,
            subscription_status=user.subscription_status,
            plan=user.plan,
        )


class KeyCache:
    def __init__(
        self,
        ttl_seconds: float = TTL_SECONDS,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[str, tuple[float, KeyFacts]] = {}
        _ALL.add(self)

    def get(self, key_hash: str) -> KeyFacts | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        expires, facts = entry
        if self.clock() >= expires:
            del self._entries[key_hash]
            return None
        return facts

    def put(self, key_hash: str, facts: KeyFacts) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # crude, but bounded and rare: a refill costs one query each
        self._entries[key_hash] = (self.clock() + self.ttl_seconds, facts)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


_ALL: weakref.WeakSet[KeyCache] = weakref.WeakSet()
_CHANGED = "soku_auth_changed"


@event.listens_for(Session, "after_flush")
def _note_auth_change(session: Session, _context: Any) -> None:
    changed = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(obj, ApiKey | User) for obj in changed):
        session.info[_CHANGED] = True


@event.listens_for(Session, "after_commit")
def _clear_on_commit(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        for cache in list(_ALL):
            cache.clear()


@event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    session.info.pop(_CHANGED, None)
