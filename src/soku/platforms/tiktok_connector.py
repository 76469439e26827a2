"""The TikTok connector: publishes through TikTok's Content Posting API (Direct Post), or its fake.

Follows /work/shared/platforms/tiktok.md:

- steps (`tiktok_upload`): `creator` (creator info: the username and a privacy level the
  creator offers), and for a video `init` and every chunk but the last;
- `publish`: a video's last chunk (TikTok posts once it has every byte); a photo post's
  `POST /v2/post/publish/content/init/` (`media_type: PHOTO`, `post_mode: DIRECT_POST`,
  `source: PULL_FROM_URL`: TikTok fetches the images itself, from a verified domain). Then
  `POST /v2/post/publish/status/fetch/` until PUBLISH_COMPLETE (FAILED fails). TikTok gives
  the post id only after moderation, which may take hours: until then, and when processing
  outlasts `max_processing_wait`, the post is reported by its `publish_id`, without a link;
- `reconcile`: a video's status by the `publish_id` its `init` step saved (an upload that
  has not every byte was not posted). A photo post's `publish_id` comes only in the answer
  of the call that posts it, and the Content Posting API lists no posts, so when that answer
  was lost we cannot tell;
- `refresh`: `POST /v2/oauth/token/` with `grant_type=refresh_token`, `client_key` and
  `client_secret` (access tokens last 24 h, refresh tokens 365 days).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import httpx

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
from soku.platforms.tiktok_api import CONTENT_INIT, STATUS_FETCH, TikTokApi
from soku.platforms.tiktok_errors import map_error, refresh_error
from soku.platforms.tiktok_upload import CHUNK_BYTES, TikTokSteps, step_result
from soku.platforms.token_refresh import RefreshGrant, refresh_tokens

API_URL = "https://open.tiktokapis.com"
TOKEN_URL = "https://open.tiktokapis.com/v2/oauth/token/"  # noqa: S105 (a URL)
WEB_URL = "https://www.tiktok.com"
PRIVACY_LEVEL = "PUBLIC_TO_EVERYONE"
DONE = ("PUBLISH_COMPLETE", "SEND_TO_USER_INBOX")
GRANT = RefreshGrant("TikTok", map_error, refresh_error, client_id_name="client_key")


class TikTokConnector:
    platform = "tiktok"

    def __init__(
        self,
        api_url: str = API_URL,
        *,
        token_url: str = TOKEN_URL,
        web_url: str = WEB_URL,
        privacy_level: str = PRIVACY_LEVEL,
        client_id: str | None = None,
        client_secret: str | None = None,
        chunk_bytes: int = CHUNK_BYTES,
        poll_seconds: float = 2.0,
        max_processing_wait: float = 12.0,
    ) -> None:
        self.api = TikTokApi(api_url.rstrip("/"))
        self.token_url, self.web_url = token_url, web_url.rstrip("/")
        self.client_id, self.client_secret = client_id, client_secret
        self.poll_seconds, self.max_processing_wait = poll_seconds, max_processing_wait
        self.upload = TikTokSteps(self.api, privacy_level, chunk_bytes)

    def steps(self, job: Job) -> Sequence[Step]:
        return self.upload.steps(job)

    async def publish(self, job: Job, client: httpx.AsyncClient) -> Published:
        if job.video_urls:
            init = step_result(job, "init")
            done = job.checkpoint.get("steps", {})
            if any(f"chunk_{n}" not in done for n in range(init["chunk_count"] - 1)):
                message = "Some video chunks are not uploaded yet; the next attempt sends them."
                raise PlatformError(ErrorKind.server_error, "upload_incomplete", message)
            await self.upload.send_chunk(job, client, init["chunk_count"] - 1)
            publish_id = init["publish_id"]
        else:
            publish_id = await self._photo_init(job, client)
        return await self._await_post(job, client, publish_id)

    async def reconcile(self, job: Job, client: httpx.AsyncClient) -> ReconcileResult:
        if not job.video_urls:
            # The photo post's publish_id was in the lost answer; no API lists the posts.
            return CannotTell("TikTok's Content Posting API cannot list a creator's posts")
        init = job.checkpoint.get("steps", {}).get("init")
        if not isinstance(init, dict):
            return NotPublished()
        status = await self._status(client, job.account, init["publish_id"])
        uploaded = status.get("uploaded_bytes")
        unfinished = isinstance(uploaded, int) and uploaded < init["total_bytes"]
        if status.get("status") == "PROCESSING_UPLOAD" and unfinished:
            return NotPublished()  # TikTok posts only once it has every byte
        return self._outcome(job, init["publish_id"], status)

    async def refresh(self, account: AccountAccess, client: httpx.AsyncClient) -> RefreshedTokens:
        return await refresh_tokens(GRANT, self.token_url, self, account, client)

    def permalink(self, username: str, post_id: str, photo: bool) -> str | None:
        """`/@{username}/video/{id}`; `/photo/{id}` for a photo post (a guess, tiktok.md)."""
        if not username:
            return None
        return f"{self.web_url}/@{username}/{'photo' if photo else 'video'}/{post_id}"

    async def _photo_init(self, job: Job, client: httpx.AsyncClient) -> str:
        creator = step_result(job, "creator")
        body = {
            "media_type": "PHOTO",
            "post_mode": "DIRECT_POST",
            "post_info": {"description": job.text or "", "privacy_level": creator["privacy_level"],
                          "disable_comment": False, "auto_add_music": True,
                          "brand_content_toggle": False, "brand_organic_toggle": False},
            "source_info": {"source": "PULL_FROM_URL", "photo_images": list(job.image_urls),
                            "photo_cover_index": 0},
        }  # fmt: skip
        data = await self.api.call(client, job.account, CONTENT_INIT, body)
        if not data.get("publish_id"):
            message = "TikTok accepted the photo post but its answer named no publish_id."
            raise PlatformError(ErrorKind.server_error, "unreadable_answer", message, raw=data)
        return str(data["publish_id"])

    async def _await_post(self, job: Job, client: httpx.AsyncClient, publish_id: str) -> Published:
        """Reads the status until TikTok is done, or until `max_processing_wait` has passed."""
        deadline = time.monotonic() + self.max_processing_wait
        while True:
            status = await self._status(client, job.account, publish_id)
            state = status.get("status")
            if state in DONE or state == "FAILED":
                return self._outcome(job, publish_id, status)
            if time.monotonic() + self.poll_seconds > deadline:
                return Published(publish_id, None, raw={"publish_id": publish_id, **status})
            await asyncio.sleep(self.poll_seconds)

    def _outcome(self, job: Job, publish_id: str, status: dict[str, Any]) -> Published:
        """The post TikTok made: its public id once moderated, else its `publish_id`."""
        if status.get("status") == "FAILED":
            reason = status.get("fail_reason") or "no reason given"
            message = f"TikTok could not publish the post: {reason}."
            raise PlatformError(ErrorKind.processing_failed, "processing_failed", message,
                                raw=status)  # fmt: skip
        ids = status.get("publicaly_available_post_id")  # sic, TikTok's spelling
        raw = {"publish_id": publish_id, **status}
        if not isinstance(ids, list) or not ids:
            return Published(publish_id, None, raw=raw)
        username = str(step_result(job, "creator").get("username") or "")
        post_id = str(ids[0])
        return Published(post_id, self.permalink(username, post_id, not job.video_urls), raw=raw)

    async def _status(
        self, client: httpx.AsyncClient, account: AccountAccess, publish_id: str
    ) -> dict[str, Any]:
        return await self.api.call(client, account, STATUS_FETCH, {"publish_id": publish_id})
