"""Bodies of the Webhooks API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PostEvent = Literal["post.published", "post.partially_published", "post.failed"]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    url: str = Field(
        description="The http(s) URL that receives a POST for each event. It must resolve to "
        "public addresses (unless the operator set SOKU_WEBHOOK_ALLOW_PRIVATE); redirects are "
        "not followed."
    )
    events: list[PostEvent] | None = Field(
        default=None,
        min_length=1,
        description="The events to send; every post event when omitted.",
    )
    description: str | None = Field(default=None, max_length=200)


class WebhookView(BaseModel):
    id: uuid.UUID
    url: str
    events: list[str]
    description: str | None
    createdAt: dt.datetime
    previousSecretValidUntil: dt.datetime | None = Field(
        description="After a secret rotation: until when the replaced secret also signs."
    )


class WebhookCreated(WebhookView):
    secret: str = Field(
        description="Signs every delivery (the `Soku-Signature` header). Shown only here: "
        "store it now."
    )


class WebhookList(BaseModel):
    data: list[WebhookView]


class WebhookDeliveryView(BaseModel):
    id: uuid.UUID
    eventId: uuid.UUID
    eventType: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    lastStatusCode: int | None = Field(description="The receiver's HTTP status, last attempt.")
    lastError: str | None = Field(description="Why the last attempt failed, if it did.")
    nextAttemptAt: dt.datetime | None = Field(description="When a pending one is tried next.")
    deliveredAt: dt.datetime | None
    createdAt: dt.datetime


class WebhookDeliveryList(BaseModel):
    data: list[WebhookDeliveryView]


class WebhookTest(BaseModel):
    eventId: uuid.UUID = Field(description="The `ping` event queued for this endpoint.")
