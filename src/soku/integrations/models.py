"""Connected accounts: the destinations a user's posts can go to."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import NamedTuple

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from soku.db import Base, UTCDateTime, utcnow


class AccountStatus(StrEnum):
    connected = "connected"
    needs_reauth = "needs_reauth"
    disconnected = "disconnected"


class AccountRef(NamedTuple):
    """What targeting and a new post's deliveries need of a connected account: its row id,
    platform and the platform's account id (a plain tuple: no ORM object per account read)."""

    id: uuid.UUID
    platform: str
    account_id: str


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("user_id", "platform", "account_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[str] = mapped_column(String(200))
    platform_user_id: Mapped[str | None] = mapped_column(String(200))
    username: Mapped[str | None] = mapped_column(String(200))
    access_token: Mapped[str | None] = mapped_column(Text)  # encrypted (integrations.vault)
    refresh_token: Mapped[str | None] = mapped_column(Text)  # encrypted
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    scopes: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=AccountStatus.connected)
    sandbox: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class OAuthStep(StrEnum):
    authorize = "authorize"  # sent to the platform's consent page; its callback comes back
    choose = "choose"  # back from the platform; the user picks which account (Facebook Page)


class OAuthState(Base):
    """A connect flow under way: made when the user starts it, deleted when it is used.

    Only the SHA-256 of the `state` sent to the platform is kept; the PKCE verifier and
    any token held between two steps are sealed with the vault, as account tokens are.
    """

    __tablename__ = "oauth_states"
    __table_args__ = (Index("ix_oauth_states_expires", "expires_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[str] = mapped_column(String(200))
    sandbox: Mapped[bool] = mapped_column(Boolean)
    step: Mapped[str] = mapped_column(String(16), default=OAuthStep.authorize)
    code_verifier: Mapped[str | None] = mapped_column(Text)  # sealed
    interim_token: Mapped[str | None] = mapped_column(Text)  # sealed
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
