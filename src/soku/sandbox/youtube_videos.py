"""The YouTube fake's videos: the resumable `videos.insert`, `videos.list`, the watch page.

- `POST /upload/youtube/v3/videos?uploadType=resumable&part=snippet,status` with the video
  resource: checked as YouTube checks it (youtube.md "Constraints"), charged to the daily
  quota, answered 200 with the session URI in `Location`;
- `PUT {session}`: a chunk (`Content-Range: bytes a-b/total`, answered 308 with `Range`), the
  last one (answered 201, or 200 as a knob, with the video resource), the whole file at once
  (no Content-Range), or a question (`bytes */total`); 404 once the session has expired;
- `GET /youtube/v3/videos?part=…&id=…`: each read moves a video's processing along.
"""

from __future__ import annotations

import asyncio
import html
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from soku.sandbox.youtube_faults import CallKind, api_error, fault_error
from soku.sandbox.youtube_gate import YouTubeFake
from soku.sandbox.youtube_state import Session, Video

MAX_TITLE, MAX_DESCRIPTION_BYTES, MAX_TAGS = 100, 5000, 500  # youtube.md "Constraints"
MAX_VIDEO_BYTES = 256 * 1024**3
PRIVACY = ("public", "unlisted", "private")
_RANGE = re.compile(r"^bytes (?:(\d+)-(\d+)|\*)/(\d+)$")
UPLOAD_PATH = "/upload/youtube/v3/videos"


def video_routes(app: FastAPI, fake: YouTubeFake) -> None:
    """The resumable `videos.insert`: opening a session, and the PUTs to it."""
    state = fake.state

    @app.post(UPLOAD_PATH)
    async def insert(request: Request, uploadType: str = "", part: str = "") -> Response:
        channel, _ = await fake.gate(request, "insert")
        if uploadType != "resumable":
            raise api_error(400, "badRequest", "This sandbox takes uploadType=resumable only.")
        if "snippet" not in part.split(","):
            raise api_error(400, "required", "Required parameter: part (with snippet)", "global")
        resource = _checked(await _json(request))
        total = _announced(request)
        state.charge_insert(channel)
        key = state.open_session(channel, resource, total)
        location = f"{fake.base_url(request)}{UPLOAD_PATH}?uploadType=resumable&upload_id={key}"
        return Response(status_code=200, headers={"location": location})

    @app.put(UPLOAD_PATH)
    async def upload(request: Request, upload_id: str = "") -> Response:
        session = state.live_session(upload_id)
        data = await request.body()
        first, total, kind = _range_of(request.headers.get("content-range"), len(data))
        _, fault = await fake.gate(request, kind)
        if session is None:
            raise fault_error("not_found")
        if kind == "query":
            return _standing(fake, session)
        video = state.receive(session, first, data, total)
        if video is None:
            return _standing(fake, session)
        if fault is not None and fault.accept_then_delay is not None:
            await asyncio.sleep(fault.accept_then_delay)
            error = fault.error("publish")
            if error is not None:
                raise error
        body = video.view({"snippet", "status"})
        return JSONResponse(body, status_code=state.config.complete_status)


def listing_routes(app: FastAPI, fake: YouTubeFake) -> None:
    """`videos.list` and the watch page."""
    state = fake.state

    @app.get("/youtube/v3/videos")
    async def listing(request: Request, part: str = "", id: str = "") -> JSONResponse:
        channel, fault = await fake.gate(request, "status")
        parts = {p.strip() for p in part.split(",") if p.strip()}
        if not parts:
            raise api_error(400, "required", "Required parameter: part", "global")
        if not id:
            raise api_error(400, "missingRequiredParameter", "No filter selected.", "global")
        items = []
        for video_id in id.split(","):
            video = state.videos.get(video_id.strip())
            if video is None:
                continue
            own = video.channel_id == channel.id
            if own:
                state.poll(video, fail=fault is not None)
            items.append(video.view(parts if own else parts - {"processingDetails"}))
        return JSONResponse({"kind": "youtube#videoListResponse", "items": items,
                             "pageInfo": {"totalResults": len(items),
                                          "resultsPerPage": len(items)}})  # fmt: skip

    @app.get("/watch", response_class=HTMLResponse)
    async def watch(v: str = "") -> HTMLResponse:
        video = state.videos.get(v)
        if video is None:
            return HTMLResponse("<!doctype html><h1>Video unavailable</h1>", 404)
        snippet = video.resource.get("snippet", {})
        title = html.escape(str(snippet.get("title", "")))
        return HTMLResponse(
            f"<!doctype html><meta charset=utf-8><title>{title} - YouTube</title>"
            f"<article><h1>{title}</h1><p class=description>"
            f"{html.escape(str(snippet.get('description', '')))}</p></article>"
        )


def _standing(fake: YouTubeFake, session: Session) -> Response:
    if session.video_id:
        video = fake.state.videos[session.video_id]
        body = video.view({"snippet", "status"})
        return JSONResponse(body, status_code=fake.state.config.complete_status)
    headers = {"range": f"bytes=0-{session.received - 1}"} if session.received else {}
    return Response(status_code=308, headers=headers)


def _range_of(header: str | None, size: int) -> tuple[int, int, CallKind]:
    """(first byte, total, kind of call) of a PUT: a question, a chunk, or the last one."""
    if header is None:
        return 0, size, "publish"  # the whole file in one request
    match = _RANGE.match(header.strip())
    if match is None:
        raise api_error(400, "badRequest", "Content-Range is not valid.", "global")
    start, end, total = match.groups()
    if start is None:
        return 0, int(total), "query"
    first, last = int(start), int(end)
    if last < first or last - first + 1 != size or last >= int(total):
        raise api_error(400, "badRequest", "Content-Range does not match the body.", "global")
    return first, int(total), "publish" if last + 1 == int(total) else "chunk"


def _announced(request: Request) -> int | None:
    length = request.headers.get("x-upload-content-length")
    kind = request.headers.get("x-upload-content-type", "video/*").lower()
    if not (kind.startswith("video/") or kind == "application/octet-stream"):
        raise api_error(400, "invalidContentType", "Upload a video (video/* or "
                                                   "application/octet-stream).")  # fmt: skip
    if length is None:
        return None
    if not length.isdigit() or not 0 < int(length) <= MAX_VIDEO_BYTES:
        raise api_error(400, "badRequest", "X-Upload-Content-Length must be 1 byte to 256 GB.")
    return int(length)


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise api_error(400, "parseError", "Parse Error", "global")
    return body


def _checked(resource: dict[str, Any]) -> dict[str, Any]:
    """The video resource, as YouTube refuses it: title, description, tags, privacy."""
    snippet, status = resource.get("snippet"), resource.get("status") or {}
    if not isinstance(snippet, dict) or not isinstance(status, dict):
        raise api_error(400, "invalidVideoMetadata", "The request metadata is invalid.")
    title, description = snippet.get("title"), snippet.get("description", "")
    if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE or _angled(title):
        raise fault_error("invalid_title")
    if (
        not isinstance(description, str)
        or _angled(description)
        or (len(description.encode()) > MAX_DESCRIPTION_BYTES)
    ):
        raise api_error(400, "invalidDescription", "The request metadata specifies an invalid "
                                                   "video description.")  # fmt: skip
    tags = snippet.get("tags", [])
    if not isinstance(tags, list) or sum(len(str(t)) for t in tags) > MAX_TAGS:
        raise api_error(400, "invalidTags", "The request metadata specifies invalid video tags.")
    category = snippet.get("categoryId", "22")
    if not (isinstance(category, str) and category.isdigit()):
        raise api_error(400, "invalidCategoryId", "The snippet.categoryId is not valid.")
    privacy = status.get("privacyStatus", "public")
    if privacy not in PRIVACY or (status.get("publishAt") and privacy != "private"):
        raise api_error(400, "invalidVideoMetadata", "status.privacyStatus is not valid.")
    return {"snippet": dict(snippet), "status": {**status, "privacyStatus": privacy}}


def _angled(text: str) -> bool:
    return "<" in text or ">" in text


def describe(video: Video, base: str) -> dict[str, Any]:
    """A video as `/_inspect/posts` shows it."""
    snippet, status = video.resource.get("snippet", {}), video.resource.get("status", {})
    title, description = snippet.get("title", ""), snippet.get("description", "")
    return {"id": video.id, "channel_id": video.channel_id, "title": title,
            "description": description, "text": f"{title}\n{description}".strip(),
            "privacy": status.get("privacyStatus"), "bytes": video.size, "sha256": video.sha256,
            "upload_status": video.upload_status, "url": f"{base}/watch?v={video.id}",
            "media": [{"id": video.id, "kind": "video", "bytes": video.size,
                       "sha256": video.sha256, "upload_id": video.upload_id}]}  # fmt: skip
