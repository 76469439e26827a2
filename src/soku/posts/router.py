"""The Posts API endpoints: thin, each wiring auth, body and one service call."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from soku.api import AUTHED, GatedRoute, error_responses, id_or_404
from soku.auth.dependencies import Principal, authenticated
from soku.context import Context
from soku.posts import listing, outcome, service
from soku.posts.schemas import (
    CreatePostRequest,
    PostCreated,
    PostPage,
    PostView,
    ReschedulePostRequest,
    TargetView,
    ValidationReport,
)

router = APIRouter(prefix="/v1/posts", tags=["posts"], route_class=GatedRoute)
Creator = Annotated[Principal, Depends(authenticated("posts:create"))]
Caller = Annotated[Principal, Depends(authenticated())]


VALIDATE_DESCRIPTION = """A dry run of `POST /v1/posts` on the same body: nothing is stored,
fetched or sent, and `Idempotency-Key` is not consulted.

It checks what `POST /v1/posts` checks before it fetches media: the body's shape, each media
URL's form (http or https, its length; `mediaType` inferred from file extensions when it is
omitted), every target platform's content rules, `scheduledTime`, and that every target
resolves to a connected account (`missing_integrations`, `missing_account`).

It does not fetch the media URLs: a URL that cannot be fetched or stored (unreachable, a
private address, not an image or video, over the size cap) passes here, and the real
`POST /v1/posts` then answers 400 `upload_failed`."""


@router.post(
    "",
    status_code=201,
    response_model=PostCreated,
    responses=error_responses(400, 409, 413, 415, *AUTHED),
    summary="Create a post",
)
async def create_post(
    ctx: Context,
    caller: Creator,
    body: CreatePostRequest,
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", description="A unique string to prevent duplicate posts."),
    ] = None,
    prefer: Annotated[
        str | None,
        Header(
            alias="Prefer",
            description="`wait=N` (N up to 30): wait up to N seconds for an immediate post's "
            "outcome and return it; a failed delivery then answers 500 `dispatch_failed`. "
            "A repeat of an idempotency key answers the stored 201 at once.",
        ),
    ] = None,
) -> Response:
    raw: Any = await request.json()
    stored = await service.create_post(ctx, caller.user_id, body, raw, idempotency_key)
    wait = outcome.wait_seconds(prefer)
    if wait and body.scheduledTime is None and not stored.replayed:  # a replay: as stored
        return await outcome.wait_for_outcome(ctx, caller.user_id, stored, wait)
    return Response(stored.body, status_code=stored.status, media_type="application/json")


@router.post(
    "/validate",
    response_model=ValidationReport,
    responses=error_responses(400, 413, 415, *AUTHED),
    summary="Check a post without creating it",
    description=VALIDATE_DESCRIPTION,
)
async def validate_post(ctx: Context, caller: Caller, body: CreatePostRequest) -> ValidationReport:
    submission = service.check(ctx, body)
    accounts = await service.resolve_accounts(ctx, caller.user_id, submission)
    return ValidationReport(
        mediaType=submission.draft.media_type,
        targets=[TargetView(platform=a.platform, accountId=a.account_id) for a in accounts],
        scheduledTime=submission.scheduled_time,
    )


@router.get(
    "",
    response_model=PostPage,
    dependencies=[
        Depends(listing.refuse_repeated_filters),
        Depends(listing.refuse_unescaped_plus),
    ],
    responses=error_responses(400, *AUTHED),
    summary="List posts",
    description="Newest first. Each filter takes one value; a repeated one is a 400 "
    "`validation_error` naming it.",
)
async def list_posts(
    ctx: Context,
    caller: Caller,
    status: Annotated[listing.StatusFilter | None, Query()] = None,
    platform: Annotated[listing.PlatformFilter | None, Query()] = None,
    created_from: Annotated[dt.datetime | None, Query(alias="from")] = None,
    created_to: Annotated[dt.datetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> PostPage:
    query = listing.ListQuery.build(status, platform, created_from, created_to, limit, cursor)
    user_id = caller.user_id
    return await ctx.db.run_read(lambda c: listing.read_page(c, user_id, query))


@router.get(
    "/{post_id}",
    response_model=PostView,
    responses=error_responses(404, *AUTHED),
    summary="Get a post and its deliveries",
)
async def get_post(ctx: Context, caller: Caller, post_id: str) -> PostView:
    user_id, wanted = caller.user_id, id_or_404(post_id, "post")
    return await ctx.db.run_read(lambda c: service.read_post(c, user_id, wanted))


@router.delete(
    "/{post_id}",
    response_model=PostView,
    responses=error_responses(404, 409, *AUTHED),
    summary="Cancel a post that has not started",
)
async def cancel_post(ctx: Context, caller: Caller, post_id: str) -> PostView:
    target = id_or_404(post_id, "post")
    async with ctx.db.transaction() as session:
        return await service.cancel_post(session, caller.user_id, target)


@router.patch(
    "/{post_id}",
    response_model=PostView,
    responses=error_responses(400, 404, 409, 413, 415, *AUTHED),
    summary="Reschedule a post that has not started",
)
async def reschedule_post(
    ctx: Context, caller: Caller, post_id: str, body: ReschedulePostRequest
) -> PostView:
    target = id_or_404(post_id, "post")
    async with ctx.db.transaction() as session:
        view = await service.reschedule_post(
            ctx, session, caller.user_id, target, body.scheduledTime
        )
    ctx.wakeup.wake()
    return view


@router.post(
    "/{post_id}/retry",
    response_model=PostView,
    responses=error_responses(404, 409, *AUTHED),
    summary="Queue a post's failed deliveries again",
)
async def retry_post(ctx: Context, caller: Caller, post_id: str) -> PostView:
    target = id_or_404(post_id, "post")
    async with ctx.db.transaction() as session:
        view = await service.retry_post(ctx, session, caller.user_id, target)
    ctx.wakeup.wake()
    return view
