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
from typing import Any

import httpx

from soku.platforms.connector import (
    CannotTell,
    ErrorKind,
    Job,
    PlatformError,
    Published,
    ReconcileResult,
)
from soku.platforms.graph_connector import GraphConnector, Items, comparable, post_items
from soku.platforms.graph_containers import (
    ContainerApi,
    graph_user,
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


class InstagramConnector(GraphConnector):
    platform = "instagram"
    api = CONTAINERS
    publish_edge = "media_publish"
    grant_type = "ig_refresh_token"
    text_field = "caption"

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
        super().__init__(
            api_url,
            version=version,
            web_url=web_url,
            poll_interval=poll_interval,
            max_processing_wait=max_processing_wait,
            container_max_age=container_max_age,
        )

    def _single_params(self, job: Job, items: Items) -> dict[str, str]:
        return _single_params(job)

    def _item_params(self, items: Items) -> list[dict[str, str]]:
        return _item_params(items)

    def _error(self, failure: httpx.Response | httpx.HTTPError) -> PlatformError:
        return instagram_error(failure)

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


# --- the job and its checkpoint ----------------------------------------------------------------


def _kind(job: Job) -> str:
    """IMAGE, REELS (every single video is published as a reel) or CAROUSEL."""
    items = post_items(job)
    if len(items) > 1:
        return "CAROUSEL"
    return "REELS" if items and items[0][0] == "VIDEO" else "IMAGE"


def _single_params(job: Job) -> dict[str, str]:
    items = post_items(job)
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


def _is_ours(job: Job, media_type: str, since: dt.datetime | None, post: dict[str, Any]) -> bool:
    if post.get("media_type") not in (None, media_type):
        return False
    made = _timestamp(post.get("timestamp"))
    if since is not None and made is not None and made < since:
        return False
    return comparable(job.text or "") == comparable(str(post.get("caption") or ""))


def _timestamp(value: Any) -> dt.datetime | None:
    """Graph's `2026-01-02T03:04:05+0000`."""
    try:
        return dt.datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None
