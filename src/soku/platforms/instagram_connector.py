"""The Instagram connector: the Instagram API with Instagram Login (`graph.instagram.com`).

Follows /work/shared/platforms/instagram.md (Meta's content-publishing guide, the IG user
media and container references). Instagram fetches each media itself from the public URL it
is given (`image_url`, `video_url`): nothing is uploaded. The steps, each saved in the
checkpoint by the engine before the next one runs:

- one image or one video: `container` (`POST /{ig-id}/media`; a video is a reel,
  `media_type=REELS`), then `ready` (`GET /{container}?fields=status_code,status` until
  FINISHED);
- a carousel (2-10 items): `item_<i>` (`is_carousel_item=true`, no caption; a video item is
  `media_type=VIDEO`) and `item_<i>_ready` for each, then `container`
  (`media_type=CAROUSEL`, `children`, the caption) and `ready`;
- `publish`: `POST /{ig-id}/media_publish?creation_id=…`, then `GET /{media}?fields=permalink`;
- `reconcile`: the container's `status_code` (only PUBLISHED means the post went out), then
  the post among `GET /{ig-id}/media` since `publishing_since` - 60 s, matched on its type
  and caption;
- `refresh`: `GET /refresh_access_token?grant_type=ig_refresh_token`.

Instagram has no idempotency key; the container's status is what tells a publish that went
through from one that did not. Containers expire after 24 h: a `ready` step that finds its
container EXPIRED makes it again (a carousel's items too), and once the first container of a
round is older than `container_max_age` the steps start a new round (`r2_container`, …).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
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
    StepFunction,
    current_round,
    response_json,
    round_of,
    round_prefix,
)
from soku.platforms.graph_paging import next_cursor
from soku.platforms.instagram_errors import LABEL, instagram_error

API_URL = "https://graph.instagram.com"
VERSION = "v25.0"  # Meta moves fast: an option (instagram.md)
WEB_URL = "https://www.instagram.com"
MAX_POLL_WAIT = 60.0  # Meta's advice: check a container once a minute
CONTAINER_MAX_AGE = 23 * 3600  # Instagram expires containers not published within 24 h
RECONCILE_MARGIN = dt.timedelta(seconds=60)
RECONCILE_PAGES = 5
# How `GET /{ig-id}/media` lists each kind of post (a reel is a VIDEO).
LISTED = {"IMAGE": "IMAGE", "REELS": "VIDEO", "CAROUSEL": "CAROUSEL_ALBUM"}
_NUMERIC_ID = re.compile(r"^[0-9]{1,25}$")
Params = Callable[[Job], dict[str, str]]
Renewed = Callable[[Job, httpx.AsyncClient], Awaitable[dict[str, str]]]


class InstagramConnector:
    platform = "instagram"

    def __init__(
        self,
        api_url: str = API_URL,
        *,
        version: str = VERSION,
        web_url: str = WEB_URL,
        poll_interval: float = 5.0,
        max_processing_wait: float = 300.0,
        container_max_age: float = CONTAINER_MAX_AGE,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.base_url = f"{self.api_url}/{version.strip('/')}"
        self.web_url = web_url.rstrip("/")
        self.poll_interval = poll_interval
        self.max_processing_wait = max_processing_wait
        self.container_max_age = container_max_age

    def steps(self, job: Job) -> Sequence[Step]:
        prefix = round_prefix(self._round(job))
        items = _items(job)
        if len(items) < 2:
            return self._pair(prefix, "container", "ready", _fixed(_single_params(job)))
        steps: list[Step] = []
        for index, params in enumerate(_item_params(items)):
            steps += self._pair(prefix, f"item_{index}", f"item_{index}_ready", _fixed(params))

        def carousel(job: Job) -> dict[str, str]:
            done = [_result(job, f"{prefix}item_{i}_ready") for i in range(len(items))]
            return _carousel_params(job, [str(r["container_id"]) for r in done])

        async def renewed(job: Job, client: httpx.AsyncClient) -> dict[str, str]:
            """New items as well: made before the carousel, they expired before it."""
            children = [await self._new_container(job, client, p) for p in _item_params(items)]
            for child in children:
                await self._wait(client, job.account, child)
            return _carousel_params(job, children)

        return steps + self._pair(prefix, "container", "ready", carousel, renewed)

    async def publish(self, job: Job, client: httpx.AsyncClient) -> Published:
        container = _final_container(job)
        if container is None:
            raise RuntimeError(f"delivery {job.delivery_id}: no container is ready to publish")
        path = f"/{_user(job.account)}/media_publish"
        body = await self._call(client, job.account, "POST", path, data={"creation_id": container})
        media_id = _id(body)
        return Published(media_id, await self._permalink(job, client, media_id), raw=body)

    async def reconcile(self, job: Job, client: httpx.AsyncClient) -> ReconcileResult:
        container = _final_container(job)
        if container is None:
            return NotPublished()
        params = {"fields": "id,status_code"}
        found = await self._call(client, job.account, "GET", f"/{container}", params=params)
        status = found.get("status_code")
        if status in ("FINISHED", "IN_PROGRESS", "ERROR", "EXPIRED"):
            return NotPublished()  # a container is published once, and not this one
        if status != "PUBLISHED":
            return CannotTell(f"Instagram gave container {container} the status {status!r}")
        return await self._find_post(job, client)

    async def refresh(self, account: AccountAccess, client: httpx.AsyncClient) -> RefreshedTokens:
        params = {"grant_type": "ig_refresh_token", "access_token": _access_token(account)}
        try:
            response = await client.get(self.api_url + "/refresh_access_token", params=params)
        except httpx.HTTPError as exc:
            raise instagram_error(exc) from exc
        tokens = response_json(response)
        if response.is_success and isinstance(tokens, dict) and tokens.get("access_token"):
            return RefreshedTokens(str(tokens["access_token"]), None, _expiry(tokens))
        error = instagram_error(response)
        if error.kind in (ErrorKind.rate_limited, ErrorKind.server_error):
            raise error
        # Expired, revoked, or younger than 24 h: only the user can help.
        message = f"Instagram refused to refresh the token ({error.message}) Connect it again."
        raise PlatformError(
            ErrorKind.reauth_required,
            "refresh_refused",
            message,
            http_status=response.status_code,
            raw=error.raw,
        )

    # --- steps ---------------------------------------------------------------------------

    def _round(self, job: Job) -> int:
        def too_old(result: dict[str, Any]) -> bool:
            made = result.get("created_at")
            return isinstance(made, int | float) and time.time() - made > self.container_max_age

        return current_round(job.checkpoint.get("steps", {}), too_old)

    def _pair(
        self, prefix: str, create: str, ready: str, params: Params, renewed: Renewed | None = None
    ) -> list[Step]:
        return [
            Step(prefix + create, self._create(params)),
            Step(prefix + ready, self._ready(prefix + create, params, renewed)),
        ]

    def _create(self, params: Params) -> StepFunction:
        async def run(job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
            container = await self._new_container(job, client, params(job))
            return {"container_id": container, "created_at": time.time()}

        return run

    def _ready(self, create: str, params: Params, renewed: Renewed | None) -> StepFunction:
        async def run(job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
            container = str(_result(job, create)["container_id"])
            status = await self._wait(client, job.account, container)
            if status == "EXPIRED":  # not published in time: made again, once
                fresh = await renewed(job, client) if renewed else params(job)
                container = await self._new_container(job, client, fresh)
                status = await self._wait(client, job.account, container)
            if status == "EXPIRED":
                message = f"Instagram let container {container} expire before it was ready."
                raise PlatformError(ErrorKind.processing_failed, "container_expired", message)
            return {"container_id": container, "status": status}

        return run

    async def _new_container(
        self, job: Job, client: httpx.AsyncClient, params: dict[str, str]
    ) -> str:
        path = f"/{_user(job.account)}/media"
        return _id(await self._call(client, job.account, "POST", path, data=params))

    async def _wait(self, client: httpx.AsyncClient, account: AccountAccess, container: str) -> str:
        """Reads the container's `status_code` until FINISHED (or EXPIRED); ERROR raises."""
        deadline, delay = time.monotonic() + self.max_processing_wait, self.poll_interval
        params = {"fields": "id,status_code,status"}
        while True:
            body = await self._call(client, account, "GET", f"/{container}", params=params)
            status = body.get("status_code")
            if status in ("FINISHED", "PUBLISHED", "EXPIRED"):
                return str(status)
            if status == "ERROR":
                reason = body.get("status") or "no reason given"
                message = f"Instagram could not process container {container}: {reason}."
                raise PlatformError(
                    ErrorKind.processing_failed, "processing_failed", message, raw=body
                )
            if status != "IN_PROGRESS":
                message = f"Instagram gave container {container} the status {status!r}."
                raise PlatformError(ErrorKind.server_error, "unreadable_answer", message, raw=body)
            if time.monotonic() + delay > deadline:
                message = f"Instagram was still processing container {container}; checking later."
                raise PlatformError(
                    ErrorKind.server_error, "media_still_processing", message, retry_after=delay
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_POLL_WAIT)

    # --- after publishing --------------------------------------------------------------------

    async def _permalink(self, job: Job, client: httpx.AsyncClient, media_id: str) -> str:
        """The post's permalink; the profile's URL when Instagram gives none (or fails to)."""
        params = {"fields": "id,permalink"}
        try:
            body = await self._call(client, job.account, "GET", f"/{media_id}", params=params)
        except PlatformError:
            body = {}
        if body.get("permalink"):
            return str(body["permalink"])
        username = job.account.username
        return f"{self.web_url}/{username}/" if username else self.web_url

    async def _find_post(self, job: Job, client: httpx.AsyncClient) -> ReconcileResult:
        """This delivery's post among the account's recent media."""
        params = {"fields": "id,caption,media_type,timestamp,permalink", "limit": "50"}
        since = None
        if job.publishing_since is not None:
            since = job.publishing_since - RECONCILE_MARGIN
            params["since"] = str(int(since.timestamp()))
        wanted = LISTED[_kind(job)]
        matches: list[dict[str, Any]] = []
        path = f"/{_user(job.account)}/media"
        for _ in range(RECONCILE_PAGES):
            listing = await self._call(client, job.account, "GET", path, params=params)
            matches += [m for m in listing.get("data") or [] if _is_ours(job, wanted, since, m)]
            after = next_cursor(listing)
            if after is None:
                break
            params["after"] = after
        if len(matches) != 1:
            found = "no post" if not matches else f"{len(matches)} posts"
            return CannotTell(f"its container is PUBLISHED, and {found} on the account match")
        post = matches[0]
        url = str(post.get("permalink") or "") or await self._permalink(job, client, post["id"])
        return Published(str(post["id"]), url, raw=post)

    # --- calls -------------------------------------------------------------------------------

    async def _call(
        self,
        client: httpx.AsyncClient,
        account: AccountAccess,
        method: str,
        path: str,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One Graph call, the token as a Bearer header; its JSON object."""
        headers = {"Authorization": f"Bearer {_access_token(account)}"}
        try:
            response = await client.request(method, self.base_url + path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise instagram_error(exc) from exc
        body = response_json(response)
        if response.is_success and isinstance(body, dict):
            return body
        raise instagram_error(response)


# --- the job and its checkpoint ----------------------------------------------------------------


def _items(job: Job) -> list[tuple[str, str]]:
    """(IMAGE or VIDEO, URL) of each item, images first."""
    return [("IMAGE", url) for url in job.image_urls] + [("VIDEO", url) for url in job.video_urls]


def _kind(job: Job) -> str:
    """IMAGE, REELS (every single video is published as a reel) or CAROUSEL."""
    items = _items(job)
    if len(items) > 1:
        return "CAROUSEL"
    return "REELS" if items and items[0][0] == "VIDEO" else "IMAGE"


def _single_params(job: Job) -> dict[str, str]:
    items = _items(job)
    if not items:  # the content rules refuse such a post before it is stored
        raise PlatformError(
            ErrorKind.permanent, "media_required", "Instagram needs an image or a video."
        )
    kind, url = items[0]
    params = {"image_url": url} if kind == "IMAGE" else {"media_type": "REELS", "video_url": url}
    return {**params, "caption": job.text} if job.text else params


def _item_params(items: list[tuple[str, str]]) -> list[dict[str, str]]:
    """A carousel's children: no caption, a video one as `media_type=VIDEO` (not a reel)."""
    return [
        {"image_url": url, "is_carousel_item": "true"}
        if kind == "IMAGE"
        else {"media_type": "VIDEO", "video_url": url, "is_carousel_item": "true"}
        for kind, url in items
    ]


def _carousel_params(job: Job, children: list[str]) -> dict[str, str]:
    params = {"media_type": "CAROUSEL", "children": ",".join(children)}
    return {**params, "caption": job.text} if job.text else params


def _fixed(params: dict[str, str]) -> Params:
    return lambda _job: params


def _final_container(job: Job) -> str | None:
    """The container of the latest round whose `ready` step is done."""
    done = job.checkpoint.get("steps", {})
    rounds = [name for name in done if name == round_prefix(round_of(name)) + "ready"]
    if not rounds:
        return None
    result = done[max(rounds, key=round_of)]
    return str(result["container_id"]) if isinstance(result, dict) else None


def _result(job: Job, name: str) -> dict[str, Any]:
    result = job.checkpoint.get("steps", {}).get(name)
    if not isinstance(result, dict):
        raise RuntimeError(f"delivery {job.delivery_id}: step {name} has no result yet")
    return result


def _is_ours(job: Job, media_type: str, since: dt.datetime | None, post: dict[str, Any]) -> bool:
    if post.get("media_type") not in (None, media_type):
        return False
    made = _timestamp(post.get("timestamp"))
    if since is not None and made is not None and made < since:
        return False
    return _comparable(job.text or "") == _comparable(str(post.get("caption") or ""))


def _timestamp(value: Any) -> dt.datetime | None:
    """Graph's `2026-01-02T03:04:05+0000`."""
    try:
        return dt.datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None


def _comparable(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def _expiry(tokens: dict[str, Any]) -> dt.datetime | None:
    seconds = tokens.get("expires_in")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return None


def _user(account: AccountAccess) -> str:
    """The account's Instagram professional account id, or `me` when unknown."""
    user_id = account.platform_user_id or ""
    return user_id if _NUMERIC_ID.match(user_id) else "me"


def _access_token(account: AccountAccess) -> str:
    if not account.access_token:
        message = f"The {LABEL} account {account.account_id} has no access token."
        raise PlatformError(ErrorKind.reauth_required, "no_access_token", message)
    return account.access_token


def _id(body: dict[str, Any]) -> str:
    if not body.get("id"):
        message = f"{LABEL} answered without the expected `id`."
        raise PlatformError(ErrorKind.server_error, "unreadable_answer", message, raw=body)
    return str(body["id"])
