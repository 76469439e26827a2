"""What the container fakes of Meta (Threads, Instagram) share around their state: the
caller's gate (version, token, usage header), injected faults, the sandbox `/_users` route,
a publish's accepted-then-delayed answer and the listing's page.

Each fake keeps what is its own: its paths, its checks, its own faults (`own_faults`) and how
it shows a container or a post.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from soku.sandbox.common import FaultFields, FaultQueue, public_base
from soku.sandbox.graph import (
    GraphError,
    access_token,
    fault_error,
    graph_answer,
    graph_fields,
    graph_params,
    invalid_parameter,
    page_cursors,
    usage_headers,
)
from soku.sandbox.graph_accounts import Token

# Faults a route finishes itself: the container is made (or read) and then fails.
CONTAINER_FAULTS = {"processing_failed": "ERROR", "container_expired": "EXPIRED"}
_VERSION = re.compile(r"^v\d+\.\d+$")
P = TypeVar("P")


class _Config(Protocol):
    @property
    def version(self) -> str | None: ...
    @property
    def latency_ms(self) -> int: ...
    @property
    def call_limit(self) -> int: ...
    @property
    def quota_total(self) -> int: ...
    @property
    def quota_duration(self) -> int: ...


class _Account(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def username(self) -> str: ...


U = TypeVar("U", bound=_Account, covariant=True)
UserT = TypeVar("UserT", bound=_Account)
F = TypeVar("F", bound=FaultFields)


class GraphState(Protocol[U, F]):
    """The part of a fake's state the shared code reads."""

    @property
    def config(self) -> _Config: ...
    @property
    def calls(self) -> Counter[str]: ...
    @property
    def user_calls(self) -> Counter[str]: ...
    @property
    def faults(self) -> FaultQueue[F]: ...
    def user_for_token(self, token: str) -> U: ...
    def add_user(self, username: str | None = None, user_id: str | None = None) -> U: ...
    def add_token(self, token: str, user_id: str, expires_in: float | None) -> None: ...
    @property
    def tokens(self) -> Mapping[str, Token]: ...
    def node_user(self, caller: Any, node: str, /) -> U: ...
    def refresh(self, grant_type: str | None, token: str, /) -> dict[str, Any]: ...
    def publish(self, user: Any, creation_id: str, /) -> Any: ...
    def quota_usage(self, user_id: str, /) -> int: ...


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=r"^[A-Za-z0-9_.]{1,30}$")
    user_id: str | None = Field(default=None, pattern=r"^[0-9]{1,20}$")
    access_token: str | None = None
    expires_in: float | None = Field(default=None, ge=0)  # 0: expired already


class GraphFake(Generic[UserT, F]):
    """What the routes share: gatekeeping, faults and URLs."""

    # Faults of the platform's own besides Graph's (`graph.GRAPH_FAULTS`).
    own_faults: dict[str, Callable[[], GraphError]] = {}

    def __init__(self, state: GraphState[UserT, F], public_url: str, media_origin: str) -> None:
        self.state = state
        self.public_url = public_url.rstrip("/")
        self.fetch_origin = media_origin  # media fetched only from there, when given

    def base_url(self, request: Request) -> str:
        return public_base(self.public_url, request)

    def check_version(self, version: str) -> None:
        wanted = self.state.config.version
        if (wanted is not None and version != wanted) or not _VERSION.match(version):
            raise GraphError(400, 2500, f"Unknown path components: /{version}")

    async def user(self, request: Request, params: dict[str, str]) -> UserT:
        """The caller: its token checked, its call counted in the X-App-Usage header."""
        await asyncio.sleep(self.state.config.latency_ms / 1000)
        user = self.state.user_for_token(access_token(request, params))
        self.state.user_calls[user.id] += 1
        used = self.state.user_calls[user.id]
        request.state.usage_headers = usage_headers(used, self.state.config.call_limit)
        return user

    async def fault(self, kind: str, user_id: str | None) -> F | None:
        """Counts the call and applies the next matching fault.

        Returns the fault when the route must finish applying it (a publish accepted before
        its answer is delayed, a container that fails); raises any other one.
        """
        self.state.calls[kind] += 1
        fault = self.state.faults.take(kind, user_id)
        if fault is None:
            return None
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.accept_then_delay is not None or fault.error_code in CONTAINER_FAULTS:
            return fault
        if fault.error_code in self.own_faults:
            raise self.own_faults[fault.error_code]()
        error = fault_error(fault)
        if error is not None:
            raise error
        return None


def user_route(app: FastAPI, state: GraphState[_Account, Any]) -> None:
    """`POST /_users`: a sandbox account by name, with a token when one is given."""

    @app.post("/_users", status_code=201)
    async def add_user(body: NewUser) -> dict[str, Any]:
        user = state.add_user(body.username, body.user_id)
        if body.access_token:
            state.add_token(body.access_token, user.id, body.expires_in)
        return {"id": user.id, "username": user.username}


def creation_id(params: dict[str, str]) -> str:
    """The container a publish names."""
    named = params.get("creation_id", "")
    if not named:
        raise invalid_parameter("(#100) The parameter creation_id is required")
    return named


def publish_route(app: FastAPI, fake: GraphFake[Any, Any], edge: str) -> None:
    """`POST /{version}/{node}/<edge>?creation_id=…`: a finished container published."""

    @app.post(f"/{{version}}/{{node}}/{edge}")
    async def publish(request: Request, version: str, node: str) -> JSONResponse:
        fake.check_version(version)
        params = await graph_params(request)
        user = fake.state.node_user(await fake.user(request, params), node)
        fault = await fake.fault("publish", user.id)
        post = fake.state.publish(user, creation_id(params))
        await finish_publish(fault)
        return graph_answer(request, {"id": post.id})


def limit_route(
    app: FastAPI, fake: GraphFake[Any, Any], edge: str, shown: set[str], more: dict[str, Any]
) -> None:
    """`GET /{version}/{node}/<edge>`: the posts of the last 24 h against the quota; `shown`,
    the fields given when none are asked, `more`, the platform's other (fixed) fields."""

    @app.get(f"/{{version}}/{{node}}/{edge}")
    async def publishing_limit(request: Request, version: str, node: str) -> JSONResponse:
        fake.check_version(version)
        params = dict(request.query_params)
        user = fake.state.node_user(await fake.user(request, params), node)
        await fake.fault("limit", user.id)
        config = fake.state.config
        row = {
            "quota_usage": fake.state.quota_usage(user.id),
            "config": {"quota_total": config.quota_total, "quota_duration": config.quota_duration},
            **more,
        }
        fields = graph_fields(params) or shown
        return graph_answer(request, {"data": [{k: v for k, v in row.items() if k in fields}]})


def refresh_handler(fake: GraphFake[Any, Any]) -> Callable[[Request], Awaitable[JSONResponse]]:
    """`GET /refresh_access_token`: a long-lived token for an unexpired one."""

    async def refresh(request: Request) -> JSONResponse:
        params = dict(request.query_params)
        token = access_token(request, params)
        known = fake.state.tokens.get(token)
        await fake.fault("refresh", known.user_id if known else None)
        return JSONResponse(fake.state.refresh(params.get("grant_type"), token))

    return refresh


async def finish_publish(fault: FaultFields | None) -> None:
    """A publish accepted, then answered late (or with the fault's error)."""
    if fault is not None and fault.accept_then_delay is not None:
        await asyncio.sleep(fault.accept_then_delay)
        error = fault_error(fault)
        if error is not None:
            raise error


def page_limit(params: dict[str, str]) -> int:
    limit = params.get("limit", "25")
    if not limit.isdigit() or int(limit) > 100:
        raise invalid_parameter("(#100) Param limit must be a number from 0 to 100")
    return int(limit)


def page_answer(
    request: Request,
    params: dict[str, str],
    posts: Sequence[P],
    start: int,
    limit: int,
    view: Callable[[P], dict[str, Any]],
) -> JSONResponse:
    """A page of a listing from `start`, with its cursors and the next page's URL."""
    page = posts[start : start + limit]
    body: dict[str, Any] = {"data": [view(post) for post in page]}
    if page:
        cursors = page_cursors(start, len(page))
        body["paging"] = {"cursors": cursors}
        if start + len(page) < len(posts):
            query = {**params, "after": cursors["after"]}
            body["paging"]["next"] = str(request.url.include_query_params(**query))
    return graph_answer(request, body)


class NodeState(Protocol):
    """What `GET /{version}/{node}` reads of a fake's state."""

    @property
    def users(self) -> Mapping[str, Any]: ...
    @property
    def containers(self) -> Mapping[str, Any]: ...
    def find_post(self, post_id: str, /) -> Any: ...
    def node_user(self, caller: Any, node: str, /) -> Any: ...
    def refresh_status(self, container: Any, poll: bool = False, /) -> None: ...
    def fail(self, container: Any, status: str, reason: str | None, /) -> None: ...


def fail_on_fault(state: NodeState, container: Any, fault: Any) -> None:
    """A container fault taken by the route: the container ends in ERROR or EXPIRED."""
    if fault is not None and fault.error_code in CONTAINER_FAULTS:
        state.fail(container, CONTAINER_FAULTS[fault.error_code], fault.container_error)


def node_route(
    app: FastAPI,
    fake: GraphFake[Any, Any],
    state: NodeState,
    container_view: Callable[[Any, set[str]], dict[str, Any]],
    post_view: Callable[[Any, set[str], str], dict[str, Any]],
    unsupported: Callable[[str, str], GraphError],
) -> None:
    """`GET /{version}/{node}`: the account (`me`), a container (its status) or a post."""

    @app.get("/{version}/{node}")
    async def node(request: Request, version: str, node: str) -> JSONResponse:
        fake.check_version(version)
        params = dict(request.query_params)
        caller, fields = await fake.user(request, params), graph_fields(params)
        container, post = state.containers.get(node), state.find_post(node)
        if node == "me" or node in state.users:
            await fake.fault("me", caller.id)
            return graph_answer(request, state.node_user(caller, node).view(fields))
        if container is not None and container.user_id == caller.id:
            fail_on_fault(state, container, await fake.fault("status", caller.id))
            state.refresh_status(container, True)
            return graph_answer(request, container_view(container, fields))
        await fake.fault("media", caller.id)
        if post is None or post.user_id != caller.id:
            raise unsupported(node, "get")
        return graph_answer(request, post_view(post, fields, fake.base_url(request)))
