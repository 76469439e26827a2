"""Bodies of the Media API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class MediaFromUrl(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    url: str = Field(description="An http(s) URL of an image or a video to fetch and store.")


class MediaView(BaseModel):
    url: str = Field(description="The stored file's public URL: use it in posts.")
    id: uuid.UUID
    kind: Literal["image", "video"]
    contentType: str
    bytes: int
    sha256: str
    width: int | None
    height: int | None
    durationSeconds: float | None
    sourceUrl: str | None
    details: dict[str, Any] = Field(description="What probing found: format, codecs, frame rate.")
    createdAt: dt.datetime
