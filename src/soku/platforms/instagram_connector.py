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

import datetime as dt
import unicodedata
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
    response_json,
    round_prefix,
)
from soku.platforms.graph_containers import (
    ContainerApi,
    Containers,
    access_token,
    answer_id,
    final_container,
    fixed,
    graph_user,
    step_result,
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
CONTAINERS = ContainerApi(LABEL, "media", "status_code", "status", MAX_POLL_WAIT)


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
        self.containers = Containers(
            CONTAINERS,
            self._call,
            poll_interval=poll_interval,
            max_processing_wait=max_processing_wait,
            max_age=container_max_age,
        )

    def steps(self, job: Job) -> Sequence[Step]:
        prefix = round_prefix(self.containers.round(job))
        items = _items(job)
        if len(items) < 2:
            return self.containers.pair(prefix, "container", "ready", fixed(_single_params(job)))
        pair, steps = self.containers.pair, list[Step]()
        for index, params in enumerate(_item_params(items)):
            steps += pair(prefix, f"item_{index}", f"item_{index}_ready", fixed(params))

        def carousel(job: Job) -> dict[str, str]:
            done = [step_result(job, f"{prefix}item_{i}_ready") for i in range(len(items))]
            return _carousel_params(job, [str(r["container_id"]) for r in done])

        async def renewed(job: Job, client: httpx.AsyncClient) -> dict[str, str]:
            """New items as well: made before the carousel, they expired before it."""
            children = [await self.containers.new(job, client, p) for p in _item_params(items)]
            for child in children:
                await self.containers.wait(client, job.account, child)
            return _carousel_params(job, children)

        return steps + pair(prefix, "container", "ready", carousel, renewed)

    async def publish(self, job: Job, client: httpx.AsyncClient) -> Published:
        container = final_container(job)
        if container is None:
            raise RuntimeError(f"delivery {job.delivery_id}: no container is ready to publish")
        path = f"/{graph_user(job.account)}/media_publish"
        body = await self._call(client, job.account, "POST", path, data={"creation_id": container})
        media_id = answer_id(body, LABEL)
        return Published(media_id, await self._permalink(job, client, media_id), raw=body)

    async def reconcile(self, job: Job, client: httpx.AsyncClient) -> ReconcileResult:
        container = final_container(job)
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
        params = {"grant_type": "ig_refresh_token", "access_token": access_token(account, LABEL)}
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
        path = f"/{graph_user(job.account)}/media"
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
        headers = {"Authorization": f"Bearer {access_token(account, LABEL)}"}
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
