"""The LinkedIn fake's media: the Images and Videos APIs, and the upload URLs they hand out."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from soku.sandbox.linkedin_bodies import (
    FinalizeVideo,
    InitImage,
    InitVideo,
    field_of,
    json_body,
    parse,
)
from soku.sandbox.linkedin_faults import CallKind, api_error
from soku.sandbox.linkedin_gate import LinkedInFake, encoded_urn
from soku.sandbox.linkedin_state import Media, now_ms

EXPIRES_MS = 30 * 86400 * 1000  # upload URLs expire about 30 days after init (linkedin.md)


def image_routes(app: FastAPI, fake: LinkedInFake) -> None:
    state = fake.state

    @app.post("/rest/images")
    async def initialize(request: Request, action: str = "") -> JSONResponse:
        member, _ = await fake.gate(request, "image_init")
        if action != "initializeUpload":
            raise api_error(400, f"Unknown action {action!r}", code="ILLEGAL_ARGUMENT")
        body = await json_body(request)
        init = parse(
            InitImage, body.get("initializeUploadRequest") if isinstance(body, dict) else None
        )
        item = state.new_media(member, init.owner, "image")
        url = f"{fake.base_url(request)}/dms-uploads/{state.upload_key(item, 0)}"
        value = {"uploadUrlExpiresAt": now_ms() + EXPIRES_MS, "uploadUrl": url, "image": item.urn}
        return JSONResponse({"value": value})

    @app.get("/rest/images/{urn}")
    async def image(request: Request, urn: str) -> JSONResponse:
        member, fault = await fake.gate(request, "image_status")
        item = state.owned(member, encoded_urn(request, urn, "image"), "image")
        state.poll(item, fail=fault is not None)
        return JSONResponse(_media_view(item, fake.base_url(request)))


def video_routes(app: FastAPI, fake: LinkedInFake) -> None:
    state = fake.state

    @app.post("/rest/videos")
    async def action(request: Request, action: str = "") -> Response:
        body = await json_body(request) if action else None
        if action == "initializeUpload":
            member, _ = await fake.gate(request, "video_init")
            init = parse(InitVideo, field_of(body, "initializeUploadRequest"))
            item = state.new_media(member, init.owner, "video")
            state.plan_parts(item, init.fileSizeBytes)
            base = fake.base_url(request)
            instructions = [
                {"uploadUrl": f"{base}/dms-uploads/{state.upload_key(item, n)}",
                 "firstByte": first, "lastByte": last}
                for n, (first, last) in enumerate(item.parts)
            ]  # fmt: skip
            value = {"uploadUrlsExpireAt": now_ms() + EXPIRES_MS, "video": item.urn,
                     "uploadInstructions": instructions,
                     "uploadToken": item.token if state.config.upload_token else ""}  # fmt: skip
            return JSONResponse({"value": value})
        if action == "finalizeUpload":
            member, _ = await fake.gate(request, "video_finalize")
            final = parse(FinalizeVideo, field_of(body, "finalizeUploadRequest"))
            item = state.owned(member, final.video, "video")
            state.finalize(item, final.uploadToken, final.uploadedPartIds)
            return Response(status_code=200)
        raise api_error(400, f"Unknown action {action!r}", code="ILLEGAL_ARGUMENT")

    @app.get("/rest/videos/{urn}")
    async def video(request: Request, urn: str) -> JSONResponse:
        member, fault = await fake.gate(request, "video_status")
        item = state.owned(member, encoded_urn(request, urn, "video"), "video")
        state.poll(item, fail=fault is not None)
        return JSONResponse(_media_view(item, fake.base_url(request)))


def _media_view(item: Media, base: str) -> dict[str, Any]:
    view: dict[str, Any] = {"owner": item.owner, "id": item.urn, "status": item.status}
    if item.status == "AVAILABLE":
        view["downloadUrl"] = f"{base}/dms/{item.kind}/{item.urn}"
        view["downloadUrlExpiresAt"] = now_ms() + 3600 * 1000
    if item.status == "PROCESSING_FAILED":
        view["processingFailureReason"] = item.failure  # (U) the field's name
    return view


def upload_route(app: FastAPI, fake: LinkedInFake) -> None:
    state = fake.state

    @app.put("/dms-uploads/{key}")
    async def upload(request: Request, key: str) -> Response:
        """The upload URL is the capability: it names the media and the part."""
        urn, part = state.uploads.get(key, ("", 0))
        item = state.media.get(urn)
        if item is None:
            raise api_error(404, "The upload URL is unknown or expired")
        kind: CallKind = "image_upload" if item.kind == "image" else "video_part"
        state.calls[kind] += 1
        await fake.apply_fault(kind, item.user_id)
        data = await request.body()
        if item.kind == "image":
            if item.status != "WAITING_UPLOAD":
                raise api_error(400, f"Image {item.urn} is already uploaded")
            state.receive_image(item, data)
            return Response(status_code=201)
        etag = state.receive_part(item, part, data)
        return Response(status_code=200, headers={"etag": etag})
