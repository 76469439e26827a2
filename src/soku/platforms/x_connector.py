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

Media is read from our own store by URL (`media_reader`): an image whole (X takes ≤ 5 MB),
the video one chunk per step through byte ranges, so no more than one image or one chunk is
ever held. How many chunks there are is known once `init` has measured the video: the step
list grows as the engine walks it, reading the checkpoint the engine fills (see `_video_steps`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import re
import time
import unicodedata
from collections.abc import Sequence
from typing import Any

import httpx

from soku.platforms import media_reader
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
    response_json,
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
RECONCILE_MARGIN = dt.timedelta(seconds=60)
RECONCILE_PAGES = 5
_NUMERIC_ID = re.compile(r"^[0-9]{1,19}$")
_URL = re.compile(r"https?://\S+")


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
    ) -> None:
        if not 0 < chunk_bytes <= MAX_APPEND_BYTES:
            raise ValueError(f"chunk_bytes must be between 1 and {MAX_APPEND_BYTES}")
        self.base_url = base_url.rstrip("/")
        self.web_url = web_url.rstrip("/")
        self.client_id, self.client_secret = client_id, client_secret
        self.chunk_bytes = chunk_bytes
        self.max_processing_wait = max_processing_wait

    def steps(self, job: Job) -> Sequence[Step]:
        head = [] if _knows_user(job.account) else [Step("user", self._whoami)]
        if job.video_urls:
            return _video_steps(self, job, head)
        uploads = [
            Step(f"upload_{n}", self._upload_image(job, n)) for n in range(len(job.image_urls))
        ]
        return head + uploads

    async def publish(self, job: Job, client: httpx.AsyncClient) -> Published:
        body: dict[str, Any] = {"text": job.text} if job.text else {}
        media_ids = [media_id for media_id, _ in _uploaded(job)]
        if media_ids:
            body["media"] = {"media_ids": media_ids}
        created = await self._call(client, job.account, "POST", "/2/tweets", json=body)
        data = created.get("data")
        if not isinstance(data, dict) or not data.get("id"):
            message = "X accepted the post but its answer carried no post id."
            raise PlatformError(ErrorKind.server_error, "unreadable_answer", message, raw=created)
        post_id = str(data["id"])
        return Published(post_id, self._permalink(_cached_username(job), post_id), raw=created)

    async def reconcile(self, job: Job, client: httpx.AsyncClient) -> ReconcileResult:
        user_id, username = await self._identity(job, client)
        params = {"max_results": "100", "tweet.fields": "created_at,attachments"}
        if job.publishing_since is not None:
            since = (job.publishing_since - RECONCILE_MARGIN).astimezone(dt.UTC)
            params["start_time"] = since.strftime("%Y-%m-%dT%H:%M:%SZ")
        keys = [key for _, key in _uploaded(job)]
        matches: list[dict[str, Any]] = []
        for _ in range(RECONCILE_PAGES):
            path = f"/2/users/{user_id}/tweets"
            listing = await self._call(client, job.account, "GET", path, params=params)
            matches += [t for t in listing.get("data") or [] if _is_ours(job.text, keys, t)]
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
        if not account.refresh_token:
            message = "The X account has no refresh token: connect it again."
            raise PlatformError(ErrorKind.reauth_required, "no_refresh_token", message)
        form = {"grant_type": "refresh_token", "refresh_token": account.refresh_token}
        if self.client_id:
            form["client_id"] = self.client_id
        auth: httpx.BasicAuth | None = None
        if self.client_id and self.client_secret:  # a confidential client
            auth = httpx.BasicAuth(self.client_id, self.client_secret)
        url = self.base_url + "/2/oauth2/token"
        try:
            response = await client.post(url, data=form, auth=auth or httpx.USE_CLIENT_DEFAULT)
        except httpx.HTTPError as exc:
            raise map_error(exc) from exc
        tokens = response_json(response)
        if not response.is_success or not isinstance(tokens, dict) or "access_token" not in tokens:
            raise refresh_error(response)
        expires_in, expires_at = _seconds(tokens.get("expires_in")), None
        if expires_in is not None:
            expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=expires_in)
        refresh_token = tokens.get("refresh_token") or account.refresh_token
        return RefreshedTokens(str(tokens["access_token"]), refresh_token, expires_at)

    # --- steps ---------------------------------------------------------------------------

    async def _whoami(self, job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
        me = _data(await self._call(client, job.account, "GET", "/2/users/me"))
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
            media = _data(body)
            media_id = str(media["id"])
            await self._wait(client, job.account, media_id, media.get("processing_info"))
            return {"media_id": media_id, "media_key": media.get("media_key"), "bytes": len(data)}

        return run

    async def _init(self, job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
        total, media_type = await media_reader.measure(client, job.video_urls[0])
        if not 0 < total <= MAX_VIDEO_BYTES:
            message = f"X takes videos of 1 byte to {MAX_VIDEO_BYTES} bytes; this one has {total}."
            raise PlatformError(ErrorKind.permanent, "video_size", message)
        chunk = max(self.chunk_bytes, -(-total // MAX_SEGMENTS))
        body = {"media_type": media_type, "total_bytes": total, "media_category": "tweet_video"}
        path = "/2/media/upload/initialize"
        media = _data(await self._call(client, job.account, "POST", path, json=body))
        return {
            "media_id": str(media["id"]),
            "media_key": media.get("media_key"),
            "total_bytes": total,
            "chunk_bytes": chunk,
            "segments": -(-total // chunk),
        }

    def _append(self, index: int) -> StepFunction:
        async def run(job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
            init = _result(job, "init")
            start = index * init["chunk_bytes"]
            size = min(init["chunk_bytes"], init["total_bytes"] - start)
            chunk = await media_reader.read_range(client, job.video_urls[0], start, size)
            path = f"/2/media/upload/{init['media_id']}/append"
            files = {"media": ("blob", chunk, "application/octet-stream")}
            form = {"segment_index": str(index)}
            await self._call(client, job.account, "POST", path, data=form, files=files, empty=True)
            return {"segment_index": index, "bytes": size, "appended": index + 1}

        return run

    async def _finalize(self, job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
        init = _result(job, "init")
        media_id, done = init["media_id"], job.checkpoint.get("steps", {})
        if any(f"append_{n}" not in done for n in range(init["segments"])):
            message = "Some video chunks are not uploaded yet; the next attempt sends them."
            raise PlatformError(ErrorKind.server_error, "upload_incomplete", message)
        path = f"/2/media/upload/{media_id}/finalize"
        try:
            media = _data(await self._call(client, job.account, "POST", path))
        except PlatformError as exc:
            if exc.http_status != 400:
                raise
            # Finalized already, by an attempt that died before its result was saved?
            media = await self._status(client, job.account, media_id)
            if not media.get("processing_info"):
                raise exc from None
        return {"media_id": media_id, "processing_info": media.get("processing_info")}

    async def _wait_processing(self, job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
        final = _result(job, "finalize")
        await self._wait(client, job.account, final["media_id"], final.get("processing_info"))
        return {"media_id": final["media_id"], "state": "succeeded"}

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
            after = _seconds(info.get("check_after_secs"))
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
        return _data(await self._call(client, account, "GET", "/2/media/upload", params=params))

    # --- calls -----------------------------------------------------------------------------

    async def _identity(self, job: Job, client: httpx.AsyncClient) -> tuple[str, str | None]:
        account, cached = job.account, job.checkpoint.get("steps", {}).get("user")
        if _knows_user(account):
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
        headers = {"Authorization": f"Bearer {_access_token(account)}"}
        try:
            response = await client.request(method, self.base_url + path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise map_error(exc) from exc
        body = response_json(response)
        if response.is_success and isinstance(body, dict):
            return body
        if response.is_success and empty and not response.content.strip():
            return {}
        raise map_error(response)


def _video_steps(connector: XConnector, job: Job, head: list[Step]) -> GrowingSteps:
    """`init`, `append_0` … `append_<n-1>`, `finalize`, `wait_processing`; the chunks are
    known once `init` has measured the video (and `finalize` refuses an incomplete upload)."""

    def current() -> list[Step]:
        init = job.checkpoint.get("steps", {}).get("init")
        chunks = init["segments"] if isinstance(init, dict) else 0
        return [
            *head,
            Step("init", connector._init),
            *(Step(f"append_{n}", connector._append(n)) for n in range(chunks)),
            Step("finalize", connector._finalize),
            Step("wait_processing", connector._wait_processing),
        ]

    return GrowingSteps(current)


# --- the job and its checkpoint ----------------------------------------------------------------


def _knows_user(account: AccountAccess) -> bool:
    user_id = account.platform_user_id or ""
    return bool(account.username) and _NUMERIC_ID.match(user_id) is not None


def _cached_username(job: Job) -> str | None:
    cached = job.checkpoint.get("steps", {}).get("user")
    return job.account.username or (str(cached["username"]) if isinstance(cached, dict) else None)


def _result(job: Job, name: str) -> dict[str, Any]:
    result = job.checkpoint.get("steps", {}).get(name)
    if not isinstance(result, dict):
        raise RuntimeError(f"delivery {job.delivery_id}: step {name} has no result yet")
    return result


def _uploaded(job: Job) -> list[tuple[str, str | None]]:
    """(media id, media key) of each uploaded item, in the post's order."""
    if job.video_urls:
        _result(job, "wait_processing")
        init = _result(job, "init")
        return [(str(init["media_id"]), init.get("media_key"))]
    uploads = [_result(job, f"upload_{n}") for n in range(len(job.image_urls))]
    return [(str(upload["media_id"]), upload.get("media_key")) for upload in uploads]


def _is_ours(text: str | None, keys: list[str | None], tweet: dict[str, Any]) -> bool:
    """Same media keys (unique to our uploads), else the same text once X's rendering is undone."""
    theirs = sorted((tweet.get("attachments") or {}).get("media_keys") or [])
    if keys and all(keys):
        return theirs == sorted(key for key in keys if key)
    if bool(theirs) != bool(keys):
        return False
    mine, shown = _comparable(text or ""), _comparable(str(tweet.get("text") or ""))
    if keys and shown != mine:  # X appends a t.co link to the media
        shown = shown.removesuffix("<url>").rstrip()
    return mine == shown


def _comparable(text: str) -> str:
    text = unicodedata.normalize("NFC", html.unescape(text))
    return " ".join(_URL.sub("<url>", text).split())


def _access_token(account: AccountAccess) -> str:
    if not account.access_token:
        message = f"The X account {account.account_id} has no access token."
        raise PlatformError(ErrorKind.reauth_required, "no_access_token", message)
    return account.access_token


def _data(body: dict[str, Any]) -> dict[str, Any]:
    data = body.get("data")
    if not isinstance(data, dict) or "id" not in data:
        message = "X answered without the expected `data` object."
        raise PlatformError(ErrorKind.server_error, "unreadable_answer", message, raw=body)
    return data


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
