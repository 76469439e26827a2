"""Webhooks: the user's endpoints and what was sent to each, adding one (its secret shown once),
a test ping, rotating the secret (the new one shown once) and deleting one after a
confirmation page, through the Webhooks API's service."""

from __future__ import annotations

import uuid
from typing import Any, get_args

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import Connection

from soku.api import id_or_404
from soku.context import get_context
from soku.dashboard.forms import Admitted, PageRoute, SignedIn, field, fields, notice
from soku.dashboard.pages import render
from soku.dashboard.session import Viewer
from soku.errors import ApiError, NotFound
from soku.webhooks import repository as repo
from soku.webhooks import service
from soku.webhooks.schemas import PostEvent, WebhookCreate, WebhookCreated, WebhookView

router = APIRouter(prefix="/dashboard/webhooks", include_in_schema=False, route_class=PageRoute)
EVENTS = list(get_args(PostEvent))
RECENT = 50
DONE = {
    "pinged": "A ping event was queued for this endpoint; it shows below once sent.",
    "deleted": "The endpoint was deleted; what it had not received will not be sent.",
}


@router.get("")
async def list_webhooks(request: Request, viewer: SignedIn) -> Response:
    return await _list_page(request, viewer, notice=notice(request, DONE))


@router.post("")
async def create_webhook(request: Request, checked: Admitted) -> Response:
    (viewer, form), ctx = checked, get_context(request)
    typed = {
        "url": field(form, "url").strip(),
        "events": fields(form, "event"),
        "description": field(form, "description").strip(),
    }
    chosen = {"events": typed["events"] or None, "description": typed["description"] or None}
    try:
        body = WebhookCreate.model_validate({"url": typed["url"], **chosen})
    except ValidationError as exc:
        problem = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return await _list_page(request, viewer, status=400, problem=problem, typed=typed)
    try:
        created = await service.add_endpoint(ctx, viewer.user_id, body)
    except ApiError as exc:
        return await _list_page(
            request, viewer, status=exc.status, problem=exc.message, typed=typed
        )
    return await _endpoint_page(request, viewer, created.id, status=201, created=created)


@router.get("/{webhook_id}")
async def show_webhook(request: Request, viewer: SignedIn, webhook_id: str) -> Response:
    target = id_or_404(webhook_id, "webhook")
    return await _endpoint_page(request, viewer, target, notice=notice(request, DONE))


@router.post("/{webhook_id}/test")
async def ping_webhook(request: Request, checked: Admitted, webhook_id: str) -> Response:
    viewer, target = checked[0], id_or_404(webhook_id, "webhook")
    await get_context(request).db.run_write(lambda c: service.send_test(c, viewer.user_id, target))
    return RedirectResponse(f"/dashboard/webhooks/{target}?done=pinged", status_code=303)


@router.post("/{webhook_id}/rotate")
async def rotate_secret(request: Request, checked: Admitted, webhook_id: str) -> Response:
    (viewer, _form), ctx = checked, get_context(request)
    target = id_or_404(webhook_id, "webhook")

    def rotate(connection: Connection) -> WebhookCreated:
        return service.rotate_secret(connection, ctx.settings, viewer.user_id, target)

    rotated = await ctx.db.run_write(rotate)
    return await _endpoint_page(request, viewer, target, created=rotated, rotated=True)


@router.get("/{webhook_id}/delete")
async def confirm_delete(request: Request, viewer: SignedIn, webhook_id: str) -> Response:
    target, user_id = id_or_404(webhook_id, "webhook"), viewer.user_id

    def read(connection: Connection) -> WebhookView:
        return service.view_of(service.endpoint_or_404(connection, user_id, target))

    endpoint = await get_context(request).db.run_read(read)
    return render(request, viewer, "webhook_delete.html", endpoint=endpoint)


@router.post("/{webhook_id}/delete")
async def delete_webhook(request: Request, checked: Admitted, webhook_id: str) -> Response:
    viewer, target = checked[0], id_or_404(webhook_id, "webhook")
    ctx = get_context(request)
    if not await ctx.db.run_write(lambda c: repo.remove_endpoint(c, viewer.user_id, target)):
        raise NotFound(f"No webhook {webhook_id}.")
    return RedirectResponse("/dashboard/webhooks?done=deleted", status_code=303)


def _overview(connection: Connection, user_id: uuid.UUID) -> list[tuple[Any, Any]]:
    """Each endpoint as the API shows it, with its newest delivery (None before any)."""
    rows = repo.endpoints_of(connection, user_id)
    shown = []
    for row in rows:
        last = service.deliveries_of(connection, user_id, row.id, 1)
        shown.append((service.view_of(row), last[0] if last else None))
    return shown


async def _list_page(
    request: Request, viewer: Viewer, *, status: int = 200, **context: Any
) -> Response:
    user_id = viewer.user_id
    endpoints = await get_context(request).db.run_read(lambda c: _overview(c, user_id))
    context.setdefault("typed", {"url": "", "events": EVENTS, "description": ""})
    return render(
        request,
        viewer,
        "webhooks.html",
        status=status,
        endpoints=endpoints,
        events=EVENTS,
        **context,
    )


async def _endpoint_page(
    request: Request, viewer: Viewer, target: uuid.UUID, *, status: int = 200, **context: Any
) -> Response:
    user_id = viewer.user_id

    def read(connection: Connection) -> tuple[Any, list[Any]]:
        row = service.endpoint_or_404(connection, user_id, target)
        return service.view_of(row), service.deliveries_of(connection, user_id, target, RECENT)

    endpoint, deliveries = await get_context(request).db.run_read(read)
    return render(
        request,
        viewer,
        "webhook.html",
        status=status,
        endpoint=endpoint,
        deliveries=deliveries,
        **context,
    )
