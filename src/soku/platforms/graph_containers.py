"""Media containers as Meta's Threads and Instagram APIs make them: the steps they share.

Both publish in two halves: a container per post (and per carousel item) is made with
`POST /{user}/<edge>`, read until its status is FINISHED, then published. Each container
is a pair of steps, `<name>` (made) and `<name>_ready` (waited for), whose results the
engine saves: `{"container_id", "created_at"}` and `{"container_id", "status"}`.

Unpublished containers expire after 24 h. A `_ready` step that finds its container EXPIRED
makes it again (with `renewed` when the container has children, which expired first); and
once a container of the latest round is older than `max_age`, the steps are listed again
with an `r<n>_` prefix, so a delivery held back for a day starts afresh. `final_container`
is the one of the latest round whose `ready` step is done.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from soku.platforms.connector import (
    AccountAccess,
    ErrorKind,
    Job,
    PlatformError,
    Step,
    StepFunction,
    current_round,
    round_of,
    round_prefix,
)

Params = Callable[[Job], dict[str, str]]
Renewed = Callable[[Job, httpx.AsyncClient], Awaitable[dict[str, str]]]
_NUMERIC_ID = re.compile(r"^[0-9]{1,25}$")


class GraphCall(Protocol):
    """A connector's own Graph call: its JSON object, or its error in our terms."""

    async def __call__(
        self,
        client: httpx.AsyncClient,
        account: AccountAccess,
        method: str,
        path: str,
        **kwargs: Any,
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ContainerApi:
    """Where a platform differs: its name, the edge containers are made on, the field that
    holds a container's status, the one that says why it failed, and its timings."""

    label: str  # "Threads"
    edge: str  # `POST /{user}/<edge>`
    status_field: str
    reason_field: str
    max_poll_wait: float  # seconds between two status reads, at most


class Containers:
    """The container steps of one connector, its calls made through `call`."""

    def __init__(
        self,
        api: ContainerApi,
        call: GraphCall,
        *,
        poll_interval: float,
        max_processing_wait: float,
        max_age: float,
    ) -> None:
        self.api, self.call = api, call
        self.poll_interval, self.max_processing_wait = poll_interval, max_processing_wait
        self.max_age = max_age

    def round(self, job: Job) -> int:
        """The round to use: the latest, or a new one when its containers are too old."""

        def too_old(result: dict[str, Any]) -> bool:
            made = result.get("created_at")
            return isinstance(made, int | float) and time.time() - made > self.max_age

        return current_round(job.checkpoint.get("steps", {}), too_old)

    def pair(
        self, prefix: str, create: str, ready: str, params: Params, renewed: Renewed | None = None
    ) -> list[Step]:
        return [
            Step(prefix + create, self._create(params)),
            Step(prefix + ready, self._ready(prefix + create, params, renewed)),
        ]

    def _create(self, params: Params) -> StepFunction:
        async def run(job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
            container = await self.new(job, client, params(job))
            return {"container_id": container, "created_at": time.time()}

        return run

    def _ready(self, create: str, params: Params, renewed: Renewed | None) -> StepFunction:
        async def run(job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
            container = str(step_result(job, create)["container_id"])
            status = await self.wait(client, job.account, container)
            if status == "EXPIRED":  # not published in time: made again, once
                fresh = await renewed(job, client) if renewed else params(job)
                container = await self.new(job, client, fresh)
                status = await self.wait(client, job.account, container)
            if status == "EXPIRED":
                message = f"{self.api.label} let container {container} expire before it was ready."
                raise PlatformError(ErrorKind.processing_failed, "container_expired", message)
            return {"container_id": container, "status": status}

        return run

    async def new(self, job: Job, client: httpx.AsyncClient, params: dict[str, str]) -> str:
        """A new container: its id."""
        path = f"/{graph_user(job.account)}/{self.api.edge}"
        body = await self.call(client, job.account, "POST", path, data=params)
        return answer_id(body, self.api.label)

    async def wait(self, client: httpx.AsyncClient, account: AccountAccess, container: str) -> str:
        """Reads the container's status until FINISHED (or PUBLISHED, EXPIRED); ERROR raises."""
        api = self.api
        deadline, delay = time.monotonic() + self.max_processing_wait, self.poll_interval
        params = {"fields": f"id,{api.status_field},{api.reason_field}"}
        while True:
            body = await self.call(client, account, "GET", f"/{container}", params=params)
            status = body.get(api.status_field)
            if status in ("FINISHED", "PUBLISHED", "EXPIRED"):
                return str(status)
            if status == "ERROR":
                reason = body.get(api.reason_field) or "UNKNOWN"
                message = f"{api.label} could not process container {container}: {reason}."
                raise PlatformError(
                    ErrorKind.processing_failed, "processing_failed", message, raw=body
                )
            if status != "IN_PROGRESS":
                message = f"{api.label} gave container {container} the status {status!r}."
                raise PlatformError(ErrorKind.server_error, "unreadable_answer", message, raw=body)
            if time.monotonic() + delay > deadline:
                message = f"{api.label} was still processing container {container}; checking later."
                raise PlatformError(
                    ErrorKind.server_error, "media_still_processing", message, retry_after=delay
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, api.max_poll_wait)


def final_container(job: Job) -> str | None:
    """The container of the latest round whose `ready` step is done."""
    done = job.checkpoint.get("steps", {})
    rounds = [name for name in done if name == round_prefix(round_of(name)) + "ready"]
    if not rounds:
        return None
    result = done[max(rounds, key=round_of)]
    return str(result["container_id"]) if isinstance(result, dict) else None


def step_result(job: Job, name: str) -> dict[str, Any]:
    result = job.checkpoint.get("steps", {}).get(name)
    if not isinstance(result, dict):
        raise RuntimeError(f"delivery {job.delivery_id}: step {name} has no result yet")
    return result


def fixed(params: dict[str, str]) -> Params:
    return lambda _job: params


def graph_user(account: AccountAccess) -> str:
    """The account's user id, or `me` (which both APIs take too) when it is not numeric."""
    user_id = account.platform_user_id or ""
    return user_id if _NUMERIC_ID.match(user_id) else "me"


def answer_id(body: dict[str, Any], label: str) -> str:
    if not body.get("id"):
        message = f"{label} answered without the expected `id`."
        raise PlatformError(ErrorKind.server_error, "unreadable_answer", message, raw=body)
    return str(body["id"])
