"""What the Graph container connectors (Threads, Instagram) share: their steps, publish,
reconcile's first half, the token refresh and the Graph call.

A platform names its edges, fields and defaults (`api`, `publish_edge`, `grant_type`,
`text_field`, `urls`, `listing`, …) and keeps what is its own: the parameters of a single
container and of a carousel's items, the type a post is listed as, and the profile URL a
permalink falls back to.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Sequence
from typing import Any

import httpx

from soku.platforms.api_calls import access_token, answered, json_answer
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
    answer_id,
    final_container,
    fixed,
    graph_user,
    step_result,
)
from soku.platforms.graph_paging import next_cursor
from soku.platforms.meta_errors import graph_error
from soku.platforms.token_refresh import expires_at

Items = list[tuple[str, str]]
CONTAINER_MAX_AGE = 23 * 3600  # the platforms expire containers not published within 24 h
RECONCILE_MARGIN = dt.timedelta(seconds=60)  # reconcile lists posts since publishing began, less
RECONCILE_PAGES = 5


class GraphConnector:
    """A connector that publishes through Graph media containers."""

    platform: str
    api: ContainerApi
    publish_edge: str  # `POST /{user}/<publish_edge>`
    grant_type: str  # of `GET /refresh_access_token`
    text_field: str  # the container parameter (and listed field) that holds the post's text
    urls: tuple[str, str, str]  # the real API's URL, its version, the website's URL
    poll_every: float  # the default seconds between two status reads
    listing: tuple[str, str]  # the fields and the page size reconcile lists the posts with
    noun: str  # what the platform calls a post, in reconcile's answers

    def __init__(
        self,
        api_url: str | None = None,
        *,
        version: str | None = None,
        web_url: str | None = None,
        poll_interval: float | None = None,
        max_processing_wait: float = 300.0,
        container_max_age: float = CONTAINER_MAX_AGE,
    ) -> None:
        api, api_version, web = self.urls
        self.api_url = (api if api_url is None else api_url).rstrip("/")
        self.base_url = f"{self.api_url}/{(api_version if version is None else version).strip('/')}"
        self.web_url = (web if web_url is None else web_url).rstrip("/")
        self.containers = Containers(
            self.api,
            self._call,
            poll_interval=self.poll_every if poll_interval is None else poll_interval,
            max_processing_wait=max_processing_wait,
            max_age=container_max_age,
        )

    # --- what a platform says for itself ---------------------------------------------------

    def _single_params(self, job: Job, items: Items) -> dict[str, str]:
        raise NotImplementedError

    def _item_params(self, items: Items) -> list[dict[str, str]]:
        raise NotImplementedError

    def _listed_type(self, job: Job) -> str:
        """The `media_type` the account's listing shows this delivery's post with."""
        raise NotImplementedError

    async def _profile_url(self, job: Job, client: httpx.AsyncClient) -> str:
        """Where a post without a permalink is seen: the account's profile, else the site."""
        raise NotImplementedError

    def _error(self, failure: httpx.Response | httpx.HTTPError) -> PlatformError:
        return graph_error(failure, self.api.label)

    # --- the connector ---------------------------------------------------------------------

    def steps(self, job: Job) -> Sequence[Step]:
        prefix = round_prefix(self.containers.round(job))
        items = post_items(job)
        if len(items) < 2:
            single = fixed(self._single_params(job, items))
            return self.containers.pair(prefix, "container", "ready", single)
        pair, steps = self.containers.pair, list[Step]()
        for index, params in enumerate(self._item_params(items)):
            steps += pair(prefix, f"item_{index}", f"item_{index}_ready", fixed(params))

        def carousel(job: Job) -> dict[str, str]:
            done = [step_result(job, f"{prefix}item_{i}_ready") for i in range(len(items))]
            return self._carousel_params(job, [str(r["container_id"]) for r in done])

        async def renewed(job: Job, client: httpx.AsyncClient) -> dict[str, str]:
            """New items as well: made before the carousel, they expired before it."""
            children = [await self.containers.new(job, client, p) for p in self._item_params(items)]
            for child in children:
                await self.containers.wait(client, job.account, child)
            return self._carousel_params(job, children)

        return steps + pair(prefix, "container", "ready", carousel, renewed)

    def _carousel_params(self, job: Job, children: list[str]) -> dict[str, str]:
        params = {"media_type": "CAROUSEL", "children": ",".join(children)}
        return {**params, self.text_field: job.text} if job.text else params

    async def publish(self, job: Job, client: httpx.AsyncClient) -> Published:
        container = final_container(job)
        if container is None:
            raise RuntimeError(f"delivery {job.delivery_id}: no container is ready to publish")
        path = f"/{graph_user(job.account)}/{self.publish_edge}"
        body = await self._call(client, job.account, "POST", path, data={"creation_id": container})
        media_id = answer_id(body, self.api.label)
        return Published(media_id, await self._permalink(job, client, media_id), raw=body)

    async def reconcile(self, job: Job, client: httpx.AsyncClient) -> ReconcileResult:
        container = final_container(job)
        if container is None:
            return NotPublished()
        field = self.api.status_field
        params = {"fields": f"id,{field}"}
        found = await self._call(client, job.account, "GET", f"/{container}", params=params)
        status = found.get(field)
        if status in ("FINISHED", "IN_PROGRESS", "ERROR", "EXPIRED"):
            return NotPublished()  # a container is published once, and not this one
        if status != "PUBLISHED":
            label = self.api.label
            return CannotTell(f"{label} gave container {container} the status {status!r}")
        return await self._find_post(job, client)

    async def _permalink(self, job: Job, client: httpx.AsyncClient, media_id: str) -> str:
        """The post's permalink; the profile's URL when the platform gives none (or fails to)."""
        params = {"fields": "id,permalink"}
        try:
            body = await self._call(client, job.account, "GET", f"/{media_id}", params=params)
        except PlatformError:
            body = {}
        if body.get("permalink"):
            return str(body["permalink"])
        return await self._profile_url(job, client)

    async def _find_post(self, job: Job, client: httpx.AsyncClient) -> ReconcileResult:
        """This delivery's post among the account's recent ones, matched on type and text."""
        fields, limit = self.listing
        params = {"fields": fields, "limit": limit}
        since = None
        if job.publishing_since is not None:
            since = job.publishing_since - RECONCILE_MARGIN
            params["since"] = str(int(since.timestamp()))
        wanted = self._listed_type(job)
        matches: list[dict[str, Any]] = []
        path = f"/{graph_user(job.account)}/{self.api.edge}"
        for _ in range(RECONCILE_PAGES):
            listing = await self._call(client, job.account, "GET", path, params=params)
            matches += [
                p for p in listing.get("data") or [] if self._is_ours(job, wanted, since, p)
            ]
            after = next_cursor(listing)
            if after is None:
                break
            params["after"] = after
        if len(matches) != 1:
            found = f"no {self.noun}" if not matches else f"{len(matches)} {self.noun}s"
            return CannotTell(f"its container is PUBLISHED, and {found} on the account match")
        post = matches[0]
        url = str(post.get("permalink") or "") or await self._found_url(job, client, post)
        return Published(str(post["id"]), url, raw=post)

    def _is_ours(
        self, job: Job, media_type: str, since: dt.datetime | None, post: dict[str, Any]
    ) -> bool:
        if post.get("media_type") not in (None, media_type):
            return False
        return comparable(job.text or "") == comparable(str(post.get(self.text_field) or ""))

    async def _found_url(self, job: Job, client: httpx.AsyncClient, post: dict[str, Any]) -> str:
        """The URL of a post found without its permalink."""
        return await self._profile_url(job, client)

    async def refresh(self, account: AccountAccess, client: httpx.AsyncClient) -> RefreshedTokens:
        label = self.api.label
        params = {"grant_type": self.grant_type, "access_token": access_token(account, label)}
        call = client.get(self.api_url + "/refresh_access_token", params=params)
        response = await answered(call, self._error)
        tokens = response_json(response)
        if response.is_success and isinstance(tokens, dict) and tokens.get("access_token"):
            return RefreshedTokens(str(tokens["access_token"]), None, expires_at(tokens))
        error = self._error(response)
        if error.kind in (ErrorKind.rate_limited, ErrorKind.server_error):
            raise error
        # Expired, revoked, or too young to be refreshed: only the user can help.
        message = f"{label} refused to refresh the token ({error.message}) Connect it again."
        raise PlatformError(
            ErrorKind.reauth_required,
            "refresh_refused",
            message,
            http_status=response.status_code,
            raw=error.raw,
        )

    async def _call(
        self,
        client: httpx.AsyncClient,
        account: AccountAccess,
        method: str,
        path: str,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One Graph call, the token as a Bearer header; its JSON object."""
        headers = {"Authorization": f"Bearer {access_token(account, self.api.label)}"}
        call = client.request(method, self.base_url + path, headers=headers, **kwargs)
        return await json_answer(call, self._error)


def post_items(job: Job) -> Items:
    """(IMAGE or VIDEO, URL) of each item, images first."""
    return [("IMAGE", url) for url in job.image_urls] + [("VIDEO", url) for url in job.video_urls]


def comparable(text: str) -> str:
    """Text as compared with what the platform lists: NFC, whitespace runs as one space."""
    return " ".join(unicodedata.normalize("NFC", text).split())
