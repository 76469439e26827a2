"""The LinkedIn connector: publishes through LinkedIn's versioned REST API, or its sandbox fake.

Follows the Community Management APIs at `LinkedIn-Version: 202610` (a setting: LinkedIn
retires each monthly version after about a year) with `X-Restli-Protocol-Version: 2.0.0`,
as /work/shared/platforms/linkedin.md describes them:

- the author: the account's `platform_user_id` holds a full URN (`urn:li:person:abc` or
  `urn:li:organization:123`); a bare id means a member (`urn:li:person:{id}`); when it is
  missing, a `user` step asks `GET /v2/userinfo` for the member's `sub`;
- images: one `upload_<i>` step each (`POST /rest/images?action=initializeUpload`, then a PUT
  of the bytes to the returned uploadUrl), then `wait_processing` until each is AVAILABLE;
  one image is `content.media`, several `content.multiImage`;
- a video: `init` (`POST /rest/videos?action=initializeUpload` with fileSizeBytes), one
  `part_<n>` step per upload instruction (a PUT of bytes firstByte..lastByte, keeping the
  ETag), `finalize` (`action=finalizeUpload` with the ETags in order), then `wait_processing`
  (`GET /rest/videos/{urn}` until AVAILABLE; PROCESSING_FAILED fails);
- `publish`: `POST /rest/posts`, the post URN from the `x-restli-id` header; the permalink is
  `https://www.linkedin.com/feed/update/{urn}/`; the text goes as "little text", its
  reserved characters escaped, except `#word` hashtags, which stay hashtags;
- `reconcile`: the author finder `GET /rest/posts?q=author` since `publishing_since` - 60 s,
  matched on our media URNs, else on the commentary; a 403 there (reading posts needs
  r_member_social or r_organization_social) means we cannot tell;
- `refresh`: `POST /oauth/v2/accessToken` with `grant_type=refresh_token`.

Upload URLs are used as LinkedIn returns them. Media is read from our store by URL
(`media_reader`): an image whole, a video one part per step through byte ranges.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import Sequence
from typing import Any, overload
from urllib.parse import quote

import httpx

from soku.platforms import media_reader
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
    response_json,
)
from soku.platforms.linkedin_errors import map_error, refresh_error

API_URL = "https://api.linkedin.com"
OAUTH_URL = "https://www.linkedin.com/oauth/v2/accessToken"
WEB_URL = "https://www.linkedin.com"
VERSION = "202610"
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # no documented cap; an image is held whole, so ours
MAX_VIDEO_BYTES = 500 * 1024 * 1024  # 75 KB to 500 MB (linkedin.md "Video limits")
MAX_PART_BYTES = 32 * 1024 * 1024  # LinkedIn's parts are 4 MB; refuse to hold far more
RECONCILE_MARGIN = dt.timedelta(seconds=60)
RECONCILE_PAGES, RECONCILE_PAGE = 5, 50
_RESERVED = re.compile(r"[\\|{}@\[\]()<>*_~]|#(?![^\W\d_])")
_AUTHOR = re.compile(r"^urn:li:(person|organization):[^\s:]+$")


def little_text(text: str) -> str:
    """Our text as LinkedIn's commentary: reserved characters escaped, hashtags kept."""
    return _RESERVED.sub(lambda match: "\\" + match.group(), text)


class LinkedInConnector:
    platform = "linkedin"

    def __init__(
        self,
        api_url: str = API_URL,
        *,
        oauth_url: str = OAUTH_URL,
        web_url: str = WEB_URL,
        version: str = VERSION,
        client_id: str | None = None,
        client_secret: str | None = None,
        poll_seconds: float = 5.0,
        max_processing_wait: float = 600.0,
    ) -> None:
        if not re.fullmatch(r"[0-9]{6}", version):
            raise ValueError("version must be YYYYMM, e.g. 202610")
        self.api_url, self.web_url = api_url.rstrip("/"), web_url.rstrip("/")
        self.oauth_url, self.version = oauth_url, version
        self.client_id, self.client_secret = client_id, client_secret
        self.poll_seconds, self.max_processing_wait = poll_seconds, max_processing_wait

    def steps(self, job: Job) -> Sequence[Step]:
        named = (job.account.platform_user_id or "").strip()  # checked when first used
        head = [] if named else [Step("user", self._whoami)]
        if job.video_urls:
            return _VideoSteps(self, job, head)
        count = len(job.image_urls)
        uploads = [Step(f"upload_{n}", self._upload_image(job, n)) for n in range(count)]
        return head + uploads + ([Step("wait_processing", self._wait_images)] if count else [])

    async def publish(self, job: Job, client: httpx.AsyncClient) -> Published:
        body: dict[str, Any] = {
            "author": _author(job),
            "commentary": little_text(job.text or ""),
            "visibility": "PUBLIC",
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        urns = _uploaded(job)
        if len(urns) == 1:
            body["content"] = {"media": {"id": urns[0]}}
        elif urns:
            body["content"] = {"multiImage": {"images": [{"id": urn} for urn in urns]}}
        response = await self._send(client, job.account, "POST", "/rest/posts", json=body)
        post_urn = response.headers.get("x-restli-id", "").strip()
        if not post_urn:
            message = "LinkedIn accepted the post but its answer named no post (x-restli-id)."
            raise PlatformError(ErrorKind.server_error, "unreadable_answer", message)
        return Published(post_urn, self.permalink(post_urn), raw={"x-restli-id": post_urn})

    async def reconcile(self, job: Job, client: httpx.AsyncClient) -> ReconcileResult:
        author = _author_of(job.account) or _cached_author(job)
        if author is None:
            author = (await self._whoami(job, client))["author"]
        since = 0
        if job.publishing_since is not None:
            since = int((job.publishing_since - RECONCILE_MARGIN).timestamp() * 1000)
        matches: list[dict[str, Any]] = []
        params = {"q": "author", "author": author, "count": str(RECONCILE_PAGE)}
        params["sortBy"] = "LAST_MODIFIED"
        for page in range(RECONCILE_PAGES):
            params["start"] = str(page * RECONCILE_PAGE)
            try:
                listing = await self._call(
                    client, job.account, "GET", "/rest/posts", params=params, finder=True
                )
            except PlatformError as exc:
                if exc.http_status != 403:
                    raise
                return CannotTell(f"LinkedIn does not let Soku read {author}'s posts: {exc}")
            posts = [p for p in listing.get("elements") or [] if isinstance(p, dict)]
            recent = [p for p in posts if _number(p.get("createdAt")) >= since]
            matches += [p for p in recent if _is_ours(job, p)]
            if len(posts) < RECONCILE_PAGE or len(recent) < len(posts):
                break
        else:
            return CannotTell(f"Too many recent posts by {author} to check them all")
        if len(matches) > 1:
            return CannotTell(f"{len(matches)} posts by {author} match this delivery")
        if not matches:
            return NotPublished()
        urn = str(matches[0]["id"])
        return Published(urn, self.permalink(urn), raw=matches[0])

    async def refresh(self, account: AccountAccess, client: httpx.AsyncClient) -> RefreshedTokens:
        if not account.refresh_token:
            message = "The LinkedIn account has no refresh token: connect it again."
            raise PlatformError(ErrorKind.reauth_required, "no_refresh_token", message)
        form = {"grant_type": "refresh_token", "refresh_token": account.refresh_token}
        if self.client_id:
            form["client_id"] = self.client_id
        if self.client_secret:
            form["client_secret"] = self.client_secret
        try:
            response = await client.post(self.oauth_url, data=form)
        except httpx.HTTPError as exc:
            raise map_error(exc) from exc
        tokens = response_json(response)
        if not response.is_success or not isinstance(tokens, dict) or "access_token" not in tokens:
            raise refresh_error(response)
        expires_in, expires_at = tokens.get("expires_in"), None
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=expires_in)
        refresh_token = tokens.get("refresh_token") or account.refresh_token
        return RefreshedTokens(str(tokens["access_token"]), refresh_token, expires_at)

    def permalink(self, post_urn: str) -> str:
        return f"{self.web_url}/feed/update/{post_urn}/"

    # --- steps ---------------------------------------------------------------------------

    async def _whoami(self, job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
        me = await self._call(client, job.account, "GET", "/v2/userinfo", versioned=False)
        if not me.get("sub"):
            message = "LinkedIn's userinfo answer carried no member id (sub)."
            raise PlatformError(ErrorKind.server_error, "unreadable_answer", message, raw=me)
        return {"author": f"urn:li:person:{me['sub']}"}

    def _upload_image(self, job: Job, index: int) -> StepFunction:
        url = job.image_urls[index]

        async def run(job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
            too_big = f"Soku sends LinkedIn images of up to 20 MB; {url} is larger."
            data, media_type = await media_reader.read_whole(client, url, MAX_IMAGE_BYTES, too_big)
            body = {"initializeUploadRequest": {"owner": _author(job)}}
            params = {"action": "initializeUpload"}
            answer = await self._call(
                client, job.account, "POST", "/rest/images", params=params, json=body
            )
            value = _value(answer, "image", "uploadUrl")
            headers = {"Content-Type": media_type}
            await self._put(client, job.account, value["uploadUrl"], data, headers)
            return {"image": str(value["image"]), "bytes": len(data)}

        return run

    async def _wait_images(self, job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
        urns = [_result(job, f"upload_{n}")["image"] for n in range(len(job.image_urls))]
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
        request = {"owner": _author(job), "fileSizeBytes": total}
        request.update(uploadCaptions=False, uploadThumbnail=False)
        params = {"action": "initializeUpload"}
        body = {"initializeUploadRequest": request}
        answer = await self._call(
            client, job.account, "POST", "/rest/videos", params=params, json=body
        )
        value = _value(answer, "video", "uploadInstructions")
        parts = _parts(value["uploadInstructions"], total, answer)
        token = str(value.get("uploadToken") or "")
        return {"video": str(value["video"]), "upload_token": token, "total_bytes": total,
                "parts": parts}  # fmt: skip

    def _part(self, index: int) -> StepFunction:
        async def run(job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
            part = _result(job, "init")["parts"][index]
            size = part["last"] - part["first"] + 1
            chunk = await media_reader.read_range(client, job.video_urls[0], part["first"], size)
            headers = {"Content-Type": "application/octet-stream"}
            response = await self._put(client, job.account, part["url"], chunk, headers)
            etag = response.headers.get("etag", "")
            if not etag:
                message = f"LinkedIn took video part {index} but sent no ETag for it."
                raise PlatformError(ErrorKind.server_error, "no_etag", message)
            return {"etag": etag, "bytes": size}

        return run

    async def _finalize(self, job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
        init, done = _result(job, "init"), job.checkpoint.get("steps", {})
        names = [f"part_{n}" for n in range(len(init["parts"]))]
        if any(name not in done for name in names):
            message = "Some video parts are not uploaded yet; the next attempt sends them."
            raise PlatformError(ErrorKind.server_error, "upload_incomplete", message)
        request = {"video": init["video"], "uploadToken": init["upload_token"]}
        request["uploadedPartIds"] = [done[name]["etag"] for name in names]
        params, body = {"action": "finalizeUpload"}, {"finalizeUploadRequest": request}
        try:
            await self._send(client, job.account, "POST", "/rest/videos", params=params, json=body)
        except PlatformError as exc:
            if exc.http_status != 400:
                raise
            # Finalized already, by an attempt that died before its result was saved?
            status = await self._status(client, job.account, "videos", init["video"])
            if status.get("status") not in ("PROCESSING", "AVAILABLE"):
                raise exc from None
        return {"video": init["video"], "parts": len(names)}

    async def _wait_video(self, job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
        video = _result(job, "finalize")["video"]
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
        return await self._call(client, account, "GET", f"/rest/{kind}/{quote(urn, safe='')}")

    # --- calls -----------------------------------------------------------------------------

    async def _call(
        self,
        client: httpx.AsyncClient,
        account: AccountAccess,
        method: str,
        path: str,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One API call and its JSON object."""
        response = await self._send(client, account, method, path, **kwargs)
        body = response_json(response)
        if not isinstance(body, dict):
            message = f"LinkedIn answered {path} without a JSON object."
            raise PlatformError(
                ErrorKind.server_error, "unreadable_answer", message, raw=response.text[:500]
            )
        return body

    async def _send(
        self,
        client: httpx.AsyncClient,
        account: AccountAccess,
        method: str,
        path: str,
        *,
        versioned: bool = True,
        finder: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """One API call, versioned unless told otherwise; its answer when it succeeded."""
        headers = {"Authorization": f"Bearer {_access_token(account)}"}
        if versioned:
            headers.update({"LinkedIn-Version": self.version, "X-Restli-Protocol-Version": "2.0.0"})
        if finder:
            headers["X-RestLi-Method"] = "FINDER"
        try:
            response = await client.request(method, self.api_url + path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise map_error(exc) from exc
        if not response.is_success:
            raise map_error(response)
        return response

    async def _put(
        self,
        client: httpx.AsyncClient,
        account: AccountAccess,
        url: str,
        data: bytes,
        headers: dict[str, str],
    ) -> httpx.Response:
        """Bytes to an upload URL exactly as LinkedIn returned it."""
        headers = {"Authorization": f"Bearer {_access_token(account)}", **headers}
        try:
            response = await client.put(url, content=data, headers=headers)
        except httpx.HTTPError as exc:
            raise map_error(exc) from exc
        if not response.is_success:
            raise map_error(response)
        return response


class _VideoSteps(Sequence[Step]):
    """`init`, `part_0` … `part_<n-1>`, `finalize`, `wait_processing`.

    LinkedIn names the parts in `init`'s answer. The engine saves each step's result in
    `job.checkpoint` before it asks for the next step, and this sequence is read again at
    every index, so it grows as it is walked (as X's does).
    """

    def __init__(self, connector: LinkedInConnector, job: Job, head: list[Step]) -> None:
        self.connector, self.job, self.head = connector, job, head

    def _current(self) -> list[Step]:
        connector, init = self.connector, self.job.checkpoint.get("steps", {}).get("init")
        parts = len(init["parts"]) if isinstance(init, dict) else 0
        return [
            *self.head,
            Step("init", connector._init),
            *(Step(f"part_{n}", connector._part(n)) for n in range(parts)),
            Step("finalize", connector._finalize),
            Step("wait_processing", connector._wait_video),
        ]

    @overload
    def __getitem__(self, index: int) -> Step: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Step]: ...
    def __getitem__(self, index: int | slice) -> Step | Sequence[Step]:
        return self._current()[index]

    def __len__(self) -> int:
        return len(self._current())


# --- the job and its checkpoint ----------------------------------------------------------------


def _author_of(account: AccountAccess) -> str | None:
    """The author URN the account names: a full URN, or a bare member id."""
    user = (account.platform_user_id or "").strip()
    if not user:
        return None
    urn = user if user.startswith("urn:") else f"urn:li:person:{user}"
    if not _AUTHOR.match(urn):
        message = f"The LinkedIn account names {user!r}, neither a member nor an organization."
        raise PlatformError(ErrorKind.permanent, "invalid_author", message)
    return urn


def _cached_author(job: Job) -> str | None:
    cached = job.checkpoint.get("steps", {}).get("user")
    return str(cached["author"]) if isinstance(cached, dict) else None


def _author(job: Job) -> str:
    author = _author_of(job.account) or _cached_author(job)
    if author is None:
        raise RuntimeError(f"delivery {job.delivery_id}: the author is not known yet")
    return author


def _result(job: Job, name: str) -> dict[str, Any]:
    result = job.checkpoint.get("steps", {}).get(name)
    if not isinstance(result, dict):
        raise RuntimeError(f"delivery {job.delivery_id}: step {name} has no result yet")
    return result


def _uploaded(job: Job) -> list[str]:
    """The URNs of our uploaded media, in the post's order (once they are AVAILABLE)."""
    if job.video_urls:
        return [str(_result(job, "wait_processing")["video"])]
    if job.image_urls:
        return [str(urn) for urn in _result(job, "wait_processing")["images"]]
    return []


def _is_ours(job: Job, post: dict[str, Any]) -> bool:
    """Same media URNs (unique to our uploads), else the same commentary and no media."""
    content = post.get("content")
    if not isinstance(content, dict):
        content = {}
    theirs = [str((content.get("media") or {}).get("id") or "")]
    theirs += [str(i.get("id")) for i in (content.get("multiImage") or {}).get("images") or []]
    theirs = [urn for urn in theirs if urn]
    mine = _uploaded_so_far(job)
    if mine or theirs:
        return bool(mine) and theirs == mine
    return " ".join(str(post.get("commentary") or "").split()) == " ".join(
        little_text(job.text or "").split()
    )


def _uploaded_so_far(job: Job) -> list[str]:
    steps = job.checkpoint.get("steps", {})
    if job.video_urls:
        init = steps.get("init")
        return [str(init["video"])] if isinstance(init, dict) else []
    uploads = [steps.get(f"upload_{n}") for n in range(len(job.image_urls))]
    return [str(u["image"]) for u in uploads if isinstance(u, dict)]


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


def _number(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _access_token(account: AccountAccess) -> str:
    if not account.access_token:
        message = f"The LinkedIn account {account.account_id} has no access token."
        raise PlatformError(ErrorKind.reauth_required, "no_access_token", message)
    return account.access_token
