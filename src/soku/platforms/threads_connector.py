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

import httpx

from soku.platforms.connector import Job, PlatformError
from soku.platforms.graph_connector import GraphConnector, Items, post_items
from soku.platforms.graph_containers import ContainerApi

API_URL = "https://graph.threads.net"
VERSION = "v1.0"
WEB_URL = "https://www.threads.net"
LABEL = "Threads"
MAX_POLL_WAIT = 30.0  # seconds between two status checks, at most
# What `GET /{user}/threads` calls each kind of container once published.
LISTED_TYPES = {"TEXT": "TEXT_POST", "IMAGE": "IMAGE", "VIDEO": "VIDEO",
                "CAROUSEL": "CAROUSEL_ALBUM"}  # fmt: skip
CONTAINERS = ContainerApi(LABEL, "threads", "status", "error_message", MAX_POLL_WAIT)
_URL_PARAM = {"IMAGE": "image_url", "VIDEO": "video_url"}


class ThreadsConnector(GraphConnector):
    platform, api = "threads", CONTAINERS
    publish_edge, grant_type, text_field = "threads_publish", "th_refresh_token", "text"
    urls, poll_every = (API_URL, VERSION, WEB_URL), 2.0
    listing, noun = ("id,text,timestamp,permalink,media_type", "100"), "thread"

    def _single_params(self, job: Job, items: Items) -> dict[str, str]:
        kind = _single_kind(items)
        params = {"media_type": kind}
        if items:
            params[_URL_PARAM[kind]] = items[0][1]
        return {**params, "text": job.text} if job.text else params

    def _item_params(self, items: Items) -> list[dict[str, str]]:
        return [{"media_type": kind, _URL_PARAM[kind]: url, "is_carousel_item": "true"}
                for kind, url in items]  # fmt: skip

    # --- after publishing --------------------------------------------------------------------

    def _listed_type(self, job: Job) -> str:
        items = post_items(job)
        return LISTED_TYPES["CAROUSEL" if len(items) > 1 else _single_kind(items)]

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


def _single_kind(items: Items) -> str:
    return items[0][0] if items else "TEXT"
