"""The Posts API's rules. Services flush, never commit: the caller's unit of work does."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy import Connection, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from soku.context import AppContext
from soku.db import utcnow
from soku.delivery import repository as delivery_repo
from soku.delivery.models import Delivery, DeliveryStatus
from soku.errors import Conflict, NotFound
from soku.integrations import repository as accounts_repo
from soku.integrations.models import AccountRef
from soku.integrations.targeting import resolve_targets
from soku.media.pins import Pins
from soku.posts import idempotency, repository
from soku.posts.media_intake import MediaPlan, check_limits, check_still_stored, take_media
from soku.posts.models import Post, PostStatus
from soku.posts.schemas import CreatePostRequest, DeliveryError, DeliveryView, PostView
from soku.posts.status import derive_status
from soku.posts.validation import Submission, check_submission, parse_scheduled_time

_CLAIM_TRIES = 5


def check(ctx: AppContext, body: CreatePostRequest) -> Submission:
    settings = ctx.settings
    return check_submission(
        body, utcnow(), settings.min_schedule_lead_seconds, settings.max_media_urls
    )


async def resolve_accounts(
    ctx: AppContext, user_id: uuid.UUID, submission: Submission
) -> list[AccountRef]:
    """The account each target goes to (missing_integrations / missing_account if none),
    read in one trip (`Database.run_read`)."""
    platforms = [t.platform for t in submission.targets]
    accounts = await ctx.db.run_read(
        lambda connection: accounts_repo.usable_accounts_in(connection, user_id, platforms)
    )
    return resolve_targets(submission.targets, accounts)


async def create_post(
    ctx: AppContext, user_id: uuid.UUID, body: CreatePostRequest, raw: Any, key_header: str | None
) -> idempotency.StoredResponse:
    """Create the post once per idempotency key; a repeat gets the stored answer.

    The key row goes in first, in the transaction that creates the post: a concurrent request
    with the same key waits for this one and then replays its answer, and a repeat is answered
    from the stored row before its body is checked again (the accounts or the clock may have
    moved on since). A request that fails its checks rolls back, key row included.
    """
    request_hash = idempotency.canonical_hash(raw)
    key = idempotency.resolve_key(key_header, user_id, request_hash, "posts")
    content = body.post.content
    if not (content.mediaUrls or content.imageUrls or content.videoUrl):
        return await _create(ctx, user_id, body, raw, key, request_hash, MediaPlan())
    async with Pins.of(ctx) as pins:  # whatever no committed post took over is released
        media = await _media_first(ctx, user_id, body, key, request_hash, pins)
        if isinstance(media, idempotency.StoredResponse):
            return media
        return await _create(ctx, user_id, body, raw, key, request_hash, media)


async def _create(
    ctx: AppContext,
    user_id: uuid.UUID,
    body: CreatePostRequest,
    raw: Any,
    key: str,
    request_hash: str,
    media: MediaPlan,
) -> idempotency.StoredResponse:
    for _ in range(_CLAIM_TRIES):
        try:
            return await _create_once(ctx, user_id, body, raw, key, request_hash, media)
        except idempotency.KeyTaken:
            pass
        async with ctx.db.transaction() as session:
            stored = await idempotency.lookup(session, user_id, key, request_hash, utcnow())
            if stored is not None:
                return stored
            await idempotency.drop_expired(session, user_id, key, utcnow())
    raise Conflict("The Idempotency-Key is busy with another request; retry shortly.")


async def _media_first(
    ctx: AppContext,
    user_id: uuid.UUID,
    body: CreatePostRequest,
    key: str,
    request_hash: str,
    pins: Pins,
) -> MediaPlan | idempotency.StoredResponse:
    """A post with media: replay a repeat at once, else check the body and fetch the media
    before any transaction (a fetch may take seconds; no lock is held meanwhile)."""
    async with ctx.db.read() as session:
        stored = await idempotency.lookup(session, user_id, key, request_hash, utcnow())
    if stored is not None:
        return stored
    submission = check(ctx, body)
    await resolve_accounts(ctx, user_id, submission)
    plan = await take_media(ctx, user_id, submission.draft, pins)
    check_limits(plan, [t.platform for t in submission.targets], submission.draft)
    return plan


async def _create_once(
    ctx: AppContext,
    user_id: uuid.UUID,
    body: CreatePostRequest,
    raw: Any,
    key: str,
    request_hash: str,
    media: MediaPlan,
) -> idempotency.StoredResponse:
    post_id = uuid.uuid4()
    response = idempotency.StoredResponse(
        201, json.dumps({"postSubmissionId": str(post_id)}).encode()
    )
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    ttl = ctx.settings.idempotency_ttl_seconds

    def write(connection: Connection) -> None:
        # Core statements built once (repository), one sync call for the whole unit of work.
        now = utcnow()
        idempotency.claim_in(connection, user_id, key, request_hash, response, now, ttl)
        submission = check(ctx, body)
        platforms = [t.platform for t in submission.targets]
        found = accounts_repo.usable_accounts_in(connection, user_id, platforms)
        accounts = resolve_targets(submission.targets, found)
        check_still_stored(connection, media)  # row locks before the keys' (as a delete)
        media.write_new(connection)
        content = raw["post"]["content"]
        repository.insert_post(
            connection, post_id, user_id, content, submission.scheduled_time, accounts, now,
            request_id, media.ids,
        )  # fmt: skip
        ctx.wakeup.notify_in(connection)  # delivered on commit

    await ctx.db.run_write(write)  # SQLite file: one call, on the loop's thread (see soku.db)
    if media.pins is not None:
        media.pins.committed()
    ctx.wakeup.wake()
    return response


def view_of(post: Post, deliveries: Sequence[Delivery]) -> PostView:
    return PostView(
        postSubmissionId=post.id,
        status=derive_status(d.status for d in deliveries) if deliveries else post.status,
        scheduledTime=post.scheduled_time,
        createdAt=post.created_at,
        updatedAt=post.updated_at,
        content=post.content,
        deliveries=[_delivery_view(d) for d in deliveries],
    )


def _delivery_view(delivery: Delivery) -> DeliveryView:
    error = delivery.error
    return DeliveryView(
        id=delivery.id,
        platform=delivery.platform,
        accountId=delivery.account_id,
        status=delivery.status,
        runAt=delivery.run_at,
        attempts=delivery.attempts,
        platformPostId=delivery.platform_post_id,
        url=delivery.url,
        error=DeliveryError.model_validate(error) if error else None,
        publishedAt=delivery.published_at,
    )


def read_post(connection: Connection, user_id: uuid.UUID, post_id: uuid.UUID) -> PostView:
    """The user's post and its deliveries as the API shows them, read on `connection`
    (`Database.run_read`: on a SQLite file one trip to the reader thread); NotFound if the
    user has no such post."""
    with Session(bind=connection) as session:  # joins the connection's transaction
        return view_of(*_post_with_deliveries(session, user_id, post_id))


def _post_with_deliveries(
    session: Session, user_id: uuid.UUID, post_id: uuid.UUID
) -> tuple[Post, list[Delivery]]:
    found = session.execute(repository.POST_OF, {"post_id": post_id, "user_id": user_id})
    post = found.scalar_one_or_none()
    if post is None:
        raise NotFound(f"No post {post_id}.")
    return post, repository.deliveries_by_post(session, [post.id])[post.id]


async def get_post(session: AsyncSession, user_id: uuid.UUID, post_id: uuid.UUID) -> PostView:
    """`read_post` inside the session's transaction: what it has flushed is seen."""
    connection = await session.connection()
    return await connection.run_sync(read_post, user_id, post_id)


async def cancel_post(session: AsyncSession, user_id: uuid.UUID, post_id: uuid.UUID) -> PostView:
    """Cancel every delivery, or none: a delivery a worker already took makes it a 409."""
    post, deliveries = await _post_for_change(session, user_id, post_id)
    if post.status != PostStatus.cancelled:
        now = utcnow()
        changed = await repository.set_waiting_deliveries(
            session, post.id, now, **repository.cancelled_values()
        )
        if changed != len(deliveries):
            raise _started_conflict(post_id, deliveries, "cancelled")
        post.status, post.updated_at = PostStatus.cancelled, now
    await session.flush()
    return await get_post(session, user_id, post_id)


async def reschedule_post(
    ctx: AppContext,
    session: AsyncSession,
    user_id: uuid.UUID,
    post_id: uuid.UUID,
    value: str | None,
) -> PostView:
    from soku.errors import ValidationFailed

    now = utcnow()
    when, problems = parse_scheduled_time(value, now, ctx.settings.min_schedule_lead_seconds)
    if problems:
        raise ValidationFailed.from_problems(problems)
    post, deliveries = await _post_for_change(session, user_id, post_id)
    if post.status == PostStatus.cancelled:
        raise Conflict("A cancelled post can't be rescheduled.", {"status": post.status})
    status = DeliveryStatus.scheduled if when else DeliveryStatus.queued
    changed = await repository.set_waiting_deliveries(
        session, post.id, now, status=status.value, run_at=when or now
    )
    if changed != len(deliveries):
        raise _started_conflict(post_id, deliveries, "rescheduled")
    post.scheduled_time, post.status, post.updated_at = when, PostStatus(status.value), now
    await ctx.wakeup.notify_sql(session)
    await session.flush()
    return await get_post(session, user_id, post_id)


async def retry_post(
    ctx: AppContext, session: AsyncSession, user_id: uuid.UUID, post_id: uuid.UUID
) -> PostView:
    """Queue failed (and unknown) deliveries again, from a clean start.

    Except one that failed while its publish call may have gone through (a timeout or a 5xx
    on the last attempt): it keeps its checkpoint, so the engine asks the platform first and
    does not post twice. An `unknown` one starts clean: the user checked, and asks again.
    """
    post, deliveries = await _post_for_change(session, user_id, post_id)
    now = utcnow()
    unsettled = [
        (d.id, d.checkpoint)
        for d in deliveries
        if d.status == DeliveryStatus.failed and "publish_started" in (d.checkpoint or {})
    ]
    changed = await repository.retry_finished_deliveries(session, post.id, now)
    if changed == 0:
        states = {f"{d.platform}:{d.account_id}": d.status for d in deliveries}
        raise Conflict("This post has no failed deliveries to retry.", {"deliveries": states})
    for delivery_id, checkpoint in unsettled:
        await session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.queued.value)
            .values(checkpoint=checkpoint)
            .execution_options(synchronize_session=False)
        )
    connection = await session.connection()
    await connection.run_sync(delivery_repo.refresh_post_status, post.id, now)
    await ctx.wakeup.notify_sql(session)
    await session.flush()
    session.expire_all()  # the bulk updates bypassed the objects loaded above
    return await get_post(session, user_id, post_id)


async def _post_for_change(
    session: AsyncSession, user_id: uuid.UUID, post_id: uuid.UUID
) -> tuple[Post, list[Delivery]]:
    """`_post_with_deliveries` in the session: the objects it changes next are its own."""
    return await session.run_sync(_post_with_deliveries, user_id, post_id)


def _started_conflict(post_id: uuid.UUID, deliveries: Sequence[Delivery], verb: str) -> Conflict:
    states = {f"{d.platform}:{d.account_id}": d.status for d in deliveries}
    return Conflict(
        f"Post {post_id} can't be {verb}: some deliveries have already started.",
        {"deliveries": states},
    )
