"""Posts: the list (the API's filters and cursor), one post with its deliveries and their
attempts, and the API's cancel, retry and reschedule as forms. Every rule is the service's."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from soku.api import id_or_404
from soku.context import get_context
from soku.dashboard.forms import Admitted, PageRoute, SignedIn, field, notice, scheduled_value
from soku.dashboard.pages import render
from soku.dashboard.post_view import PLATFORMS, STATUSES, ListFilters, read_detail
from soku.dashboard.session import Viewer
from soku.errors import Conflict, ValidationFailed
from soku.posts import listing, service
from soku.posts.schemas import PostView

router = APIRouter(prefix="/dashboard/posts", include_in_schema=False, route_class=PageRoute)
DONE = {
    "created": "The post was accepted.",
    "cancelled": "The post was cancelled.",
    "retried": "Its failed deliveries were queued again.",
    "rescheduled": "The post was rescheduled.",
}


@router.get("")
async def list_posts(request: Request, viewer: SignedIn) -> Response:
    filters = ListFilters.of(request.query_params)
    shown: dict[str, Any] = {"filters": filters, "statuses": STATUSES, "platforms": PLATFORMS}
    try:
        query = filters.query()
    except ValidationFailed as exc:
        return render(
            request, viewer, "posts.html", status=400, page=None, problem=exc.message, **shown
        )
    ctx, user_id = get_context(request), viewer.user_id
    page = await ctx.db.run_read(lambda c: listing.read_page(c, user_id, query))
    return render(request, viewer, "posts.html", page=page, **shown)


@router.get("/{post_id}")
async def show_post(request: Request, viewer: SignedIn, post_id: str) -> Response:
    return await _post_page(request, viewer, post_id, notice=notice(request, DONE))


@router.post("/{post_id}/cancel")
async def cancel_post(request: Request, checked: Admitted, post_id: str) -> Response:
    async def cancel(session: AsyncSession, user_id: uuid.UUID, target: uuid.UUID) -> PostView:
        return await service.cancel_post(session, user_id, target)

    return await _change(request, checked, post_id, cancel, "cancelled")


@router.post("/{post_id}/retry")
async def retry_post(request: Request, checked: Admitted, post_id: str) -> Response:
    ctx = get_context(request)

    async def retry(session: AsyncSession, user_id: uuid.UUID, target: uuid.UUID) -> PostView:
        return await service.retry_post(ctx, session, user_id, target)

    return await _change(request, checked, post_id, retry, "retried")


@router.post("/{post_id}/reschedule")
async def reschedule_post(request: Request, checked: Admitted, post_id: str) -> Response:
    ctx, (viewer, form) = get_context(request), checked
    now = bool(field(form, "now"))
    when = None if now else scheduled_value(field(form, "at"), field(form, "offset"))
    if not now and when is None:
        problem = "Choose the new time, or publish it now."
        return await _post_page(request, viewer, post_id, problem=problem, status=400)

    async def reschedule(session: AsyncSession, user_id: uuid.UUID, target: uuid.UUID) -> PostView:
        return await service.reschedule_post(ctx, session, user_id, target, when)

    return await _change(request, checked, post_id, reschedule, "rescheduled")


Change = Callable[[AsyncSession, uuid.UUID, uuid.UUID], Awaitable[PostView]]


async def _change(
    request: Request, checked: tuple[Viewer, FormData], post_id: str, change: Change, done: str
) -> Response:
    """One of the API's changes in its own transaction; its refusal (409, 400) is the post's
    page with the service's message, its success a redirect back to it."""
    ctx, (viewer, _form) = get_context(request), checked
    target = id_or_404(post_id, "post")
    try:
        async with ctx.db.transaction() as session:
            await change(session, viewer.user_id, target)
    except (Conflict, ValidationFailed) as exc:
        return await _post_page(request, viewer, post_id, problem=exc.message, status=exc.status)
    ctx.wakeup.wake()
    return RedirectResponse(f"/dashboard/posts/{target}?done={done}", status_code=303)


async def _post_page(
    request: Request, viewer: Viewer, post_id: str, *, status: int = 200, **context: Any
) -> Response:
    target = id_or_404(post_id, "post")
    ctx, user_id = get_context(request), viewer.user_id
    detail = await ctx.db.run_read(lambda c: read_detail(c, user_id, target))
    return render(
        request,
        viewer,
        "post.html",
        status=status,
        detail=detail,
        now=dt.datetime.now(dt.UTC),
        **context,
    )
