"""The Snapchat connector: posts a Public Profile's Story through the Public Profile API.

Follows /work/shared/platforms/snapchat.md (the Marketing API at businessapi.snapchat.com):
a post is one image or one video, uploaded encrypted by the steps in `snapchat_upload`
(media container, parts, FINALIZE), then:

- `publish`: `POST /v1/public_profiles/{profile}/stories` with the `media_id` (the id of the
  answer's `story_id`); or, with the option `video_target=spotlight`, a video goes to
  `…/spotlights` with our text as its description and `locale`. Right after FINALIZE the
  call may answer `MEDIA_PROCESSING`: it is made again `processing_retries` times,
  `poll_seconds` apart, then left to the engine as a retryable error (nothing was posted).
  The API has no post URL: the link is the profile's, `https://www.snapchat.com/@{name}`;
- `reconcile`: the API documents no way to list a profile's Stories or Spotlights, nor to
  ask whether a media was posted, so an in-doubt publish cannot be checked: `CannotTell`;
- `refresh`: `POST https://accounts.snapchat.com/login/oauth2/access_token` with
  `grant_type=refresh_token`, `client_id` and `client_secret` (tokens live about 1 h).
"""

from __future__ import annotations

import asyncio
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
    latest_round,
    round_prefix,
)
from soku.platforms.snapchat_api import SnapchatApi
from soku.platforms.snapchat_crypto import PartPlan
from soku.platforms.snapchat_errors import map_error, refresh_error
from soku.platforms.snapchat_upload import CONTAINER_MAX_AGE, SnapchatUpload, profile_id
from soku.platforms.token_refresh import RefreshGrant, refresh_tokens

API_URL = "https://businessapi.snapchat.com"
TOKEN_URL = "https://accounts.snapchat.com/login/oauth2/access_token"  # noqa: S105 (a URL)
WEB_URL = "https://www.snapchat.com"
PART_BYTES = 32 * 1024 * 1024  # "split it if it is over 32 MB" (snapchat.md)
VIDEO_TARGETS = ("story", "spotlight")
MAX_DESCRIPTION = 160  # a Spotlight's description, hashtags included
GRANT = RefreshGrant("Snapchat", map_error, refresh_error)


class SnapchatConnector:
    platform = "snapchat"

    def __init__(
        self,
        api_url: str = API_URL,
        *,
        token_url: str = TOKEN_URL,
        web_url: str = WEB_URL,
        client_id: str | None = None,
        client_secret: str | None = None,
        video_target: str = "story",
        locale: str = "en_US",
        part_bytes: int = PART_BYTES,
        poll_seconds: float = 3.0,
        processing_retries: int = 2,
        container_max_age: float = CONTAINER_MAX_AGE,
    ) -> None:
        if video_target not in VIDEO_TARGETS:
            raise ValueError(f"video_target must be one of {', '.join(VIDEO_TARGETS)}")
        PartPlan(0, part_bytes)  # refuses a part size that cannot hold whole AES blocks
        self.api_url, self.web_url = api_url.rstrip("/"), web_url.rstrip("/")
        self.token_url = token_url
        self.client_id, self.client_secret = client_id, client_secret
        self.video_target, self.locale = video_target, locale
        self.poll_seconds, self.processing_retries = poll_seconds, processing_retries
        self.upload = SnapchatUpload(SnapchatApi(self.api_url), part_bytes, container_max_age)

    def steps(self, job: Job) -> Sequence[Step]:
        if not (job.image_urls or job.video_urls):
            message = "Snapchat posts one image or one video; this post has neither."
            raise PlatformError(ErrorKind.permanent, "media_required", message)
        return self.upload.steps(job)

    async def publish(self, job: Job, client: httpx.AsyncClient) -> Published:
        media_id = self._media_id(job)
        spotlight = bool(job.video_urls) and self.video_target == "spotlight"
        kind = "spotlights" if spotlight else "stories"
        body: dict[str, Any] = {"media_id": media_id}
        if spotlight:
            description = " ".join((job.text or "").split())[:MAX_DESCRIPTION]
            body.update(description=description, locale=self.locale, skip_save_to_profile=False)
        path = f"/v1/public_profiles/{profile_id(job)}/{kind}"
        answer = await self._post_when_processed(job, client, path, body)
        # (U) one client reads `story_id` / `spotlight_id`; without one, the media names it
        found = answer.get("spotlight_id" if spotlight else "story_id") or media_id
        return Published(str(found), self.profile_link(job), raw=answer)

    async def reconcile(self, job: Job, client: httpx.AsyncClient) -> ReconcileResult:
        # The Public Profile API lists no Stories or Spotlights and says nothing of a media
        # once posted (snapchat.md), so whether an in-doubt publish went through is unknown.
        try:
            media_id = self._media_id(job)
        except RuntimeError:
            return NotPublished()  # nothing finalized: no publish call could have been made
        return CannotTell(
            "Snapchat's Public Profile API cannot list a profile's Stories or Spotlights, "
            f"so whether media {media_id} was posted cannot be looked up"
        )

    async def refresh(self, account: AccountAccess, client: httpx.AsyncClient) -> RefreshedTokens:
        return await refresh_tokens(GRANT, self.token_url, self, account, client)

    def profile_link(self, job: Job) -> str | None:
        """The profile's page: Snapchat documents no link to one Story or Spotlight."""
        made = job.checkpoint.get("steps", {}).get("profile")
        name = job.account.username or (made.get("username") if isinstance(made, dict) else None)
        return f"{self.web_url}/@{name}" if name else None

    async def _post_when_processed(
        self, job: Job, client: httpx.AsyncClient, path: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """The post call, made again while Snapchat answers MEDIA_PROCESSING (not posted)."""
        for attempt in range(self.processing_retries + 1):
            try:
                return await self.upload.api.call(client, job.account, "POST", path, json=body)
            except PlatformError as exc:
                if exc.code != "media_processing" or attempt == self.processing_retries:
                    raise
            await asyncio.sleep(self.poll_seconds)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _media_id(self, job: Job) -> str:
        """The media of the latest round whose upload is finalized."""
        done = job.checkpoint.get("steps", {})
        for number in range(latest_round(done), 0, -1):
            final = done.get(f"{round_prefix(number)}finalize")
            if isinstance(final, dict):
                return str(final["media_id"])
        raise RuntimeError(f"delivery {job.delivery_id}: no media is finalized to publish")
