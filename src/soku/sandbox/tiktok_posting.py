"""The TikTok fake's posting routes: creator info, the two init calls, the upload, the status.

- `POST /v2/post/publish/creator_info/query/`: the creator's name and privacy options;
- `POST /v2/post/publish/video/init/`: FILE_UPLOAD (answers `publish_id` and an `upload_url`
  of this fake) or PULL_FROM_URL (the video is fetched at once);
- `POST /v2/post/publish/content/init/` (counted and faulted as `publish`): a photo post
  pulled from 1-35 URLs (JPEG or WebP, ≤ 20 MB each; a PNG fails `file_format_check_failed`);
- `PUT /upload/video/?upload_id&upload_token`: the chunks in order, each with its
  Content-Range; 206 before the last, 201 for it (U, knobs); a chunk sent again is taken again;
  the last one is the publish (counted and faulted as `publish`, the others as `upload`);
- `POST /v2/post/publish/status/fetch/`: PROCESSING_UPLOAD (or _DOWNLOAD) → PUBLISH_COMPLETE
  (SEND_TO_USER_INBOX for MEDIA_UPLOAD), its `publicaly_available_post_id` empty until
  "moderation" is over, or FAILED with a `fail_reason`.
"""

from __future__ import annotations

import dataclasses
import io
import re
import secrets
import time
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from PIL import Image, UnidentifiedImageError

from soku.sandbox.common import fetch_media
from soku.sandbox.tiktok_checks import (
    check_file_upload,
    check_photos,
    check_post_info,
    check_pulled,
    invalid,
    section,
)
from soku.sandbox.tiktok_state import FakeState, FaultSpec, Publish, TikTokError, log_id

if TYPE_CHECKING:
    from soku.sandbox.tiktok import TikTokFake

MAX_PHOTO_BYTES = 20 * 1024 * 1024
PHOTO_FORMATS = ("JPEG", "WEBP")  # no PNG (tiktok.md "Media constraints")
VIDEO_TYPES = ("video/mp4", "video/quicktime", "video/webm")
_RANGE = re.compile(r"^bytes ([0-9]+)-([0-9]+)/([0-9]+)$")


def ok(data: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"data": data, "error": {"code": "ok", "message": "", "log_id": log_id()}})


def posting_routes(app: FastAPI, fake: TikTokFake) -> None:
    state = fake.state

    @app.post("/v2/post/publish/creator_info/query/")
    async def creator_info(request: Request) -> JSONResponse:
        creator, _, _ = await fake.gate(request, "creator_info", "creator_info")
        return ok({
            "creator_avatar_url": f"{fake.base_url(request)}/@{creator.username}/avatar.png",
            "creator_username": creator.username, "creator_nickname": creator.nickname,
            "privacy_level_options": state.privacy_options(), "comment_disabled": False,
            "duet_disabled": False, "stitch_disabled": False,
            "max_video_post_duration_sec": state.config.max_video_post_duration_sec,
        })  # fmt: skip

    @app.post("/v2/post/publish/video/init/")
    async def video_init(request: Request) -> JSONResponse:
        creator, _, _ = await fake.gate(request, "video_init", "init")
        body = await json_body(request)
        info, source = section(body, "post_info"), section(body, "source_info")
        check_post_info(state, creator, info, "VIDEO")
        kind = source.get("source")
        publish = Publish(f"v_pub_file~v2-1.{state.new_id()}", creator.open_id, "VIDEO",
                          str(kind), info, time.time())  # fmt: skip
        if kind == "FILE_UPLOAD":
            size, chunk, count = check_file_upload(state, source)
            publish.total_bytes, publish.chunk_size, publish.chunk_count = size, chunk, count
            publish.upload_token = secrets.token_urlsafe(16)
        elif kind == "PULL_FROM_URL":
            publish.id = publish.id.replace("v_pub_file", "v_pub_url")
            publish.urls = check_pulled(state, [source.get("video_url")])
            await fake.pull(publish, image=False)
        else:
            raise invalid("source must be FILE_UPLOAD or PULL_FROM_URL.")
        state.publishes[publish.id] = publish
        data = {"publish_id": publish.id}
        if kind == "FILE_UPLOAD":
            query = f"upload_id={publish.id}&upload_token={publish.upload_token}"
            data["upload_url"] = f"{fake.base_url(request)}/upload/video/?{query}"
        return ok(data)

    @app.post("/v2/post/publish/content/init/")
    async def content_init(request: Request) -> JSONResponse:
        creator, _, fault = await fake.gate(request, "publish", "init")
        body = await json_body(request)
        mode, images, _ = check_photos(state, body)
        info = section(body, "post_info")
        check_post_info(state, creator, info, "PHOTO")
        publish = Publish(f"p_pub_url~v2-1.{state.new_id()}", creator.open_id, "PHOTO",
                          "PULL_FROM_URL", {**info, "post_mode": mode}, time.time())  # fmt: skip
        publish.urls = images
        await fake.pull(publish, image=True)
        state.publishes[publish.id] = publish
        await fake.finish_fault(fault)
        return ok({"publish_id": publish.id})

    @app.put("/upload/video/")
    async def upload(request: Request) -> Response:
        return await _upload(fake, request)

    @app.post("/v2/post/publish/status/fetch/")
    async def status(request: Request) -> JSONResponse:
        creator, _, fault = await fake.gate(request, "status", "status")
        publish_id = (await json_body(request)).get("publish_id")
        publish = state.publish_of(creator, str(publish_id or ""))
        return ok(status_of(state, publish, fault))


async def json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise invalid("The body must be a JSON object.")
    return body


async def _upload(fake: TikTokFake, request: Request) -> Response:
    """One chunk; the last one is the publish (counted and faulted as `publish`)."""
    state, params = fake.state, request.query_params
    publish = state.publishes.get(params.get("upload_id", ""))
    token = params.get("upload_token", "")
    if (
        publish is None
        or not publish.upload_token
        or not secrets.compare_digest(publish.upload_token.encode(), token.encode())
    ):
        state.calls["upload"] += 1
        raise TikTokError("invalid_params", "The upload URL is not valid.", 404)  # (U)
    match = _RANGE.match(request.headers.get("content-range", ""))
    first = int(match[1]) if match else 0
    index = min(first // publish.chunk_size, publish.chunk_count - 1)
    kind = "publish" if index == publish.chunk_count - 1 else "upload"
    state.calls[kind] += 1
    fault = await fake.apply_fault(kind, publish.open_id)
    if request.headers.get("content-type", "").split(";")[0].strip() not in VIDEO_TYPES:
        raise TikTokError("invalid_file_upload", "Content-Type must be a video type.")
    data = await request.body()
    if match is None or int(match[3]) != publish.total_bytes:
        raise TikTokError("invalid_file_upload", "Content-Range must be bytes a-b/video_size.")
    size = publish.chunk_size if kind == "upload" else publish.total_bytes - first
    sizes = (int(match[2]) - first + 1, len(data))
    if first != index * publish.chunk_size or sizes != (size, size):
        raise TikTokError("invalid_file_upload", "The chunk is not one of the announced ones.")
    _take_chunk(state, publish, first, data)
    await fake.finish_fault(fault)
    config = state.config
    return Response(
        status_code=config.chunk_status if kind == "upload" else config.final_chunk_status
    )


def _take_chunk(state: FakeState, publish: Publish, first: int, data: bytes) -> None:
    """Keeps a chunk's digest; a chunk sent again (a retried PUT) is not counted twice."""
    if first in publish.chunks:
        return
    if first != publish.received:
        raise TikTokError("invalid_file_upload", "Chunks must be sent in order.")
    publish.digest.update(data)
    publish.chunks[first], publish.received = len(data), publish.received + len(data)
    if publish.uploaded:
        publish.post_id = state.new_id()


def status_of(state: FakeState, publish: Publish, fault: FaultSpec | None) -> dict[str, Any]:
    """The publish's status as `status/fetch` shows it; one read moves processing on."""
    if fault is not None and fault.error_code == "processing_failed":
        publish.fail_reason = fault.fail_reason
    pulled = publish.source == "PULL_FROM_URL"
    data: dict[str, Any] = {"uploaded_bytes": publish.received} if not pulled else {
        "downloaded_bytes": sum(f.size for f in publish.fetched)}  # fmt: skip
    config = state.config
    if not publish.uploaded:
        return {"status": "PROCESSING_UPLOAD", **data}
    if publish.fail_reason:
        return {"status": "FAILED", "fail_reason": publish.fail_reason, **data}
    reads, publish.polls = publish.polls, publish.polls + 1
    if reads < config.processing_polls:
        return {"status": "PROCESSING_DOWNLOAD" if pulled else "PROCESSING_UPLOAD", **data}
    if publish.post_info.get("post_mode") == "MEDIA_UPLOAD":
        return {"status": "SEND_TO_USER_INBOX", **data}
    moderated = reads >= config.processing_polls + config.moderation_polls
    ids = [publish.post_id] if moderated and publish.post_id is not None else []
    return {"status": "PUBLISH_COMPLETE", "publicaly_available_post_id": ids, **data}


def photo_problem(data: bytes) -> str | None:
    """Why TikTok would refuse these bytes as a photo (JPEG or WebP only)."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            kind = opened.format
    except (UnidentifiedImageError, OSError):
        return "file_format_check_failed"
    return None if kind in PHOTO_FORMATS else "file_format_check_failed"


async def pull(state: FakeState, origin: str, publish: Publish, image: bool) -> None:
    """Fetches a publish's URLs as TikTok pulls them; a failure shows in its status."""
    if not state.config.fetch_media:
        publish.post_id = state.new_id()
        return
    limit = MAX_PHOTO_BYTES if image else 4 * 1024**3
    for url in publish.urls:
        fetched = await fetch_media(url, max_bytes=limit, keep=image, public_url=origin)
        problem = None if fetched.ok else ("photo_pull_failed" if image else "video_pull_failed")
        if problem is None and image:
            problem = photo_problem(fetched.data)
        publish.fetched.append(dataclasses.replace(fetched, data=b""))
        if problem and not publish.fail_reason:
            publish.fail_reason = problem
    publish.post_id = state.new_id()
