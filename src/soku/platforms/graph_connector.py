"""What the Graph container connectors (Threads, Instagram) share: their steps, publish,
reconcile's first half, the token refresh and the Graph call.

A platform names its edges and fields (`api`, `publish_edge`, `grant_type`, `text_field`) and
keeps what is its own: the parameters of a single container and of a carousel's items, the
permalink it falls back to, and how it finds a published post again.
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
from soku.platforms.meta_errors import graph_error

Items = list[tuple[str, str]]


class GraphConnector:
    """A connector that publishes through Graph media containers."""

    api: ContainerApi
    publish_edge: str  # `POST /{user}/<publish_edge>`
    grant_type: str  # of `GET /refresh_access_token`
    text_field: str  # the container parameter that holds the post's text

    def __init__(
        self,
        api_url: str,
        *,
        version: str,
        web_url: str,
        poll_interval: float,
        max_processing_wait: float,
        container_max_age: float,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.base_url = f"{self.api_url}/{version.strip('/')}"
        self.web_url = web_url.rstrip("/")
        self.containers = Containers(
            self.api,
            self._call,
            poll_interval=poll_interval,
            max_processing_wait=max_processing_wait,
            max_age=container_max_age,
        )

    # --- what a platform says for itself ---------------------------------------------------

    def _single_params(self, job: Job, items: Items) -> dict[str, str]:
        raise NotImplementedError

    def _item_params(self, items: Items) -> list[dict[str, str]]:
        raise NotImplementedError

    async def _permalink(self, job: Job, client: httpx.AsyncClient, media_id: str) -> str:
        raise NotImplementedError

    async def _find_post(self, job: Job, client: httpx.AsyncClient) -> ReconcileResult:
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

    async def refresh(self, account: AccountAccess, client: httpx.AsyncClient) -> RefreshedTokens:
        label = self.api.label
        params = {"grant_type": self.grant_type, "access_token": access_token(account, label)}
        try:
            response = await client.get(self.api_url + "/refresh_access_token", params=params)
        except httpx.HTTPError as exc:
            raise self._error(exc) from exc
        tokens = response_json(response)
        if response.is_success and isinstance(tokens, dict) and tokens.get("access_token"):
            return RefreshedTokens(str(tokens["access_token"]), None, _expiry(tokens))
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
        try:
            response = await client.request(method, self.base_url + path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise self._error(exc) from exc
        body = response_json(response)
        if response.is_success and isinstance(body, dict):
            return body
        raise self._error(response)


def post_items(job: Job) -> Items:
    """(IMAGE or VIDEO, URL) of each item, images first."""
    return [("IMAGE", url) for url in job.image_urls] + [("VIDEO", url) for url in job.video_urls]


def comparable(text: str) -> str:
    """Text as compared with what the platform lists: NFC, whitespace runs as one space."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def _expiry(tokens: dict[str, Any]) -> dt.datetime | None:
    seconds = tokens.get("expires_in")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return None
