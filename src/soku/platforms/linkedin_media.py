"""The LinkedIn connector's media steps: images and a video uploaded, then awaited until AVAILABLE.

- images: one `upload_<i>` step each (`POST /rest/images?action=initializeUpload`, then a PUT
  of the bytes to the returned uploadUrl), then `wait_processing` until each is AVAILABLE;
- a video: `init` (`POST /rest/videos?action=initializeUpload` with fileSizeBytes), one
  `part_<n>` step per upload instruction (a PUT of bytes firstByte..lastByte, keeping the
  ETag), `finalize` (`action=finalizeUpload` with the ETags in order), then `wait_processing`
  (`GET /rest/videos/{urn}` until AVAILABLE; PROCESSING_FAILED fails).

Upload URLs are used as LinkedIn returns them. Media is read from our store by URL
(`media_reader`): an image whole, a video one part per step through byte ranges.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from soku.platforms import media_reader
from soku.platforms.connector import (
    AccountAccess,
    ErrorKind,
    GrowingSteps,
    Job,
    PlatformError,
    Step,
    StepFunction,
)
from soku.platforms.linkedin_api import LinkedInApi
from soku.platforms.linkedin_checkpoint import post_author, step_result

MAX_IMAGE_BYTES = 20 * 1024 * 1024  # no documented cap; an image is held whole, so ours
MAX_VIDEO_BYTES = 500 * 1024 * 1024  # 75 KB to 500 MB (linkedin.md "Video limits")
MAX_PART_BYTES = 32 * 1024 * 1024  # LinkedIn's parts are 4 MB; refuse to hold far more


class LinkedInMedia:
    """The steps that upload a job's media, polling every `poll_seconds` while it processes."""

    def __init__(self, api: LinkedInApi, poll_seconds: float, max_processing_wait: float) -> None:
        self.api = api
        self.poll_seconds, self.max_processing_wait = poll_seconds, max_processing_wait

    def image_steps(self, job: Job) -> list[Step]:
        """`upload_0` … `upload_<n-1>`, then `wait_processing` (none without images)."""
        count = len(job.image_urls)
        uploads = [Step(f"upload_{n}", self._upload_image(job, n)) for n in range(count)]
        return uploads + ([Step("wait_processing", self._wait_images)] if count else [])

    def video_steps(self, job: Job, head: list[Step]) -> Sequence[Step]:
        return _video_steps(self, job, head)

    def _upload_image(self, job: Job, index: int) -> StepFunction:
        url = job.image_urls[index]

        async def run(job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
            too_big = f"Soku sends LinkedIn images of up to 20 MB; {url} is larger."
            data, media_type = await media_reader.read_whole(client, url, MAX_IMAGE_BYTES, too_big)
            body = {"initializeUploadRequest": {"owner": post_author(job)}}
            params = {"action": "initializeUpload"}
            answer = await self.api.call(
                client, job.account, "POST", "/rest/images", params=params, json=body
            )
            value = _value(answer, "image", "uploadUrl")
            headers = {"Content-Type": media_type}
            await self.api.put(client, job.account, value["uploadUrl"], data, headers)
            return {"image": str(value["image"]), "bytes": len(data)}

        return run

    async def _wait_images(self, job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
        urns = [step_result(job, f"upload_{n}")["image"] for n in range(len(job.image_urls))]
        for urn in urns:
            await self._wait(client, job.account, "images", urn)
        return {"images": urns, "status": "AVAILABLE"}

    async def _init(self, job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
        total, _ = await media_reader.measure(client, job.video_urls[0])
        if not 0 < total <= MAX_VIDEO_BYTES:
            message = (
                f"LinkedIn takes videos of up to {MAX_VIDEO_BYTES} bytes; this one has {total}."
            )
            raise PlatformError(ErrorKind.permanent, "video_size", message)
        request = {"owner": post_author(job), "fileSizeBytes": total}
        request.update(uploadCaptions=False, uploadThumbnail=False)
        params = {"action": "initializeUpload"}
        body = {"initializeUploadRequest": request}
        answer = await self.api.call(
            client, job.account, "POST", "/rest/videos", params=params, json=body
        )
        value = _value(answer, "video", "uploadInstructions")
        parts = _parts(value["uploadInstructions"], total, answer)
        token = str(value.get("uploadToken") or "")
        return {"video": str(value["video"]), "upload_token": token, "total_bytes": total,
                "parts": parts}  # fmt: skip

    def _part(self, index: int) -> StepFunction:
        async def run(job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
            part = step_result(job, "init")["parts"][index]
            size = part["last"] - part["first"] + 1
            chunk = await media_reader.read_range(client, job.video_urls[0], part["first"], size)
            headers = {"Content-Type": "application/octet-stream"}
            response = await self.api.put(client, job.account, part["url"], chunk, headers)
            etag = response.headers.get("etag", "")
            if not etag:
                message = f"LinkedIn took video part {index} but sent no ETag for it."
                raise PlatformError(ErrorKind.server_error, "no_etag", message)
            return {"etag": etag, "bytes": size}

        return run

    async def _finalize(self, job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
        init, done = step_result(job, "init"), job.checkpoint.get("steps", {})
        names = [f"part_{n}" for n in range(len(init["parts"]))]
        if any(name not in done for name in names):
            message = "Some video parts are not uploaded yet; the next attempt sends them."
            raise PlatformError(ErrorKind.server_error, "upload_incomplete", message)
        request = {"video": init["video"], "uploadToken": init["upload_token"]}
        request["uploadedPartIds"] = [done[name]["etag"] for name in names]
        params, body = {"action": "finalizeUpload"}, {"finalizeUploadRequest": request}
        try:
            await self.api.send(
                client, job.account, "POST", "/rest/videos", params=params, json=body
            )
        except PlatformError as exc:
            if exc.http_status != 400:
                raise
            # Finalized already, by an attempt that died before its result was saved?
            status = await self._status(client, job.account, "videos", init["video"])
            if status.get("status") not in ("PROCESSING", "AVAILABLE"):
                raise exc from None
        return {"video": init["video"], "parts": len(names)}

    async def _wait_video(self, job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
        video = step_result(job, "finalize")["video"]
        await self._wait(client, job.account, "videos", video)
        return {"video": video, "status": "AVAILABLE"}

    async def _wait(
        self, client: httpx.AsyncClient, account: AccountAccess, kind: str, urn: str
    ) -> None:
        """Reads the media until AVAILABLE; LinkedIn may hide a post made earlier (linkedin.md)."""
        deadline = time.monotonic() + self.max_processing_wait
        while True:
            media = await self._status(client, account, kind, urn)
            state = media.get("status")
            if state == "AVAILABLE":
                return
            if state == "PROCESSING_FAILED":
                reason = media.get("processingFailureReason") or "no reason given"
                message = f"LinkedIn could not process {urn}: {reason}."
                raise PlatformError(
                    ErrorKind.processing_failed, "processing_failed", message, raw=media
                )
            if time.monotonic() + self.poll_seconds > deadline:
                message = f"LinkedIn was still processing {urn} ({state}); checking again later."
                raise PlatformError(
                    ErrorKind.server_error,
                    "media_still_processing",
                    message,
                    retry_after=self.poll_seconds,
                    raw=media,
                )
            await asyncio.sleep(self.poll_seconds)

    async def _status(
        self, client: httpx.AsyncClient, account: AccountAccess, kind: str, urn: str
    ) -> dict[str, Any]:
        return await self.api.call(client, account, "GET", f"/rest/{kind}/{quote(urn, safe='')}")


def _video_steps(media: LinkedInMedia, job: Job, head: list[Step]) -> GrowingSteps:
    """`init`, `part_0` … `part_<n-1>`, `finalize`, `wait_processing`; LinkedIn names the
    parts in `init`'s answer."""

    def current() -> list[Step]:
        init = job.checkpoint.get("steps", {}).get("init")
        parts = len(init["parts"]) if isinstance(init, dict) else 0
        return [
            *head,
            Step("init", media._init),
            *(Step(f"part_{n}", media._part(n)) for n in range(parts)),
            Step("finalize", media._finalize),
            Step("wait_processing", media._wait_video),
        ]

    return GrowingSteps(current)


def _value(answer: dict[str, Any], *names: str) -> dict[str, Any]:
    value = answer.get("value")
    if not isinstance(value, dict) or any(not value.get(name) for name in names):
        message = "LinkedIn answered without the expected `value` object."
        raise PlatformError(ErrorKind.server_error, "unreadable_answer", message, raw=answer)
    return value


def _parts(instructions: Any, total: int, answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The upload instructions as parts that cover the file once, in order, each held whole."""
    parts, expected = [], 0
    for item in instructions if isinstance(instructions, list) else []:
        first, last = item.get("firstByte"), item.get("lastByte")
        if not (isinstance(first, int) and isinstance(last, int) and item.get("uploadUrl")):
            break
        if first != expected or not 0 <= last - first < MAX_PART_BYTES:
            break
        parts.append({"url": str(item["uploadUrl"]), "first": first, "last": last})
        expected = last + 1
    if not parts or expected != total:
        message = "LinkedIn's upload instructions do not cover the video in parts we can send."
        raise PlatformError(ErrorKind.server_error, "unreadable_answer", message, raw=answer)
    return parts
