"""The Webhooks API (`/v1/webhooks`): endpoints that receive a signed POST when a post reaches
an outcome, and what was sent to each (docs/webhooks.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy import Connection

from soku.api import AUTHED, GatedRoute, error_responses, id_or_404
from soku.auth.dependencies import Principal, authenticated
from soku.context import Context
from soku.errors import NotFound
from soku.webhooks import repository as repo
from soku.webhooks import service
from soku.webhooks.schemas import (
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryList,
    WebhookDeliveryView,
    WebhookList,
    WebhookTest,
    WebhookView,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], route_class=GatedRoute)
Caller = Annotated[Principal, Depends(authenticated())]


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    responses=error_responses(400, 409, 413, 415, *AUTHED),
    summary="Add a webhook endpoint (its signing secret is shown once)",
)
async def create_webhook(ctx: Context, caller: Caller, body: WebhookCreate) -> WebhookCreated:
    return await service.add_endpoint(ctx, caller.user_id, body)


@router.get(
    "",
    response_model=WebhookList,
    responses=error_responses(*AUTHED),
    summary="List webhook endpoints",
)
async def list_webhooks(ctx: Context, caller: Caller) -> WebhookList:
    rows = await ctx.db.run_read(lambda c: repo.endpoints_of(c, caller.user_id))
    return WebhookList(data=[service.view_of(row) for row in rows])


@router.get(
    "/{webhook_id}",
    response_model=WebhookView,
    responses=error_responses(404, *AUTHED),
    summary="Describe a webhook endpoint",
)
async def get_webhook(ctx: Context, caller: Caller, webhook_id: str) -> WebhookView:
    endpoint_id = id_or_404(webhook_id, "webhook")
    row = await ctx.db.run_read(lambda c: service.endpoint_or_404(c, caller.user_id, endpoint_id))
    return service.view_of(row)


@router.delete(
    "/{webhook_id}",
    status_code=204,
    responses=error_responses(404, *AUTHED),
    summary="Delete a webhook endpoint (what it has not received is not sent)",
)
async def delete_webhook(ctx: Context, caller: Caller, webhook_id: str) -> Response:
    endpoint_id = id_or_404(webhook_id, "webhook")
    if not await ctx.db.run_write(lambda c: repo.remove_endpoint(c, caller.user_id, endpoint_id)):
        raise NotFound(f"No webhook {webhook_id}.")
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=WebhookCreated,
    responses=error_responses(404, *AUTHED),
    summary="Replace the signing secret (the old one also signs for 24 h; shown once)",
)
async def rotate_secret(ctx: Context, caller: Caller, webhook_id: str) -> WebhookCreated:
    endpoint_id = id_or_404(webhook_id, "webhook")

    def rotate(connection: Connection) -> WebhookCreated:
        return service.rotate_secret(connection, ctx.settings, caller.user_id, endpoint_id)

    return await ctx.db.run_write(rotate)


@router.post(
    "/{webhook_id}/test",
    status_code=202,
    response_model=WebhookTest,
    responses=error_responses(404, *AUTHED),
    summary="Queue a `ping` event for this endpoint",
)
async def test_webhook(ctx: Context, caller: Caller, webhook_id: str) -> WebhookTest:
    endpoint_id = id_or_404(webhook_id, "webhook")
    event_id = await ctx.db.run_write(lambda c: service.send_test(c, caller.user_id, endpoint_id))
    return WebhookTest(eventId=event_id)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=WebhookDeliveryList,
    responses=error_responses(400, 404, *AUTHED),
    summary="What was sent to this endpoint, newest first, and how each attempt went",
)
async def list_deliveries(
    ctx: Context,
    caller: Caller,
    webhook_id: str,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> WebhookDeliveryList:
    endpoint_id = id_or_404(webhook_id, "webhook")

    def read(connection: Connection) -> list[WebhookDeliveryView]:
        return service.deliveries_of(connection, caller.user_id, endpoint_id, limit)

    return WebhookDeliveryList(data=await ctx.db.run_read(read))
