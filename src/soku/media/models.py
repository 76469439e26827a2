"""Stored media: one row per user and file, the bytes content-addressed in the store; a pin
holds a stored object for a request that is taking it in (see soku.media.pins)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from soku.db import Base, JSONType, UTCDateTime, utcnow


class Media(Base):
    __tablename__ = "media"
    __table_args__ = (
        Index("ix_media_user_sha256", "user_id", "sha256"),
        Index("ix_media_storage_key", "storage_key"),  # who else uses an object
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    source_url: Mapped[str | None] = mapped_column(Text)  # None for direct uploads
    public_token: Mapped[str] = mapped_column(String(64), unique=True)  # the unguessable URL part
    storage_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(8))  # image | video
    content_type: Mapped[str] = mapped_column(String(64))
    extension: Mapped[str] = mapped_column(String(8))
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    probe: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class MediaPin(Base):
    """A stored object held by a request between asking the store for it and committing its
    media row; the last holder of a key (row or pin) to leave deletes the object."""

    __tablename__ = "media_pins"
    __table_args__ = (Index("ix_media_pins_storage_key", "storage_key"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    storage_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
