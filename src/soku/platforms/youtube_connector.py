"""The YouTube connector: uploads a video through the Data API v3 (`videos.insert`), or its fake.

Follows /work/shared/platforms/youtube.md. One post is one video, uploaded with the resumable
protocol (`youtube_upload`); our text's first line is its title, the rest its description.
The steps, each saved in the checkpoint by the engine before the next runs:

- `session`: the video's size and type read from our store, then `POST
  {upload_url}?uploadType=resumable&part=snippet,status` with the video resource; the
  session URI (the `Location` header, used as returned) is saved;
- `upload`: every byte but the last chunk, in chunks, starting where the session says it
  stands, so a crash mid-upload resumes without sending a byte twice; a session that has
  expired (404) is opened again and the upload starts over;
- `publish`: the last chunk, which makes the video (the point of no return; 201 with the
  video resource and its id), then a short check of its processing (`GET
  /youtube/v3/videos?part=status,processingDetails`): failed or rejected fails the delivery,
  still processing is published (YouTube finishes on its own);
- `reconcile`: asks the session where it stands: complete means published (the video is in
  the answer), still incomplete means not; an expired session cannot tell (see `reconcile`);
- `refresh`: `POST {token_url}` with `grant_type=refresh_token` (Google keeps the refresh
  token, and answers no new one).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import httpx

from soku.platforms import media_reader
from soku.platforms.api_calls import access_token, json_answer
from soku.platforms.connector import (
    AccountAccess,
    CannotTell,
    ErrorKind,
    Job,
    NotPublished,
    PlatformError,
    Published,
    ReconcileResult,
    RefreshedTokens,
    Step,
)
from soku.platforms.token_refresh import RefreshGrant, refresh_tokens
from soku.platforms.youtube import title_and_description
from soku.platforms.youtube_errors import LABEL, map_error, refresh_error
from soku.platforms.youtube_upload import (
    QUANTUM,
    Standing,
    Upload,
    final_chunk_start,
    open_session,
    send,
    standing,
)

API_URL = "https://www.googleapis.com"
UPLOAD_URL = "https://www.googleapis.com/upload/youtube/v3/videos"
TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL, not a secret)
WEB_URL = "https://www.youtube.com"
CHUNK_BYTES = 8 * 1024 * 1024
MAX_VIDEO_BYTES = 256 * 1024**3  # youtube.md: files up to 256 GB
PRIVACY = ("public", "unlisted", "private")
FAILED_UPLOAD = {"failed": "failureReason", "rejected": "rejectionReason", "deleted": ""}
FAILED_PROCESSING = ("failed", "terminated")
GRANT = RefreshGrant("YouTube", map_error, refresh_error)


class YouTubeConnector:
    platform = "youtube"

    def __init__(
        self,
        api_url: str = API_URL,
        *,
        upload_url: str = UPLOAD_URL,
        token_url: str = TOKEN_URL,
        web_url: str = WEB_URL,
        client_id: str | None = None,
        client_secret: str | None = None,
        privacy_status: str = "public",
        category_id: str = "22",
        chunk_bytes: int = CHUNK_BYTES,
        poll_seconds: float = 1.0,
        max_processing_wait: float = 5.0,  # inside the publish call's deadline (20 s)
    ) -> None:
        if privacy_status not in PRIVACY:
            raise ValueError("privacy_status must be public, unlisted or private")
        if chunk_bytes <= 0 or chunk_bytes % QUANTUM:
            raise ValueError("chunk_bytes must be a positive multiple of 262144 (256 KiB)")
        self.api_url, self.web_url = api_url.rstrip("/"), web_url.rstrip("/")
        self.upload_url, self.token_url = upload_url, token_url
        self.client_id, self.client_secret = client_id, client_secret
        self.privacy_status, self.category_id = privacy_status, category_id
        self.chunk_bytes = chunk_bytes
        self.poll_seconds, self.max_processing_wait = poll_seconds, max_processing_wait

    def steps(self, job: Job) -> Sequence[Step]:
        return [Step("session", self._session), Step("upload", self._upload)]

    async def publish(self, job: Job, client: httpx.AsyncClient) -> Published:
        upload = _upload_of(job, "upload")
        now = await standing(client, upload)
        if now.expired:  # lapsed before it was complete (a complete one answers 200/201)
            upload, now = await self._renew(job, client, upload), Standing(0)
        if now.video is None:
            now = await send(client, upload, now.offset, upload.total, self.chunk_bytes)
        if now.video is None:
            message = f"{LABEL}'s upload session expired while the video was being sent."
            raise PlatformError(ErrorKind.server_error, "upload_session_expired", message)
        video = now.video
        await self._check_processing(client, job.account, str(video["id"]))
        return Published(str(video["id"]), self.permalink(str(video["id"])), raw=video)

    async def reconcile(self, job: Job, client: httpx.AsyncClient) -> ReconcileResult:
        if "upload" not in job.checkpoint.get("steps", {}):
            return NotPublished()  # the publish needs the upload step's session
        upload = _upload_of(job, "upload")
        now = await standing(client, upload)
        if now.video is not None:
            video_id = str(now.video["id"])
            return Published(video_id, self.permalink(video_id), raw=now.video)
        if not now.expired:
            return NotPublished()  # the session still waits for bytes: no video was made
        # An expired session says nothing of a video a renewed one may have made, and
        # youtube.md documents no listing of a channel's uploads to look it up in.
        return CannotTell(f"{LABEL}'s upload session has expired, so it cannot say")

    async def refresh(self, account: AccountAccess, client: httpx.AsyncClient) -> RefreshedTokens:
        return await refresh_tokens(GRANT, self.token_url, self, account, client)

    def permalink(self, video_id: str) -> str:
        return f"{self.web_url}/watch?v={video_id}"

    def resource(self, job: Job) -> dict[str, Any]:
        """The video resource the session opens with: title, description, privacy."""
        title, description = title_and_description(job.text)
        snippet = {"title": title, "description": description, "categoryId": self.category_id}
        status = {"privacyStatus": self.privacy_status, "selfDeclaredMadeForKids": False}
        return {"snippet": snippet, "status": status}

    # --- steps ---------------------------------------------------------------------------

    async def _session(self, job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
        if len(job.video_urls) != 1:
            message = "A YouTube post is exactly one video."
            raise PlatformError(ErrorKind.permanent, "video_required", message)
        total, media_type = await media_reader.measure(client, job.video_urls[0])
        if not 0 < total <= MAX_VIDEO_BYTES:
            message = f"YouTube takes videos of 1 byte to 256 GB; this one has {total} bytes."
            raise PlatformError(ErrorKind.permanent, "video_size", message)
        session = await open_session(
            client, self.upload_url, access_token(job.account, LABEL), self.resource(job),
            (total, media_type), {},
        )  # fmt: skip
        return {"session": session, "bytes": total, "type": media_type}

    async def _upload(self, job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
        upload = _upload_of(job, "session")
        stop = final_chunk_start(upload.total, self.chunk_bytes)
        now = Standing(0)
        if stop > 0:
            now = await standing(client, upload)
            if now.expired:
                upload, now = await self._renew(job, client, upload), Standing(0)
            if now.video is None:
                now = await send(client, upload, now.offset, stop, self.chunk_bytes)
            if now.expired:
                message = f"{LABEL}'s upload session expired; the next attempt opens another."
                raise PlatformError(ErrorKind.server_error, "upload_session_expired", message)
        return {"session": upload.session, "sent": now.offset}

    async def _renew(self, job: Job, client: httpx.AsyncClient, upload: Upload) -> Upload:
        """A new session for the same video, when the old one expired (404)."""
        session = await open_session(
            client, self.upload_url, upload.token, self.resource(job),
            (upload.total, upload.media_type), {},
        )  # fmt: skip
        return Upload(session, upload.total, upload.media_type, upload.source, upload.token)

    # --- after the upload ----------------------------------------------------------------

    async def _check_processing(
        self, client: httpx.AsyncClient, account: AccountAccess, video_id: str
    ) -> None:
        """Reads the video's status for a little while: a failure raises; still processing is
        fine (the video exists, and YouTube finishes it on its own)."""
        deadline = time.monotonic() + self.max_processing_wait
        params = {"part": "status,processingDetails", "id": video_id}
        while True:
            try:
                listing = await self._get(client, account, "/youtube/v3/videos", params)
            except PlatformError:
                return  # the video is made; a status we cannot read does not undo it
            items = listing.get("items")
            video = items[0] if isinstance(items, list) and items else {}
            if _processed(video if isinstance(video, dict) else {}, video_id):
                return
            if time.monotonic() + self.poll_seconds > deadline:
                return
            await asyncio.sleep(self.poll_seconds)

    async def _get(
        self, client: httpx.AsyncClient, account: AccountAccess, path: str, params: dict[str, str]
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {access_token(account, LABEL)}"}
        call = client.get(self.api_url + path, params=params, headers=headers)
        return await json_answer(call, map_error)


def _processed(video: dict[str, Any], video_id: str) -> bool:
    """True once processed; False while processing; a failure raises."""
    status = video.get("status")
    status = status if isinstance(status, dict) else {}
    details = video.get("processingDetails")
    details = details if isinstance(details, dict) else {}
    upload_status = str(status.get("uploadStatus") or "")
    processing = str(details.get("processingStatus") or "")
    if processing in FAILED_PROCESSING:  # the more precise reason, when both failed
        reason = details.get("processingFailureReason") or processing
        _fail(video_id, f"processing {processing} ({reason})", video)
    if upload_status in FAILED_UPLOAD:
        reason = status.get(FAILED_UPLOAD[upload_status]) or upload_status
        _fail(video_id, f"its upload status is {upload_status} ({reason})", video)
    return upload_status == "processed" or processing == "succeeded"


def _fail(video_id: str, what: str, raw: dict[str, Any]) -> None:
    message = f"{LABEL} could not process video {video_id}: {what}."
    raise PlatformError(ErrorKind.processing_failed, "processing_failed", message, raw=raw)


def _upload_of(job: Job, name: str) -> Upload:
    steps = job.checkpoint.get("steps", {})
    opened, result = steps.get("session"), steps.get(name)
    if not isinstance(opened, dict) or not isinstance(result, dict):
        raise RuntimeError(f"delivery {job.delivery_id}: step {name} has no result yet")
    return Upload(
        str(result["session"]), int(opened["bytes"]), str(opened["type"]),
        job.video_urls[0], access_token(job.account, LABEL),
    )  # fmt: skip
