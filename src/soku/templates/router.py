"""The Templates API: `POST /v1/templates` (and its alias `POST /v1/media/render-og`) renders
a template into a PNG stored as media; `GET /v1/templates` lists the templates."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response

from soku.api import AUTHED, GatedRoute, error_responses
from soku.auth.dependencies import Principal, authenticated
from soku.context import Context
from soku.media.pins import Pins
from soku.media.router import record, replayed
from soku.media.schemas import MediaView
from soku.templates import service
from soku.templates.catalog import TEMPLATES
from soku.templates.schemas import TemplateList, TemplateRender

router = APIRouter(tags=["templates"], route_class=GatedRoute)
Renderer = Annotated[Principal, Depends(authenticated("templates:create"))]
Caller = Annotated[Principal, Depends(authenticated())]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


@router.post(
    "/v1/templates",
    status_code=201,
    response_model=MediaView,
    responses=error_responses(400, 409, 413, 415, *AUTHED),
    summary="Render a template into a stored PNG (use its url in posts)",
)
@router.post(
    "/v1/media/render-og",
    status_code=201,
    response_model=MediaView,
    responses=error_responses(400, 409, 413, 415, *AUTHED),
    summary="Render a template (alias of POST /v1/templates)",
)
async def render_template(
    ctx: Context,
    caller: Renderer,
    body: TemplateRender,
    request: Request,
    key: IdempotencyKey = None,
) -> Response:
    job = service.checked(body)  # a bad body is a 400 before any lookup
    raw: Any = await request.json()
    resolved, replay = await replayed(ctx, caller.user_id, raw, key, "templates")
    if replay is not None:
        return replay
    async with Pins.of(ctx) as pins:
        incoming = await service.render_to_media(ctx, caller.user_id, job, pins)
        return await record(ctx, caller.user_id, incoming, raw, resolved, pins)


@router.get(
    "/v1/templates",
    response_model=TemplateList,
    responses=error_responses(*AUTHED),
    summary="The templates and their parameters",
)
async def list_templates(_caller: Caller) -> TemplateList:
    return TemplateList(data=[service.view_of(t) for t in TEMPLATES.values()])
