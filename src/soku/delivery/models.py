"""Deliveries (one per post and target account: the unit of work) and their attempts."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from soku.db import Base, JSONType, UTCDateTime, utcnow


class DeliveryStatus(StrEnum):
    scheduled = "scheduled"
    queued = "queued"
    processing = "processing"
    publishing = "publishing"
    published = "published"
    failed = "failed"
    unknown = "unknown"
    cancelled = "cancelled"


NOT_STARTED = (DeliveryStatus.scheduled, DeliveryStatus.queued)
IN_FLIGHT = (DeliveryStatus.processing, DeliveryStatus.publishing)
UNFINISHED = [s.value for s in (*NOT_STARTED, *IN_FLIGHT)]  # a post's statuses share them
TERMINAL = (
    DeliveryStatus.published,
    DeliveryStatus.failed,
    DeliveryStatus.unknown,
    DeliveryStatus.cancelled,
)
WAITING_SQL = "status IN ('scheduled', 'queued')"
IN_FLIGHT_SQL = "status IN ('processing', 'publishing')"
PUBLISHING_SQL = "status = 'publishing'"
PUBLISHED_SQL = "published_at IS NOT NULL"


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        # The claim index: only rows still waiting (finished rows stay out of it), per
        # platform in due order (so one platform's flood cannot starve the others).
        Index(
            "ix_deliveries_due_platform",
            "platform",
            "run_at",
            postgresql_where=text(WAITING_SQL),
            sqlite_where=text(WAITING_SQL),
        ),
        # Leases that expired (a worker died): only rows in flight.
        Index(
            "ix_deliveries_lease",
            "lease_expires_at",
            postgresql_where=text(IN_FLIGHT_SQL),
            sqlite_where=text(IN_FLIGHT_SQL),
        ),
        # Publishing caps count an account's posts published inside a window (a range of
        # this index) and those being published now (the few rows of the next one). Only
        # published rows: a delivery's claim and publishing mark then add no entry to it
        # (every UPDATE that cannot be HOT adds one to each index whose predicate it meets).
        Index(
            "ix_deliveries_account_published",
            "account_ref",
            "published_at",
            postgresql_where=text(PUBLISHED_SQL),
            sqlite_where=text(PUBLISHED_SQL),
        ),
        Index(
            "ix_deliveries_account_publishing",
            "account_ref",
            "id",
            postgresql_where=text(PUBLISHING_SQL),
            sqlite_where=text(PUBLISHING_SQL),
        ),
        Index("ix_deliveries_post", "post_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    post_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    account_ref: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    platform: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    run_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    checkpoint: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    platform_post_id: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(Text)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(24))
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    scheduled_for: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    worker: Mapped[str | None] = mapped_column(String(64))
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
