"""Request and response bodies of the Posts API, as the contract names them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from soku.platforms import PLATFORM_NAMES

PlatformName = Annotated[
    str,
    Field(
        json_schema_extra={"enum": list(PLATFORM_NAMES)},
        description="One of: " + ", ".join(PLATFORM_NAMES),
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class PlatformTarget(_Strict):
    platform: PlatformName
    accountId: str | None = Field(
        default=None,
        description="The account to target. Required when several accounts are connected "
        "for this platform.",
    )


class Content(_Strict):
    text: str | None = Field(default=None, description="The text body (caption, tweet, …).")
    mediaType: Literal["video", "image", "text"] | None = None
    mediaUrls: list[str] | None = Field(default=None, description="Media URLs of any kind.")
    videoUrl: str | None = Field(default=None, description="The video's URL.")
    imageUrls: list[str] | None = Field(default=None, description="The images' URLs.")
    platform: list[PlatformName | PlatformTarget] = Field(
        description="Where to publish: platform names, or objects with an accountId."
    )


class PostBody(_Strict):
    content: Content


class CreatePostRequest(_Strict):
    post: PostBody
    scheduledTime: str | None = Field(
        default=None,
        description="ISO 8601 timestamp with an offset, at least 1 minute ahead. "
        "Omit to publish now.",
        json_schema_extra={"format": "date-time"},
    )


class ReschedulePostRequest(_Strict):
    scheduledTime: str | None = Field(
        description="The new ISO 8601 time (with an offset), or null to publish now.",
        json_schema_extra={"format": "date-time"},
    )


class PostCreated(BaseModel):
    """`{"postSubmissionId"}`; with `Prefer: wait=N`, also the outcome (as `GET` shows it)."""

    postSubmissionId: uuid.UUID
    status: str | None = None
    deliveries: list[DeliveryView] | None = None


class DeliveryError(BaseModel):
    code: str
    message: str
    retryable: bool = False
    platformResponse: Any = None


class DeliveryView(BaseModel):
    id: uuid.UUID
    platform: str
    accountId: str
    status: str
    runAt: dt.datetime
    attempts: int = Field(
        description="Attempts made since the delivery was last queued: "
        "`POST /v1/posts/{id}/retry` starts the count again (earlier attempts stay on record)."
    )
    platformPostId: str | None
    url: str | None
    error: DeliveryError | None
    publishedAt: dt.datetime | None


class PostView(BaseModel):
    postSubmissionId: uuid.UUID
    status: str
    scheduledTime: dt.datetime | None
    createdAt: dt.datetime
    updatedAt: dt.datetime
    content: dict[str, Any]
    deliveries: list[DeliveryView]


class PostPage(BaseModel):
    data: list[PostView]
    nextCursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class TargetView(BaseModel):
    platform: str
    accountId: str


class ValidationReport(BaseModel):
    valid: Literal[True] = True
    mediaType: Literal["video", "image", "text"]
    targets: list[TargetView]
    scheduledTime: dt.datetime | None


class ErrorBody(BaseModel):
    type: Literal["invalid_request_error", "authentication_error", "api_error"]
    code: str
    message: str
    timestamp: str
    requestId: str
    details: dict[str, Any]


class ErrorEnvelope(BaseModel):
    error: ErrorBody


PostCreated.model_rebuild()
