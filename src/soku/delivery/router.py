"""`/metrics`: Prometheus metrics of the delivery engine and the queue."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from soku.context import Context
from soku.db import utcnow
from soku.delivery import repository

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    summary="Prometheus metrics (deliveries, attempt latency, queue depth, lateness)",
)
async def metrics(ctx: Context) -> Response:
    now = utcnow()
    async with ctx.db.read() as session:
        due, oldest = await repository.due_now(session, now)
    ctx.metrics.queue_due.set(due)
    ctx.metrics.oldest_due_seconds.set((now - oldest).total_seconds() if oldest else 0)
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
