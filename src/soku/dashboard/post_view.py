"""What the posts pages show, read with the API's own reads: the listing's filters as a form
sends them, and a post as `GET /v1/posts/{id}` shows it with each delivery's attempts."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Connection

from soku.delivery.models import DeliveryAttempt
from soku.errors import ValidationFailed
from soku.platforms import PLATFORM_NAMES
from soku.posts import listing, repository, service
from soku.posts.models import PostStatus
from soku.posts.schemas import DeliveryView, PostView

PAGE_SIZE = 20
STATUSES = [s.value for s in PostStatus]
PLATFORMS = list(PLATFORM_NAMES)


def _day(name: str, value: str, days_after: int) -> dt.datetime | None:
    """A date input's day as the UTC midnight that starts it (or `days_after` days later)."""
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        message = f"{name} must be a day such as 2026-03-02."
        raise ValidationFailed.from_problems(
            [{"field": name, "reason": "invalid_format", "message": message}]
        ) from None
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    return start + dt.timedelta(days=days_after) if days_after and day < dt.date.max else start


def _choice(name: str, value: str, allowed: list[str]) -> str | None:
    if not value:
        return None
    if value not in allowed:
        message = f"{name} must be one of {', '.join(allowed)}."
        raise ValidationFailed.from_problems(
            [{"field": name, "reason": "invalid", "message": message}]
        )
    return value


@dataclass(frozen=True)
class ListFilters:
    """The list page's query: each filter as typed ("" when unset) and the cursor."""

    status: str = ""
    platform: str = ""
    created_from: str = ""  # a day, UTC
    created_through: str = ""  # a day, UTC, included
    cursor: str = ""

    @classmethod
    def of(cls, query: Mapping[str, str]) -> ListFilters:
        def get(name: str) -> str:
            return query.get(name, "").strip()[:200]

        return cls(get("status"), get("platform"), get("from"), get("through"), get("cursor"))

    def query(self) -> listing.ListQuery:
        """The API's listing query (its checks: a cursor it gave out, aware times)."""
        status = _choice("status", self.status, STATUSES)
        platform = _choice("platform", self.platform, PLATFORMS)
        return listing.ListQuery.build(
            listing.StatusFilter(status) if status else None,
            listing.PlatformFilter(platform) if platform else None,
            _day("from", self.created_from, 0),
            _day("through", self.created_through, 1),
            PAGE_SIZE,
            self.cursor or None,
        )

    def link(self, cursor: str | None) -> str:
        """This list with the same filters, at `cursor` (the first page when None)."""
        params = {
            "status": self.status,
            "platform": self.platform,
            "from": self.created_from,
            "through": self.created_through,
            "cursor": cursor or "",
        }
        kept = {k: v for k, v in params.items() if v}
        return "/dashboard/posts" + (f"?{urlencode(kept)}" if kept else "")


@dataclass(frozen=True)
class DeliveryDetail:
    view: DeliveryView
    attempts: list[DeliveryAttempt] = field(default_factory=list)

    @property
    def lateness(self) -> dt.timedelta | None:
        """How long after it was due its first recorded attempt started."""
        first = self.attempts[0] if self.attempts else None
        if first is None or first.scheduled_for is None:
            return None
        return first.started_at - first.scheduled_for


@dataclass(frozen=True)
class PostDetail:
    post: PostView
    deliveries: list[DeliveryDetail]

    @property
    def media(self) -> list[str]:
        content: dict[str, Any] = self.post.content
        urls = [*(content.get("mediaUrls") or []), *(content.get("imageUrls") or [])]
        return [*urls, content["videoUrl"]] if content.get("videoUrl") else urls

    @property
    def waiting(self) -> bool:
        """Not started yet: cancel and reschedule may still apply."""
        return all(d.view.status in ("scheduled", "queued") for d in self.deliveries)

    @property
    def retryable(self) -> bool:
        return any(d.view.status in ("failed", "unknown") for d in self.deliveries)


def read_detail(connection: Connection, user_id: uuid.UUID, post_id: uuid.UUID) -> PostDetail:
    """The user's post as the API shows it (NotFound for another user's), with each
    delivery's attempts, in one read."""
    post = service.read_post(connection, user_id, post_id)
    attempts = repository.attempts_by_delivery(connection, [d.id for d in post.deliveries])
    details = [DeliveryDetail(d, attempts.get(d.id, [])) for d in post.deliveries]
    return PostDetail(post, details)
