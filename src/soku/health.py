"""Liveness and readiness probes (no authentication), on GET and HEAD."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from soku.api import error_responses
from soku.context import Context
from soku.errors import ServiceUnavailable

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


@router.get("/healthz", response_model=Health, summary="The process is up (touches nothing)")
@router.head("/healthz", response_model=Health, summary="As GET /healthz, without the body")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    responses=error_responses(503),
    summary="The database (and Redis, if set) answer",
)
@router.head(
    "/readyz",
    response_model=Health,
    responses=error_responses(503),
    summary="As GET /readyz, without the body",
)
async def readyz(ctx: Context, request: Request) -> Health:
    try:
        await ctx.db.ping()
    except Exception as exc:
        raise ServiceUnavailable(details={"reason": type(exc).__name__}) from exc
    # the API's requests need the rate-limit store (Redis, if set); a worker's do not
    if getattr(request.app.state, "rate_limited", False) and not await ctx.limiter.ready():
        raise ServiceUnavailable(
            "The service cannot reach its rate-limit store (Redis).",
            {"reason": "rate_limit_store_unreachable"},
        )
    return Health(status="ready")
