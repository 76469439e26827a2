"""The Webhooks API's rules: checking an endpoint's URL, making its secret, the test ping."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from soku.auth.models import User
from soku.config import Settings
from soku.context import AppContext
from soku.db import utcnow
from soku.errors import Conflict, NotFound, ValidationFailed
from soku.integrations.vault import TokenVault
from soku.media.addresses import blocked_reason, is_localhost_name, normalise_host
from soku.posts.validation import MAX_URL_LENGTH, check_urls, problem, unstorable
from soku.webhooks import repository as repo
from soku.webhooks.events import ENDPOINTS, add_event, stamp
from soku.webhooks.models import POST_EVENTS, EventType
from soku.webhooks.schemas import (
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryView,
    WebhookView,
)

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
ROTATION_OVERLAP = dt.timedelta(hours=24)  # the replaced secret still signs this long


def check_url(url: str, allow_private: bool) -> None:
    """An http(s) URL without credentials, whose host is a valid name or address, and not a
    loopback or private one. A name's addresses are checked at each sending, not here: DNS
    may change, and a receiver's name may not resolve yet."""
    problems = check_urls("url", [url])
    if not problems:
        parts = urlsplit(url)
        host = normalise_host(parts.hostname or "")
        if parts.username is not None or parts.password is not None:
            problems.append(problem("url", "invalid_url", "url must not hold credentials."))
        elif len(url.encode()) > MAX_URL_LENGTH:  # stored in a unique index: bytes count
            message = f"url must be at most {MAX_URL_LENGTH} bytes in UTF-8."
            problems.append(problem("url", "invalid_url", message))
        elif host is None:
            problems.append(problem("url", "invalid_url", "url has no valid host name."))
        elif not allow_private:
            name, literal = host
            reason = blocked_reason(literal) if literal else None
            if reason is None and is_localhost_name(name):
                reason = "loopback (RFC 6761)"
            if reason is not None:
                message = f"url names {name}, which is {reason}: webhooks go to public addresses."
                problems.append(problem("url", "blocked_address", message))
    if problems:
        raise ValidationFailed.from_problems(problems)


def check_description(description: str | None) -> None:
    """A description PostgreSQL can store: no NUL (`unstorable`)."""
    what = unstorable(description) if description is not None else None
    if what is not None:
        message = f"description must not contain {what}."
        raise ValidationFailed.from_problems(
            [problem("description", "invalid_characters", message)]
        )


def view_of(row: Any) -> WebhookView:
    until = row.previous_until if row.previous_secret else None
    return WebhookView(
        id=row.id,
        url=row.url,
        events=list(row.events),
        description=row.description,
        createdAt=row.created_at,
        previousSecretValidUntil=until if until and until > utcnow() else None,
    )


def rotate_secret(
    connection: Connection, settings: Settings, user_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookCreated:
    """A new secret for the endpoint; the one it replaces goes on signing (beside it) for
    ROTATION_OVERLAP, so receivers can switch without refusing a delivery."""
    row = endpoint_or_404(connection, user_id, endpoint_id)
    secret, sealed = _new_secret(settings)
    repo.set_secret(connection, endpoint_id, sealed, row.secret, utcnow() + ROTATION_OVERLAP)
    return _created(connection, user_id, endpoint_id, secret)


async def add_endpoint(ctx: AppContext, user_id: uuid.UUID, body: WebhookCreate) -> WebhookCreated:
    """`create_endpoint` in a write of its own; the same URL added beside it is a 409 too."""

    def create(connection: Connection) -> WebhookCreated:
        return create_endpoint(connection, ctx.settings, user_id, body)

    try:
        return await ctx.db.run_write(create)
    except IntegrityError:  # the same URL added by a request running beside this one
        raise Conflict("A webhook endpoint with this URL was just added.") from None


def create_endpoint(
    connection: Connection, settings: Settings, user_id: uuid.UUID, body: WebhookCreate
) -> WebhookCreated:
    check_url(body.url, settings.webhook_allow_private)
    check_description(body.description)
    _check_room(connection, settings, user_id, body.url)
    secret, sealed = _new_secret(settings)
    chosen: list[str] = list(body.events or [])
    endpoint_id = uuid.uuid4()
    values = {
        "id": endpoint_id,
        "user_id": user_id,
        "url": body.url,
        "events": list(dict.fromkeys(chosen or [e.value for e in POST_EVENTS])),
        "description": body.description,
        "secret": sealed,
        "created_at": utcnow(),
    }
    connection.execute(insert(ENDPOINTS), values)
    return _created(connection, user_id, endpoint_id, secret)


def _check_room(connection: Connection, settings: Settings, user_id: uuid.UUID, url: str) -> None:
    """409 when the user has this URL already, or as many endpoints as allowed."""
    # the user's row locked (PostgreSQL): two requests at once would each count the other out
    connection.execute(select(User.id).where(User.id == user_id).with_for_update(key_share=True))
    same = repo.endpoint_with_url(connection, user_id, url)
    if same is not None:
        raise Conflict(
            "A webhook endpoint with this URL exists: each event would be sent to it twice. "
            "Delete it first to replace it.",
            {"id": str(same)},
        )
    limit = settings.webhook_endpoints_per_user
    if repo.count_endpoints(connection, user_id) >= limit:
        raise Conflict(
            f"An account may have at most {limit} webhook endpoints; delete one first.",
            {"limit": limit},
        )


def _new_secret(settings: Settings) -> tuple[str, str]:
    """A signing secret, and its sealed form to store."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    return secret, TokenVault(settings.resolved_secret_key).seal(secret) or ""


def _created(
    connection: Connection, user_id: uuid.UUID, endpoint_id: uuid.UUID, secret: str
) -> WebhookCreated:
    """The endpoint as stored, with its new secret: the one answer that shows it."""
    view = view_of(repo.endpoint_of(connection, user_id, endpoint_id))
    return WebhookCreated(**view.model_dump(), secret=secret)


def endpoint_or_404(connection: Connection, user_id: uuid.UUID, endpoint_id: uuid.UUID) -> Any:
    row = repo.endpoint_of(connection, user_id, endpoint_id)
    if row is None:
        raise NotFound(f"No webhook {endpoint_id}.")
    return row


def send_test(connection: Connection, user_id: uuid.UUID, endpoint_id: uuid.UUID) -> uuid.UUID:
    """Queue a `ping` event for this endpoint alone."""
    endpoint_or_404(connection, user_id, endpoint_id)
    now = utcnow()
    data = {
        "webhookId": str(endpoint_id),
        "message": "A test event from Soku.",
        "sentAt": stamp(now),
    }
    return add_event(connection, user_id, EventType.ping, data, [endpoint_id], now)


def deliveries_of(
    connection: Connection, user_id: uuid.UUID, endpoint_id: uuid.UUID, limit: int
) -> list[WebhookDeliveryView]:
    """What was sent to the user's endpoint, newest first (NotFound for another user's)."""
    endpoint_or_404(connection, user_id, endpoint_id)
    return [delivery_view(row) for row in repo.deliveries_of(connection, endpoint_id, limit)]


def delivery_view(row: Any) -> WebhookDeliveryView:
    pending = row.status == "pending"
    return WebhookDeliveryView(
        id=row.id,
        eventId=row.event_id,
        eventType=row.event_type,
        status=row.status,
        attempts=row.attempts,
        lastStatusCode=row.last_status_code,
        lastError=row.last_error,
        nextAttemptAt=row.run_at if pending else None,
        deliveredAt=row.delivered_at,
        createdAt=row.created_at,
    )
