"""SQL for connect flows under way (`oauth_states`): made, used once, purged when stale.

The `state` a flow sends to the platform is random (256 bits); only its SHA-256 is stored,
so a database read gives no one a state to replay. Using one is a DELETE … RETURNING of its
row: of two callbacks carrying one state, exactly one gets the row.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from soku.auth.keys import hash_key as state_hash  # SHA-256, as API keys are stored
from soku.db import utcnow
from soku.integrations.models import OAuthState, OAuthStep

LIFETIME = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class PendingFlow:
    """A used state's row, as it was (tokens still sealed)."""

    user_id: uuid.UUID
    platform: str
    account_id: str
    sandbox: bool
    step: str
    code_verifier: str | None
    interim_token: str | None
    expires_at: dt.datetime

    @property
    def expired(self) -> bool:
        return self.expires_at <= utcnow()


async def open_flow(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    platform: str,
    account_id: str,
    sandbox: bool,
    step: OAuthStep = OAuthStep.authorize,
    code_verifier: str | None = None,
    interim_token: str | None = None,
) -> str:
    """A new flow's row; returns its state. Rows past their time go first."""
    await purge_expired(session)
    state, now = secrets.token_urlsafe(32), utcnow()
    session.add(
        OAuthState(
            state_hash=state_hash(state),
            user_id=user_id,
            platform=platform,
            account_id=account_id,
            sandbox=sandbox,
            step=step,
            code_verifier=code_verifier,
            interim_token=interim_token,
            created_at=now,
            expires_at=now + LIFETIME,
        )
    )
    await session.flush()
    return state


async def take_flow(session: AsyncSession, state: str) -> PendingFlow | None:
    """The flow of `state`, deleted as it is read (None: unknown, or used already)."""
    stmt = (
        delete(OAuthState)
        .where(OAuthState.state_hash == state_hash(state))
        .returning(
            OAuthState.user_id,
            OAuthState.platform,
            OAuthState.account_id,
            OAuthState.sandbox,
            OAuthState.step,
            OAuthState.code_verifier,
            OAuthState.interim_token,
            OAuthState.expires_at,
        )
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else PendingFlow(**row._mapping)


async def purge_expired(session: AsyncSession) -> int:
    result = await session.execute(delete(OAuthState).where(OAuthState.expires_at <= utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)
