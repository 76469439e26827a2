"""The dashboard's sign-ins, stored so that signing out ends one everywhere."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from soku.db import Base, UTCDateTime, utcnow


class DashboardSession(Base):
    """One sign-in: made by the sign-in form, deleted by sign-out, by revoking its key (and
    with the key or user through ON DELETE CASCADE), or once past `expires_at`.

    Only the SHA-256 of the random token in the cookie is kept, so a database read gives no
    one a cookie to replay.
    """

    __tablename__ = "dashboard_sessions"
    __table_args__ = (
        Index("ix_dashboard_sessions_key", "key_id"),
        Index("ix_dashboard_sessions_expires", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
