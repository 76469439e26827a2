"""The TikTok connector's steps before the post: who posts at which privacy level, and a
video's upload up to (not including) its last chunk.

- `creator`: `POST /v2/post/publish/creator_info/query/` (TikTok requires it before a Direct
  Post): the creator's username (for the permalink) and the privacy level to post at;
- a video: `init` (`POST /v2/post/publish/video/init/` with `source: FILE_UPLOAD`, the size
  and the chunk plan), then `chunk_0` … `chunk_<n-2>`, each a PUT of one byte range to the
  returned `upload_url`. The last chunk is the publish: once TikTok has every byte, it posts.

Chunks follow TikTok's media transfer guide (tiktok.md): `chunk_size` bytes each, the last one
absorbing the trailing bytes; a file no larger than one chunk goes whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from soku.platforms import media_reader
from soku.platforms.connector import (
    ErrorKind,
    GrowingSteps,
    Job,
    PlatformError,
    Step,
    StepFunction,
)
from soku.platforms.tiktok_api import CREATOR_INFO, VIDEO_INIT, TikTokApi

MAX_VIDEO_BYTES = 4 * 1024**3  # ≤ 4 GB (tiktok.md, "Media constraints")
CHUNK_BYTES = 10 * 1024 * 1024  # within TikTok's 5-64 MB per chunk
MAX_CHUNKS = 1000
# Most public first: a level the creator does not offer is replaced by the most public one
# offered (a private account has no PUBLIC_TO_EVERYONE).
PRIVACY_LEVELS = ("PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "FOLLOWER_OF_CREATOR",
                  "SELF_ONLY")  # fmt: skip


def step_result(job: Job, name: str) -> dict[str, Any]:
    result = job.checkpoint.get("steps", {}).get(name)
    if not isinstance(result, dict):
        raise RuntimeError(f"delivery {job.delivery_id}: step {name} has no result yet")
    return result


def chunk_plan(total: int, chunk_bytes: int) -> tuple[int, int]:
    """(chunk_size, total_chunk_count): floor(total / chunk_size) chunks, the last larger."""
    if total <= chunk_bytes:
        return total, 1
    return chunk_bytes, total // chunk_bytes


def chunk_range(init: dict[str, Any], index: int) -> tuple[int, int]:
    """(first byte, size) of chunk `index` of the plan `init` saved."""
    size, count, total = init["chunk_size"], init["chunk_count"], init["total_bytes"]
    first = index * size
    return first, (total - first if index == count - 1 else size)


class TikTokSteps:
    """The steps of a job: `creator`, then for a video `init` and all chunks but the last."""

    def __init__(self, api: TikTokApi, privacy_level: str, chunk_bytes: int) -> None:
        self.api, self.privacy_level, self.chunk_bytes = api, privacy_level, chunk_bytes

    def steps(self, job: Job) -> Sequence[Step]:
        creator = Step("creator", self._creator)
        if not job.video_urls:
            return [creator]

        def current() -> list[Step]:
            init = job.checkpoint.get("steps", {}).get("init")
            count = init["chunk_count"] if isinstance(init, dict) else 0
            chunks = (Step(f"chunk_{n}", self._chunk(n)) for n in range(count - 1))
            return [creator, Step("init", self._init), *chunks]

        return GrowingSteps(current)

    async def _creator(self, job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
        info = await self.api.call(client, job.account, CREATOR_INFO)
        offered = [str(level) for level in info.get("privacy_level_options") or []]
        choices = [self.privacy_level, *PRIVACY_LEVELS]
        level = next((choice for choice in choices if choice in offered), None)
        if level is None:
            message = "TikTok offers this creator no privacy level Soku can post at."
            raise PlatformError(ErrorKind.permanent, "privacy_level_option_mismatch", message)
        username = str(info.get("creator_username") or job.account.username or "")
        return {"username": username, "privacy_level": level}

    async def _init(self, job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
        total, media_type = await media_reader.measure(client, job.video_urls[0])
        if not 0 < total <= MAX_VIDEO_BYTES:
            message = f"TikTok takes videos of up to 4 GB; this one has {total} bytes."
            raise PlatformError(ErrorKind.permanent, "video_size", message)
        size, count = chunk_plan(total, self.chunk_bytes)
        if count > MAX_CHUNKS:
            message = f"The video would need {count} chunks; TikTok takes at most {MAX_CHUNKS}."
            raise PlatformError(ErrorKind.permanent, "video_size", message)
        body = {
            "post_info": post_info(job, step_result(job, "creator")["privacy_level"]),
            "source_info": {"source": "FILE_UPLOAD", "video_size": total, "chunk_size": size,
                            "total_chunk_count": count},
        }  # fmt: skip
        data = await self.api.call(client, job.account, VIDEO_INIT, body)
        publish_id, upload_url = data.get("publish_id"), data.get("upload_url")
        if not publish_id or not upload_url:
            message = "TikTok's video init answer named no publish_id or upload_url."
            raise PlatformError(ErrorKind.server_error, "unreadable_answer", message, raw=data)
        return {"publish_id": str(publish_id), "upload_url": str(upload_url),
                "total_bytes": total, "chunk_size": size, "chunk_count": count,
                "media_type": media_type}  # fmt: skip

    def _chunk(self, index: int) -> StepFunction:
        async def run(job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
            return await self.send_chunk(job, client, index)

        return run

    async def send_chunk(self, job: Job, client: httpx.AsyncClient, index: int) -> dict[str, Any]:
        """PUT chunk `index` with its Content-Range, to the upload URL as TikTok gave it."""
        init = step_result(job, "init")
        first, size = chunk_range(init, index)
        data = await media_reader.read_range(client, job.video_urls[0], first, size)
        headers = {
            "Content-Type": init["media_type"],
            "Content-Range": f"bytes {first}-{first + size - 1}/{init['total_bytes']}",
        }
        response = await self.api.put(client, init["upload_url"], data, headers)
        return {"bytes": size, "status": response.status_code}


def post_info(job: Job, privacy_level: str) -> dict[str, Any]:
    """A video's `post_info`: our text as its caption, every interaction allowed."""
    return {
        "title": job.text or "",
        "privacy_level": privacy_level,
        "disable_duet": False,
        "disable_comment": False,
        "disable_stitch": False,
        "brand_content_toggle": False,
        "brand_organic_toggle": False,
    }
