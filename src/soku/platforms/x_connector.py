"""The X connector: publishes through the X API v2 (`api.x.com`), or its sandbox fake.

Follows the X API v2 as its OpenAPI file v2.167 (docs.x.com, 2026-08) and
/work/shared/platforms/x.md describe it:

- images: one `upload_<i>` step each, `POST /2/media/upload` (multipart `media` and
  `media_category`);
- a video: `init` (`POST /2/media/upload/initialize`), one `append_<n>` step per chunk
  (`POST /2/media/upload/{id}/append`), `finalize`, then `wait_processing`
  (`GET /2/media/upload?command=STATUS` until `succeeded`, waiting `check_after_secs`);
- `publish`: `POST /2/tweets`; the permalink is `https://x.com/<username>/status/<id>`;
- `reconcile`: `GET /2/users/{id}/tweets` since `publishing_since` - 60 s, matched on the
  uploaded media keys, else on the text as X normalises it;
- `refresh`: `POST /2/oauth2/token` with `grant_type=refresh_token` (refresh tokens rotate).

Uploaded media expire (`expires_after_secs`, 24 h in X's examples). A delivery held back that
long (a daily limit's reset, a retry asked for the next day) would publish with dead media ids,
so each upload's result records when it expires, and once the latest round's media are within
`media_margin` (1 h) of that, `steps()` lists a new round of uploads (`r2_upload_0`, …; see
the rounds in `connector.py`); `publish` and `reconcile` use the latest round.

Media is read from our own store by URL (`media_reader`): an image whole (X takes ≤ 5 MB),
the video one chunk per step through byte ranges, so no more than one image or one chunk is
ever held. How many chunks there are is known once `init` has measured the video: the step
list grows as the engine walks it, reading the checkpoint the engine fills (see `_video_steps`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
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
    GrowingSteps,
    Job,
    NotPublished,
    PlatformError,
    Published,
    ReconcileResult,
    RefreshedTokens,
    Step,
    StepFunction,
    round_prefix,
)
from soku.platforms.token_refresh import RefreshGrant, refresh_tokens
from soku.platforms.x_checkpoint import (
    cached_username,
    data_of,
    expiry,
    is_ours,
    knows_user,
    seconds,
    step_result,
    upload_round,
    uploaded,
)
from soku.platforms.x_errors import map_error, refresh_error

API_URL = "https://api.x.com"
WEB_URL = "https://x.com"
CHUNK_BYTES = 4 * 1024 * 1024  # docs samples use 1 MB; one APPEND may carry ≤ 5 MB
MAX_APPEND_BYTES = 5 * 1024 * 1024
MAX_SEGMENTS = 1000  # segment_index 0-999
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_VIDEO_BYTES = 512 * 1024 * 1024
MAX_CHECK_WAIT = 60.0  # seconds, whatever check_after_secs says
MEDIA_MARGIN = 3600.0  # uploads this close to expiry are made again before publishing
RECONCILE_MARGIN = dt.timedelta(seconds=60)
RECONCILE_PAGES = 5
GRANT = RefreshGrant("X", map_error, refresh_error, basic_auth=True)


class XConnector:
    platform = "x"

    def __init__(
        self,
        base_url: str = API_URL,
        *,
        web_url: str = WEB_URL,
        client_id: str | None = None,
        client_secret: str | None = None,
        chunk_bytes: int = CHUNK_BYTES,
        max_processing_wait: float = 600.0,
        media_margin: float = MEDIA_MARGIN,
    ) -> None:
        if not 0 < chunk_bytes <= MAX_APPEND_BYTES:
            raise ValueError(f"chunk_bytes must be between 1 and {MAX_APPEND_BYTES}")
        self.base_url = base_url.rstrip("/")
        self.web_url = web_url.rstrip("/")
        self.client_id, self.client_secret = client_id, client_secret
        self.chunk_bytes = chunk_bytes
        self.max_processing_wait = max_processing_wait
        self.media_margin = media_margin

    def steps(self, job: Job) -> Sequence[Step]:
        head = [] if knows_user(job.account) else [Step("user", self._whoami)]
        prefix = round_prefix(upload_round(job, self.media_margin))
        if job.video_urls:
            return _video_steps(self, job, head, prefix)
        uploads = [
            Step(f"{prefix}upload_{n}", self._upload_image(job, n))
            for n in range(len(job.image_urls))
        ]
        return head + uploads

    async def publish(self, job: Job, client: httpx.AsyncClient) -> Published:
        body: dict[str, Any] = {"text": job.text} if job.text else {}
        media_ids = [media_id for media_id, _ in uploaded(job)]
        if media_ids:
            body["media"] = {"media_ids": media_ids}
        created = await self._call(client, job.account, "POST", "/2/tweets", json=body)
        data = created.get("data")
        if not isinstance(data, dict) or not data.get("id"):
            message = "X accepted the post but its answer carried no post id."
            raise PlatformError(ErrorKind.server_error, "unreadable_answer", message, raw=created)
        post_id = str(data["id"])
        return Published(post_id, self._permalink(cached_username(job), post_id), raw=created)

    async def reconcile(self, job: Job, client: httpx.AsyncClient) -> ReconcileResult:
        user_id, username = await self._identity(job, client)
        params = {"max_results": "100", "tweet.fields": "created_at,attachments"}
        if job.publishing_since is not None:
            since = (job.publishing_since - RECONCILE_MARGIN).astimezone(dt.UTC)
            params["start_time"] = since.strftime("%Y-%m-%dT%H:%M:%SZ")
        keys = [key for _, key in uploaded(job)]
        matches: list[dict[str, Any]] = []
        for _ in range(RECONCILE_PAGES):
            path = f"/2/users/{user_id}/tweets"
            listing = await self._call(client, job.account, "GET", path, params=params)
            matches += [t for t in listing.get("data") or [] if is_ours(job.text, keys, t)]
            next_token = (listing.get("meta") or {}).get("next_token")
            if not next_token:
                break
            params["pagination_token"] = str(next_token)
        if len(matches) > 1:
            return CannotTell(f"{len(matches)} posts on the X account match this delivery")
        if not matches:
            return NotPublished()
        post_id = str(matches[0]["id"])
        return Published(post_id, self._permalink(username, post_id), raw=matches[0])

    async def refresh(self, account: AccountAccess, client: httpx.AsyncClient) -> RefreshedTokens:
        return await refresh_tokens(GRANT, self.base_url + "/2/oauth2/token", self, account, client)

    # --- steps ---------------------------------------------------------------------------

    async def _whoami(self, job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
        me = data_of(await self._call(client, job.account, "GET", "/2/users/me"))
        return {"id": str(me["id"]), "username": str(me["username"])}

    def _upload_image(self, job: Job, index: int) -> StepFunction:
        url = job.image_urls[index]
        # An animated GIF is a post of its own; among photos a GIF is uploaded as a photo.
        alone = len(job.image_urls) == 1

        async def run(job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
            data, media_type = await media_reader.read_whole(
                client, url, MAX_IMAGE_BYTES, f"X takes images of up to 5 MB; {url} is larger."
            )
            category = "tweet_gif" if alone and media_type == "image/gif" else "tweet_image"
            files = {"media": (media_reader.filename(url), data, media_type)}
            form = {"media_category": category}
            body = await self._call(
                client, job.account, "POST", "/2/media/upload", data=form, files=files
            )
            media = data_of(body)
            media_id = str(media["id"])
            await self._wait(client, job.account, media_id, media.get("processing_info"))
            key, expires_at = media.get("media_key"), expiry(media)
            return {
                "media_id": media_id,
                "media_key": key,
                "bytes": len(data),
                "expires_at": expires_at,
            }

        return run

    async def _init(self, job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
        total, media_type = await media_reader.measure(client, job.video_urls[0])
        if not 0 < total <= MAX_VIDEO_BYTES:
            message = f"X takes videos of 1 byte to {MAX_VIDEO_BYTES} bytes; this one has {total}."
            raise PlatformError(ErrorKind.permanent, "video_size", message)
        chunk = max(self.chunk_bytes, -(-total // MAX_SEGMENTS))
        body = {"media_type": media_type, "total_bytes": total, "media_category": "tweet_video"}
        path = "/2/media/upload/initialize"
        media = data_of(await self._call(client, job.account, "POST", path, json=body))
        return {
            "media_id": str(media["id"]),
            "media_key": media.get("media_key"),
            "total_bytes": total,
            "chunk_bytes": chunk,
            "segments": -(-total // chunk),
            "expires_at": expiry(media),
        }

    def _append(self, prefix: str, index: int) -> StepFunction:
        async def run(job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
            init = step_result(job, prefix + "init")
            start = index * init["chunk_bytes"]
            size = min(init["chunk_bytes"], init["total_bytes"] - start)
            chunk = await media_reader.read_range(client, job.video_urls[0], start, size)
            path = f"/2/media/upload/{init['media_id']}/append"
            files = {"media": ("blob", chunk, "application/octet-stream")}
            form = {"segment_index": str(index)}
            await self._call(client, job.account, "POST", path, data=form, files=files, empty=True)
            return {"segment_index": index, "bytes": size, "appended": index + 1}

        return run

    def _finalize(self, prefix: str) -> StepFunction:
        async def run(job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
            return await self._finalize_upload(job, client, prefix)

        return run

    async def _finalize_upload(
        self, job: Job, client: httpx.AsyncClient, prefix: str
    ) -> dict[str, Any]:
        init = step_result(job, prefix + "init")
        media_id, done = init["media_id"], job.checkpoint.get("steps", {})
        if any(f"{prefix}append_{n}" not in done for n in range(init["segments"])):
            message = "Some video chunks are not uploaded yet; the next attempt sends them."
            raise PlatformError(ErrorKind.server_error, "upload_incomplete", message)
        path = f"/2/media/upload/{media_id}/finalize"
        try:
            media = data_of(await self._call(client, job.account, "POST", path))
        except PlatformError as exc:
            if exc.http_status != 400:
                raise
            # Finalized already, by an attempt that died before its result was saved?
            media = await self._status(client, job.account, media_id)
            if not media.get("processing_info"):
                raise exc from None
        return {"media_id": media_id, "processing_info": media.get("processing_info")}

    def _wait_processing(self, prefix: str) -> StepFunction:
        async def run(job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
            final = step_result(job, prefix + "finalize")
            info = final.get("processing_info")
            await self._wait(client, job.account, final["media_id"], info)
            return {"media_id": final["media_id"], "state": "succeeded"}

        return run

    async def _wait(
        self, client: httpx.AsyncClient, account: AccountAccess, media_id: str, info: Any
    ) -> None:
        """Polls STATUS until the media is `succeeded` (no processing_info: ready already)."""
        deadline = time.monotonic() + self.max_processing_wait
        while isinstance(info, dict) and info.get("state") != "succeeded":
            if info.get("state") == "failed":
                reason = (info.get("error") or {}).get("message") or "no reason given"
                message = f"X could not process media {media_id}: {reason}."
                raise PlatformError(
                    ErrorKind.processing_failed, "processing_failed", message, raw=info
                )
            after = seconds(info.get("check_after_secs"))
            wait = 1.0 if after is None else min(max(after, 0.0), MAX_CHECK_WAIT)
            if time.monotonic() + wait > deadline:
                message = f"X was still processing media {media_id}; checking again later."
                raise PlatformError(
                    ErrorKind.server_error, "media_still_processing", message, retry_after=wait
                )
            await asyncio.sleep(wait)
            info = (await self._status(client, account, media_id)).get("processing_info")

    async def _status(
        self, client: httpx.AsyncClient, account: AccountAccess, media_id: str
    ) -> dict[str, Any]:
        params = {"command": "STATUS", "media_id": media_id}
        return data_of(await self._call(client, account, "GET", "/2/media/upload", params=params))

    # --- calls -----------------------------------------------------------------------------

    async def _identity(self, job: Job, client: httpx.AsyncClient) -> tuple[str, str | None]:
        account, cached = job.account, job.checkpoint.get("steps", {}).get("user")
        if knows_user(account):
            return str(account.platform_user_id), account.username
        if not isinstance(cached, dict):
            cached = await self._whoami(job, client)
        return str(cached["id"]), account.username or str(cached["username"])

    def _permalink(self, username: str | None, post_id: str) -> str:
        return f"{self.web_url}/{username or 'i'}/status/{post_id}"

    async def _call(
        self,
        client: httpx.AsyncClient,
        account: AccountAccess,
        method: str,
        path: str,
        *,
        empty: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One API call; its JSON object, or `{}` for an empty success when `empty`."""
        headers = {"Authorization": f"Bearer {access_token(account, 'X')}"}
        call = client.request(method, self.base_url + path, headers=headers, **kwargs)
        return await json_answer(call, map_error, empty=empty)


def _video_steps(connector: XConnector, job: Job, head: list[Step], prefix: str) -> GrowingSteps:
    """`init`, `append_0` … `append_<n-1>`, `finalize`, `wait_processing` (each with the
    round's prefix); the chunks are known once `init` has measured the video (and `finalize`
    refuses an incomplete upload). The round is chosen once, so the list only grows."""

    def current() -> list[Step]:
        init = job.checkpoint.get("steps", {}).get(prefix + "init")
        chunks = init["segments"] if isinstance(init, dict) else 0
        return [
            *head,
            Step(prefix + "init", connector._init),
            *(Step(f"{prefix}append_{n}", connector._append(prefix, n)) for n in range(chunks)),
            Step(prefix + "finalize", connector._finalize(prefix)),
            Step(prefix + "wait_processing", connector._wait_processing(prefix)),
        ]

    return GrowingSteps(current)
