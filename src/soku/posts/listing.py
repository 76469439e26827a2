"""`GET /v1/posts`: filters and cursor pagination (newest first)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass
from enum import StrEnum

from fastapi import Request
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from soku.errors import ValidationFailed
from soku.platforms import PLATFORM_NAMES
from soku.posts import repository
from soku.posts.models import PostStatus
from soku.posts.schemas import PostPage
from soku.posts.service import view_of

StatusFilter = StrEnum("StatusFilter", {s.value: s.value for s in PostStatus})  # type: ignore[misc]
PlatformFilter = StrEnum("PlatformFilter", {p: p for p in PLATFORM_NAMES})  # type: ignore[misc]


def encode_cursor(created_at: dt.datetime, post_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(post_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, post_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        moment = dt.datetime.fromisoformat(created)
        if moment.tzinfo is None:
            raise ValueError("naive")
        return moment.astimezone(dt.UTC), uuid.UUID(post_id)
    except (ValueError, TypeError, OverflowError, json.JSONDecodeError, UnicodeDecodeError):
        raise ValidationFailed.from_problems(
            [
                {
                    "field": "cursor",
                    "reason": "invalid",
                    "message": "cursor is not one this API gave out; pass nextCursor as it "
                    "was returned.",
                }
            ]
        ) from None


def _aware(field: str, value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValidationFailed.from_problems(
            [
                {
                    "field": field,
                    "reason": "missing_offset",
                    "message": f"{field} must carry a UTC offset (Z or ±hh:mm).",
                }
            ]
        )
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is in the year 0 in UTC
        raise ValidationFailed.from_problems(
            [
                {
                    "field": field,
                    "reason": "out_of_range",
                    "message": f"{field} must fall between the years 1 and 9999 once converted "
                    "to UTC.",
                }
            ]
        ) from None


FILTERS = ("status", "platform", "from", "to", "limit", "cursor")


async def refuse_repeated_filters(request: Request) -> None:
    """Each filter takes one value (the API keeps no list filters): a repeated one is refused
    rather than silently reduced to its last value. A parameter the listing does not know is
    refused too, as an unknown body field is: `?stauts=failed` would otherwise list them all."""
    given = request.query_params
    problems = [
        {
            "field": name,
            "reason": "repeated",
            "message": f"{name} is given {count} times; it takes a single value.",
        }
        for name in FILTERS
        if (count := len(given.getlist(name))) > 1
    ]
    known = ", ".join(FILTERS)
    problems += [
        {
            "field": name,
            "reason": "unknown_field",
            "message": f"{name} is not a parameter of this listing; it takes {known}.",
        }
        for name in dict.fromkeys(given.keys())
        if name not in FILTERS
    ]
    if problems:
        raise ValidationFailed.from_problems(problems)


_SPACED_OFFSET = re.compile(r"\d \d\d(:?\d\d)?$")


async def refuse_unescaped_plus(request: Request) -> None:
    """A `+hh:mm` offset sent unescaped arrives as ` hh:mm` (a `+` in a query string is a
    space): say so, rather than let the parser report "unexpected extra characters"."""
    problems = [
        {
            "field": name,
            "reason": "invalid_format",
            "message": f"{name} has a space before its offset: write a '+' in a query string "
            f"as %2B ({name}=2026-03-02T09:00:00%2B05:30).",
        }
        for name in ("from", "to")
        if _SPACED_OFFSET.search(request.query_params.get(name) or "")
    ]
    if problems:
        raise ValidationFailed.from_problems(problems)


@dataclass(frozen=True)
class ListQuery:
    where: repository.PostFilter
    after: tuple[dt.datetime, uuid.UUID] | None
    limit: int

    @classmethod
    def build(
        cls,
        status: StrEnum | None,
        platform: StrEnum | None,
        created_from: dt.datetime | None,
        created_to: dt.datetime | None,
        limit: int,
        cursor: str | None,
    ) -> ListQuery:
        where = repository.PostFilter(
            status=status.value if status else None,
            platform=platform.value if platform else None,
            created_from=_aware("from", created_from),
            created_to=_aware("to", created_to),
        )
        return cls(where, decode_cursor(cursor) if cursor else None, limit)


def read_page(connection: Connection, user_id: uuid.UUID, query: ListQuery) -> PostPage:
    """One page of the user's posts, read on `connection` (`Database.run_read`)."""
    with Session(bind=connection) as session:  # joins the connection's transaction
        posts = repository.list_posts(session, user_id, query.where, query.after, query.limit + 1)
        page, more = posts[: query.limit], len(posts) > query.limit
        deliveries = repository.deliveries_by_post(session, [p.id for p in page])
        next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if more and page else None
        data = [view_of(p, deliveries[p.id]) for p in page]
    return PostPage(data=data, nextCursor=next_cursor)
