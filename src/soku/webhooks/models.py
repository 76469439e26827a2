"""Webhook endpoints, the events recorded for them, and one delivery per (event, endpoint).

The deliveries table is the sender's queue, as `deliveries` is the worker's: an event and its
deliveries are written in the transaction that changed the post's status, so an outcome that
was committed always has its webhook on the way, and one that was rolled back never does.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from soku.db import Base, JSONType, UTCDateTime, utcnow


class EventType(enum.StrEnum):
    post_published = "post.published"
    post_partially_published = "post.partially_published"
    post_failed = "post.failed"
    ping = "ping"  # sent by `POST /v1/webhooks/{id}/test` to that endpoint only


POST_EVENTS = [EventType.post_published, EventType.post_partially_published, EventType.post_failed]


class WebhookStatus(enum.StrEnum):
    pending = "pending"  # waiting for its (next) attempt, or being sent
    delivered = "delivered"  # the endpoint answered 2xx
    failed = "failed"  # every attempt failed


PENDING_SQL = "status = 'pending'"


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        Index("ix_webhook_endpoints_user", "user_id", "created_at"),
        UniqueConstraint("user_id", "url"),  # one URL once: two would get every event twice
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JSONType)
    description: Mapped[str | None] = mapped_column(String(200))
    secret: Mapped[str] = mapped_column(Text)  # sealed (integrations.vault): it signs
    # after a rotation, the secret before it (sealed) also signs until `previous_until`
    previous_secret: Mapped[str | None] = mapped_column(Text)
    previous_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookEvent(Base):
    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_created", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)  # the exact JSON sent (and signed) on every attempt
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index(
            "ix_webhook_deliveries_due",
            "run_at",
            postgresql_where=text(PENDING_SQL),
            sqlite_where=text(PENDING_SQL),
        ),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "created_at"),
        Index("ix_webhook_deliveries_event", "event_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"))
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    status: Mapped[str] = mapped_column(String(16), default=WebhookStatus.pending.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # next attempt, or lease's end
    lease_token: Mapped[str | None] = mapped_column(String(36))  # the sender holding it
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
