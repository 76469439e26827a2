"""The Threads connector: publishes through the Threads API (`graph.threads.net`), or its fake.

Follows the Threads API v1.0 as Meta's Threads docs and its official Postman collection
(`fbsamples/threads_api` @44df04d, 2026-01) describe it, summarised in
/work/shared/platforms/threads.md. Threads fetches the media itself, from our store's public
URLs (`image_url`, `video_url`); nothing is uploaded. The steps, each one saved in the
checkpoint by the engine before the next runs:

- a text, one image or one video: `container` (`POST /{user}/threads`), then `ready`
  (`GET /{container}?fields=id,status,error_message` until FINISHED);
- a carousel (2-20 items): `item_<i>` (a child container, `is_carousel_item=true`) and
  `item_<i>_ready` for each item, then `container` (`media_type=CAROUSEL`, `children`) and
  `ready`;
- `publish`: `POST /{user}/threads_publish?creation_id=…`, then `GET /{id}?fields=id,permalink`
  (the profile URL when there is none);
- `reconcile`: the container's own status (PUBLISHED: the post went out, found among
  `GET /{user}/threads` since `publishing_since` - 60 s, matched on type and text);
- `refresh`: `GET /refresh_access_token?grant_type=th_refresh_token` (the token refreshes
  itself; there is no refresh token).

Containers that are not published expire after 24 h (status EXPIRED) and must be made
again. Two rules keep a delivery from publishing an expired one: a `ready` step that finds its
container EXPIRED makes a new one with the same parameters (a carousel with new items too:
made before it, they expired first) and waits for that (its result names the container to
use); and when the first container of the steps done is older than
`container_max_age` (23 h), `steps()` lists a new round of them, named with an `r<n>_`
prefix (`r2_container`, `r2_ready`), so a delivery held back for a day starts afresh.
`publish` and `reconcile` use the latest round whose `ready` step is done.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from soku.platforms.connector import (
    CannotTell,
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

API_URL = "https://graph.threads.net"
VERSION = "v1.0"
WEB_URL = "https://www.threads.net"
LABEL = "Threads"
MAX_POLL_WAIT = 30.0  # seconds between two status checks, at most
CONTAINER_MAX_AGE = 23 * 3600  # Threads expires unpublished containers after 24 h
RECONCILE_MARGIN = dt.timedelta(seconds=60)
RECONCILE_PAGES = 5
# What `GET /{user}/threads` calls each kind of container once published.
LISTED_TYPES = {"TEXT": "TEXT_POST", "IMAGE": "IMAGE", "VIDEO": "VIDEO",
                "CAROUSEL": "CAROUSEL_ALBUM"}  # fmt: skip
CONTAINERS = ContainerApi(LABEL, "threads", "status", "error_message", MAX_POLL_WAIT)


class ThreadsConnector(GraphConnector):
    platform = "threads"
    api = CONTAINERS
    publish_edge = "threads_publish"
    grant_type = "th_refresh_token"
    text_field = "text"

    def __init__(
        self,
        api_url: str = API_URL,
        *,
        version: str = VERSION,
        web_url: str = WEB_URL,
        poll_interval: float = 2.0,
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
        return _single_params(job, items)

    def _item_params(self, items: Items) -> list[dict[str, str]]:
        return _item_params(items)

    # --- after publishing --------------------------------------------------------------------

    async def _permalink(self, job: Job, client: httpx.AsyncClient, media_id: str) -> str:
        """The thread's permalink; the profile URL when Threads gives none (or fails to)."""
        params = {"fields": "id,permalink"}
        try:
            body = await self._call(client, job.account, "GET", f"/{media_id}", params=params)
        except PlatformError:
            body = {}
        if body.get("permalink"):
            return str(body["permalink"])
        return await self._profile_url(job, client)

    async def _profile_url(self, job: Job, client: httpx.AsyncClient) -> str:
        username = job.account.username
        if not username:
            params = {"fields": "id,username"}
            try:
                me = await self._call(client, job.account, "GET", "/me", params=params)
            except PlatformError:
                me = {}
            username = str(me.get("username") or "") or None
        return f"{self.web_url}/@{username}" if username else self.web_url

    async def _find_post(self, job: Job, client: httpx.AsyncClient) -> ReconcileResult:
        """The published thread of this delivery among the account's recent threads."""
        params = {"fields": "id,text,timestamp,permalink,media_type", "limit": "100"}
        if job.publishing_since is not None:
            params["since"] = str(int((job.publishing_since - RECONCILE_MARGIN).timestamp()))
        wanted = LISTED_TYPES["CAROUSEL" if len(post_items(job)) > 1 else _single_kind(job)]
        matches: list[dict[str, Any]] = []
        path = f"/{graph_user(job.account)}/threads"
        for _ in range(RECONCILE_PAGES):
            listing = await self._call(client, job.account, "GET", path, params=params)
            matches += [t for t in listing.get("data") or [] if _is_ours(job, wanted, t)]
            after = next_cursor(listing)
            if after is None:
                break
            params["after"] = after
        if len(matches) != 1:
            found = "no thread" if not matches else f"{len(matches)} threads"
            return CannotTell(f"its container is PUBLISHED, and {found} on the account match")
        thread = matches[0]
        url = str(thread.get("permalink") or "") or await self._profile_url(job, client)
        return Published(str(thread["id"]), url, raw=thread)


# --- the job and its checkpoint ----------------------------------------------------------------

_URL_PARAM = {"IMAGE": "image_url", "VIDEO": "video_url"}


def _single_kind(job: Job) -> str:
    items = post_items(job)
    return items[0][0] if items else "TEXT"


def _single_params(job: Job, items: list[tuple[str, str]]) -> dict[str, str]:
    kind = _single_kind(job)
    params = {"media_type": kind}
    if items:
        params[_URL_PARAM[kind]] = items[0][1]
    return {**params, "text": job.text} if job.text else params


def _item_params(items: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"media_type": kind, _URL_PARAM[kind]: url, "is_carousel_item": "true"}
            for kind, url in items]  # fmt: skip


def _is_ours(job: Job, media_type: str, thread: dict[str, Any]) -> bool:
    if thread.get("media_type") not in (None, media_type):
        return False
    return comparable(job.text or "") == comparable(str(thread.get("text") or ""))
