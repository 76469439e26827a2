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

Media is read from our own store by URL: an image whole (X takes ≤ 5 MB), the video one
chunk per step through byte ranges, so no more than one image or one chunk is ever held. How
many chunks there are is known once `init` has measured the video: the step list grows as the
engine walks it, reading the checkpoint the engine fills (see `_VideoSteps`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import html
import mimetypes
import re
import time
import unicodedata
from collections.abc import Sequence
from typing import Any, overload
from urllib.parse import urlsplit

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
    StepFunction,
)

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
_HINTS = {
    "rate_limited": " Wait for X's rate-limit window to reset.",
    "usage_capped": " The app's X usage cap is reached.",
    "token_expired": " The access token has expired or was revoked.",
    "duplicate_content": " X refuses a post identical to one already on the account.",
    "unsupported_authentication": " X wants a user-context token: connect the account again.",
    "credits_depleted": " The X app has no credits left.",
}


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
            return _VideoSteps(self, job, head)
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
        tokens = _json(response)
        if not response.is_success or not isinstance(tokens, dict) or "access_token" not in tokens:
            raise _refresh_error(response)
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
            data, media_type = await _fetch_image(client, url)
            category = "tweet_gif" if alone and media_type == "image/gif" else "tweet_image"
            files = {"media": (_filename(url), data, media_type)}
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
        total, media_type = await _measure(client, job.video_urls[0])
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
            chunk = await _read_range(client, job.video_urls[0], start, size)
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
        body = _json(response)
        if response.is_success and isinstance(body, dict):
            return body
        if response.is_success and empty and not response.content.strip():
            return {}
        raise map_error(response)


class _VideoSteps(Sequence[Step]):
    """`init`, `append_0` … `append_<n-1>`, `finalize`, `wait_processing`.

    The chunks are known once `init` has measured the video. The engine saves each step's
    result in `job.checkpoint` before it asks for the next step, and this sequence is read
    again at every index, so it grows as it is walked. Had a caller taken the list before
    `init` ran, `finalize` would refuse an incomplete upload (retryable) and the next attempt
    would list every chunk.
    """

    def __init__(self, connector: XConnector, job: Job, head: list[Step]) -> None:
        self.connector, self.job, self.head = connector, job, head

    def _current(self) -> list[Step]:
        connector, init = self.connector, self.job.checkpoint.get("steps", {}).get("init")
        chunks = init["segments"] if isinstance(init, dict) else 0
        return [
            *self.head,
            Step("init", connector._init),
            *(Step(f"append_{n}", connector._append(n)) for n in range(chunks)),
            Step("finalize", connector._finalize),
            Step("wait_processing", connector._wait_processing),
        ]

    @overload
    def __getitem__(self, index: int) -> Step: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Step]: ...
    def __getitem__(self, index: int | slice) -> Step | Sequence[Step]:
        return self._current()[index]

    def __len__(self) -> int:
        return len(self._current())


# --- errors ------------------------------------------------------------------------------------


def map_error(failure: httpx.Response | httpx.HTTPError) -> PlatformError:
    """Every failure of a call to X, in our terms, with X's answer kept as `raw`."""
    if isinstance(failure, httpx.ConnectError | httpx.ConnectTimeout):
        return PlatformError(ErrorKind.connection, "connection_failed", "Could not connect to X.")
    if isinstance(failure, httpx.HTTPError):
        message = f"No complete answer from X: {failure!r}."
        return PlatformError(ErrorKind.timeout, "timeout", message)
    status, raw = failure.status_code, _json(failure)
    if raw is None:
        raw = failure.text
    title, detail, slug = _problem(raw)
    kind, code = _classify(status, f"{title} {detail}".lower(), slug)
    retry = kind in (ErrorKind.rate_limited, ErrorKind.server_error)
    message = f"X answered {status}" + (f" ({title})" if title else "")
    message += (f": {detail.rstrip('.')}." if detail else ".") + _HINTS.get(code, "")
    retry_after = _retry_after(failure.headers, status) if retry else None
    return PlatformError(kind, code, message, http_status=status, retry_after=retry_after, raw=raw)


def _classify(status: int, text: str, slug: str) -> tuple[ErrorKind, str]:
    if status == 429:
        return ErrorKind.rate_limited, "usage_capped" if slug == "usage-capped" else "rate_limited"
    if status >= 500 or 200 <= status < 300:  # a success we could not read counts as a 5xx
        return ErrorKind.server_error, "server_error" if status >= 500 else "unreadable_answer"
    if status == 401:
        return ErrorKind.token_expired, "token_expired"
    if status == 403 and "duplicate content" in text:
        return ErrorKind.permanent, "duplicate_content"
    if status == 403 and ("unsupported authentication" in text or slug.startswith("unsupported")):
        return ErrorKind.reauth_required, "unsupported_authentication"
    codes = {400: "invalid_request", 402: "credits_depleted", 403: "forbidden", 404: "not_found"}
    return ErrorKind.permanent, codes.get(status) or slug.replace("-", "_") or f"http_{status}"


def _refresh_error(response: httpx.Response) -> PlatformError:
    """A refused refresh (400/401 `invalid_request`…) needs the user; others are retryable."""
    error = map_error(response)
    if error.kind in (ErrorKind.rate_limited, ErrorKind.server_error):
        return error
    raw = error.raw if isinstance(error.raw, dict) else {}
    code = str(raw.get("error") or "invalid_grant")
    message = f"X refused the refresh token ({raw.get('error_description') or code}): "
    message += "connect the account again."
    return PlatformError(
        ErrorKind.reauth_required, code, message, http_status=response.status_code, raw=error.raw
    )


def _problem(raw: Any) -> tuple[str, str, str]:
    """(title, detail, type slug) of a problem, an OAuth error or a legacy `errors` list."""
    if not isinstance(raw, dict):
        return "", str(raw or "")[:200], ""
    errors = raw.get("errors") if isinstance(raw.get("errors"), list) else []
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    title = str(raw.get("title") or raw.get("error") or "")
    detail = str(raw.get("detail") or raw.get("error_description") or first.get("message") or "")
    kind = str(raw.get("type") or "")
    return title, detail, kind.rpartition("/")[2] if kind.startswith("http") else ""


def _retry_after(headers: httpx.Headers, status: int) -> float | None:
    """Retry-After (seconds or a date); for a 429, else the latest spent window's reset."""
    now = time.time()
    value = headers.get("retry-after")
    if value:
        if value.strip().isdigit():
            return float(value)
        try:
            return max(email.utils.parsedate_to_datetime(value).timestamp() - now, 0.0)
        except (TypeError, ValueError):
            pass
    if status != 429:
        return None
    windows = ("x-rate-limit", "x-user-limit-24hour", "x-app-limit-24hour")
    spent = [w for w in windows if headers.get(f"{w}-remaining") == "0"] or ["x-rate-limit"]
    resets = [headers.get(f"{w}-reset", "") for w in spent]
    epochs = [float(reset) for reset in resets if reset.isdigit()]
    return max(max(epochs) - now, 0.0) if epochs else None


# --- our stored media ----------------------------------------------------------------------


async def _fetch_image(client: httpx.AsyncClient, url: str) -> tuple[bytes, str]:
    too_big = PlatformError(
        ErrorKind.permanent, "image_too_large", f"X takes images of up to 5 MB; {url} is larger."
    )
    try:
        async with client.stream("GET", url, follow_redirects=True) as response:
            _check_store(url, response, (200,))
            if int(response.headers.get("content-length") or 0) > MAX_IMAGE_BYTES:
                raise too_big
            data = bytearray()
            async for part in response.aiter_bytes():
                data += part
                if len(data) > MAX_IMAGE_BYTES:
                    raise too_big
            return bytes(data), _media_type(response, url, "image/jpeg")
    except httpx.HTTPError as exc:
        raise _store_failure(url, exc) from exc


async def _measure(client: httpx.AsyncClient, url: str) -> tuple[int, str]:
    """The stored video's size and type, from a one-byte range request."""
    try:
        headers = {"Range": "bytes=0-0"}
        async with client.stream("GET", url, headers=headers, follow_redirects=True) as response:
            _check_store(url, response, (200, 206))
            size = response.headers.get("content-length", "")
            if response.status_code == 206:
                size = response.headers.get("content-range", "").rpartition("/")[2]
            media_type = _media_type(response, url, "video/mp4")
    except httpx.HTTPError as exc:
        raise _store_failure(url, exc) from exc
    if not size.isdigit():
        message = f"Our media store did not say how large {url} is."
        raise PlatformError(ErrorKind.server_error, "media_size_unknown", message)
    return int(size), media_type


async def _read_range(client: httpx.AsyncClient, url: str, start: int, size: int) -> bytes:
    """Bytes [start, start + size) of a stored file (skipping ahead if ranges are ignored)."""
    headers = {"Range": f"bytes={start}-{start + size - 1}"}
    data = bytearray()
    try:
        async with client.stream("GET", url, headers=headers, follow_redirects=True) as response:
            _check_store(url, response, (200, 206))
            ranged = response.headers.get("content-range", "").startswith(f"bytes {start}-")
            skip = 0 if response.status_code == 206 and ranged else start
            async for part in response.aiter_bytes():
                dropped = min(skip, len(part))
                skip -= dropped
                data += part[dropped : dropped + size - len(data)]
                if len(data) >= size:
                    break
    except httpx.HTTPError as exc:
        raise _store_failure(url, exc) from exc
    if len(data) != size:
        message = f"Our copy of {url} ended before byte {start + size}."
        raise PlatformError(ErrorKind.server_error, "media_read_short", message)
    return bytes(data)


def _check_store(url: str, response: httpx.Response, ok: tuple[int, ...]) -> None:
    if response.status_code in ok:
        return
    status = response.status_code
    kind = ErrorKind.server_error if status >= 500 or status == 429 else ErrorKind.permanent
    message = f"Our media store answered {status} for {url}."
    raise PlatformError(kind, "media_unavailable", message, http_status=status)


def _store_failure(url: str, exc: httpx.HTTPError) -> PlatformError:
    error = map_error(exc)
    return PlatformError(error.kind, error.code, f"Reading our copy of {url}: {error.message}")


def _media_type(response: httpx.Response, url: str, default: str) -> str:
    declared = str(response.headers.get("content-type", "")).partition(";")[0].strip().lower()
    if declared.split("/")[0] in ("image", "video"):
        return declared
    guessed = mimetypes.guess_type(urlsplit(url).path)[0]
    return guessed if guessed and guessed.split("/")[0] in ("image", "video") else default


def _filename(url: str) -> str:
    return urlsplit(url).path.rpartition("/")[2] or "media"


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


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
