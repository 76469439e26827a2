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

from soku.platforms.connector import ErrorKind, Job, PlatformError
from soku.platforms.graph_connector import GraphConnector, Items, post_items
from soku.platforms.graph_containers import ContainerApi
from soku.platforms.instagram_errors import LABEL, instagram_error

API_URL = "https://graph.instagram.com"
VERSION = "v25.0"  # Meta moves fast: an option (instagram.md)
WEB_URL = "https://www.instagram.com"
MAX_POLL_WAIT = 60.0  # Meta's advice: check a container once a minute
# How `GET /{ig-id}/media` lists each kind of post (a reel is a VIDEO).
LISTED = {"IMAGE": "IMAGE", "REELS": "VIDEO", "CAROUSEL": "CAROUSEL_ALBUM"}
CONTAINERS = ContainerApi(LABEL, "media", "status_code", "status", MAX_POLL_WAIT)


class InstagramConnector(GraphConnector):
    platform, api = "instagram", CONTAINERS
    publish_edge, grant_type, text_field = "media_publish", "ig_refresh_token", "caption"
    urls, poll_every = (API_URL, VERSION, WEB_URL), 5.0
    listing, noun = ("id,caption,media_type,timestamp,permalink", "50"), "post"

    def _single_params(self, job: Job, items: Items) -> dict[str, str]:
        if not items:  # the content rules refuse such a post before it is stored
            raise PlatformError(
                ErrorKind.permanent, "media_required", "Instagram needs an image or a video."
            )
        kind, url = items[0]
        params = (
            {"image_url": url} if kind == "IMAGE" else {"media_type": "REELS", "video_url": url}
        )
        return {**params, "caption": job.text} if job.text else params

    def _item_params(self, items: Items) -> list[dict[str, str]]:
        """A carousel's children: no caption, a video one as `media_type=VIDEO` (not a reel)."""
        return [
            {"image_url": url, "is_carousel_item": "true"}
            if kind == "IMAGE"
            else {"media_type": "VIDEO", "video_url": url, "is_carousel_item": "true"}
            for kind, url in items
        ]

    def _error(self, failure: httpx.Response | httpx.HTTPError) -> PlatformError:
        return instagram_error(failure)

    # --- after publishing --------------------------------------------------------------------

    def _listed_type(self, job: Job) -> str:
        """IMAGE, VIDEO (every single video is published as a reel) or CAROUSEL_ALBUM."""
        items = post_items(job)
        if len(items) > 1:
            return LISTED["CAROUSEL"]
        return LISTED["REELS" if items and items[0][0] == "VIDEO" else "IMAGE"]

    async def _profile_url(self, job: Job, client: httpx.AsyncClient) -> str:
        username = job.account.username
        return f"{self.web_url}/{username}/" if username else self.web_url

    def _is_ours(
        self, job: Job, media_type: str, since: dt.datetime | None, post: dict[str, Any]
    ) -> bool:
        made = _timestamp(post.get("timestamp"))
        if since is not None and made is not None and made < since:
            return False
        return super()._is_ours(job, media_type, since, post)

    async def _found_url(self, job: Job, client: httpx.AsyncClient, post: dict[str, Any]) -> str:
        return await self._permalink(job, client, post["id"])


def _timestamp(value: Any) -> dt.datetime | None:
    """Graph's `2026-01-02T03:04:05+0000`."""
    try:
        return dt.datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None
