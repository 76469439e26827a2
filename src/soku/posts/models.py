"""Post submissions and idempotency records."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from soku.db import Base, JSONType, UTCDateTime, utcnow


class PostStatus(StrEnum):
    scheduled = "scheduled"
    queued = "queued"
    processing = "processing"
    published = "published"
    partially_published = "partially_published"
    failed = "failed"
    cancelled = "cancelled"


class Post(Base):
    __tablename__ = "posts"
    __table_args__ = (Index("ix_posts_user_created", "user_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    content: Mapped[dict[str, Any]] = mapped_column(JSONType)
    scheduled_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(24))
    request_id: Mapped[str | None] = mapped_column(String(40))  # carried into delivery logs
    media_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)  # stored media, in order
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdempotencyKey(Base):
    """A stored answer. The unique (user_id, key) insert decides which request does the work."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(300))  # '<endpoint>:' + the caller's 255
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
