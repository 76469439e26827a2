"""The Media API (`/v1/media`) and the public serving of stored files (`/media/…`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, Request, Response, UploadFile
from fastapi.responses import RedirectResponse, StreamingResponse

from soku.api import AUTHED, GatedRoute, error_responses, id_or_404
from soku.auth.dependencies import Principal, authenticated
from soku.context import AppContext, Context
from soku.db import utcnow
from soku.errors import Conflict, NotFound, RangeNotSatisfiable, ValidationFailed
from soku.media import repository, service
from soku.media.models import Media
from soku.media.pins import Pins, delete_unused, leave
from soku.media.schemas import MediaFromUrl, MediaView
from soku.media.upload import receive_upload
from soku.posts import idempotency
from soku.posts.validation import check_urls

router = APIRouter(prefix="/v1/media", tags=["media"], route_class=GatedRoute)
public_router = APIRouter(tags=["media"])
Creator = Annotated[Principal, Depends(authenticated("media:create"))]
Caller = Annotated[Principal, Depends(authenticated())]
PRESIGN_SECONDS = 3600
log = structlog.get_logger("soku.media")


def view_of(ctx: AppContext, media: Media) -> MediaView:
    return MediaView(
        url=service.public_url(ctx, media),
        id=media.id,
        kind=media.kind,
        contentType=media.content_type,
        bytes=media.bytes,
        sha256=media.sha256,
        width=media.width,
        height=media.height,
        durationSeconds=media.duration_seconds,
        sourceUrl=media.source_url,
        details=media.probe or {},
        createdAt=media.created_at,
    )


async def record(
    ctx: AppContext,
    user_id: uuid.UUID,
    incoming: service.Incoming,
    raw: Any,
    key: str | None,
    pins: Pins,
) -> Response:
    """Write the media row, with its idempotency key when one applies, in one transaction
    that also takes over the request's pins."""
    media = service.new_media(user_id, incoming)
    body = json.dumps(view_of(ctx, media).model_dump(mode="json")).encode()
    answer = idempotency.StoredResponse(201, body)
    request_hash = idempotency.canonical_hash(raw) if raw is not None else None
    try:
        async with ctx.db.transaction() as session:
            if request_hash is not None and key is not None:
                await idempotency.claim(
                    session,
                    user_id,
                    key,
                    request_hash,
                    answer,
                    media.created_at,
                    ctx.settings.idempotency_ttl_seconds,
                )
            await (await session.connection()).run_sync(pins.release_in)
            session.add(media)
        pins.committed()
    except idempotency.KeyTaken:
        async with ctx.db.read() as session:
            stored = await idempotency.lookup(
                session, user_id, key or "", request_hash or "", media.created_at
            )
        if stored is None:
            raise Conflict(
                "The Idempotency-Key is busy with another request; retry shortly."
            ) from None
        answer = stored
    return Response(answer.body, status_code=answer.status, media_type="application/json")


@router.post(
    "",
    status_code=201,
    response_model=MediaView,
    responses=error_responses(400, 409, 413, 415, *AUTHED),
    summary="Fetch and store a media URL",
)
async def create_from_url(
    ctx: Context,
    caller: Creator,
    body: MediaFromUrl,
    request: Request,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    if problems := check_urls("url", [body.url]):  # as a post's media URLs are checked
        raise ValidationFailed.from_problems(problems)
    raw: Any = await request.json()
    key, replay = await replayed(ctx, caller.user_id, raw, idempotency_key, "media")
    if replay is not None:
        return replay
    async with Pins.of(ctx) as pins:
        incoming = await service.fetch_url(ctx, body.url, pins)
        return await record(ctx, caller.user_id, incoming, raw, key, pins)


async def replayed(
    ctx: AppContext, user_id: uuid.UUID, raw: Any, header: str | None, scope: str
) -> tuple[str, Response | None]:
    """The request's idempotency key (the header's, or derived from the body), and the answer
    stored under it when this body was already answered."""
    request_hash = idempotency.canonical_hash(raw)
    key = idempotency.resolve_key(header, user_id, request_hash, scope)
    async with ctx.db.read() as session:
        stored = await idempotency.lookup(session, user_id, key, request_hash, utcnow())
    if stored is None:
        return key, None
    return key, Response(stored.body, status_code=stored.status, media_type="application/json")


@router.post(
    "/upload",
    status_code=201,
    response_model=MediaView,
    responses=error_responses(400, 413, 415, *AUTHED),
    summary="Upload a file (multipart/form-data, field `file`)",
)
async def upload(ctx: Context, caller: Creator, file: UploadFile) -> Response:
    async with Pins.of(ctx) as pins:
        incoming = await receive_upload(ctx, file, pins)
        return await record(ctx, caller.user_id, incoming, None, None, pins)


@router.get(
    "/{media_id}",
    response_model=MediaView,
    responses=error_responses(404, *AUTHED),
    summary="Describe stored media",
)
async def get_media(ctx: Context, caller: Caller, media_id: str) -> MediaView:
    async with ctx.db.read() as session:
        media = await repository.get(session, caller.user_id, id_or_404(media_id, "media"))
    if media is None:
        raise NotFound(f"No media {media_id}.")
    return view_of(ctx, media)


@router.delete(
    "/{media_id}",
    status_code=204,
    responses=error_responses(404, 409, *AUTHED),
    summary="Delete stored media that no pending post uses",
)
async def delete_media(ctx: Context, caller: Caller, media_id: str) -> Response:
    async with ctx.db.transaction() as session:
        media = await repository.get(
            session, caller.user_id, id_or_404(media_id, "media"), lock=True
        )
        if media is None:
            raise NotFound(f"No media {media_id}.")
        if await repository.used_by_pending_post(session, caller.user_id, str(media.id)):
            raise Conflict("A post that has not finished uses this media.", {"id": media_id})
        unused = await leave(session, media.storage_key, media_id=media.id)
    if unused:
        await delete_unused(ctx.db, ctx.media_store, media.storage_key)
    return Response(status_code=204)


@public_router.api_route("/media/{name}", methods=["GET", "HEAD"], include_in_schema=False)
async def serve_media(
    ctx: Context,
    request: Request,
    name: str,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
) -> Response:
    """The stored file at its unguessable URL, with byte ranges (or a presigned S3 URL); HEAD
    answers the same headers without opening the file."""
    token = name.partition(".")[0]
    async with ctx.db.read() as session:
        media = await repository.by_token(session, token)
    if media is None:
        raise NotFound("No such media.")
    signed = await ctx.media_store.presigned_url(media.storage_key, PRESIGN_SECONDS)
    if signed is not None:
        return RedirectResponse(signed, status_code=307)
    return await _ranged(ctx, media, range_header, head=request.method == "HEAD")


async def _ranged(
    ctx: AppContext, media: Media, range_header: str | None, *, head: bool
) -> Response:
    size = media.bytes
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": "public, max-age=31536000, immutable",
        # the type is the one sniffed at intake: a browser must not guess another (HTML)
        "X-Content-Type-Options": "nosniff",
    }
    span = _parse_range(range_header, size)
    if isinstance(span, str):
        raise RangeNotSatisfiable(
            f"The range {range_header} starts past the end of the file ({size} bytes).",
            {"range": range_header, "size": size},
            {"Content-Range": f"bytes */{size}"},  # RFC 9110 asks it of a 416
        )
    start, end = (0, size) if span is None else span
    status = 200 if span is None else 206
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    if head:  # Response keeps a Content-Length it is given, even with no body
        return Response(status_code=status, media_type=media.content_type, headers=headers)
    store, key = ctx.media_store, media.storage_key
    body = await _opened(store.stream(key) if span is None else store.stream(key, start, end), key)
    return StreamingResponse(body, status, media_type=media.content_type, headers=headers)


async def _opened(stream: AsyncIterator[bytes], key: str) -> AsyncIterator[bytes]:
    """The stream with its first chunk read: a lost file is a 404 before any header is sent,
    not a 200 whose body breaks off (which a platform would take for a network fault)."""
    try:
        first = await anext(stream, b"")
    except FileNotFoundError:
        log.warning("stored_media_missing", storage_key=key)
        raise NotFound("The stored file of this media is missing.") from None

    async def chunks() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in stream:
            yield chunk

    return chunks()


def _parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """One `bytes=a-b` range as [start, end); None to send it all; "unsatisfiable"."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if first == "":
            length = int(last)
            start, end = max(0, size - length), size
        else:
            start = int(first)
            if last != "" and int(last) < start:
                return None  # not a valid range (RFC 9110): send the whole file
            end = size if last == "" else min(size, int(last) + 1)
    except ValueError:
        return None
    if start >= size or start >= end or start < 0:
        return "unsatisfiable"
    return start, end
