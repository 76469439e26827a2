"""What the container fakes of Meta (Threads, Instagram) share around their state: the app
and its routes, the caller's gate (version, token, usage header), injected faults, the sandbox
`/_users` and `/_inspect` routes, a publish's accepted-then-delayed answer and the listing.

Each fake keeps what is its own (a `GraphFake` subclass): its edges, how it checks and makes a
container, its own faults (`own_faults`) and routes, and how it shows a container or a post.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from soku.sandbox.common import FaultFields, control_routes, fake_app, public_base
from soku.sandbox.graph import (
    GraphError,
    access_token,
    fault_error,
    graph_answer,
    graph_error_handlers,
    graph_fields,
    graph_params,
    invalid_parameter,
    page_cursors,
    page_start,
    time_param,
    usage_headers,
)
from soku.sandbox.graph_accounts import unsupported
from soku.sandbox.graph_state import (
    CALL_KINDS,
    ConfigT,
    Container,
    FaultT,
    GraphFaultSpec,
    GraphState,
    Post,
    UserT,
)

# Faults a route finishes itself: the container is made (or read) and then fails.
CONTAINER_FAULTS = {"processing_failed": "ERROR", "container_expired": "EXPIRED"}
_VERSION = re.compile(r"^v\d+\.\d+$")
P = TypeVar("P")


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=r"^[A-Za-z0-9_.]{1,30}$")
    user_id: str | None = Field(default=None, pattern=r"^[0-9]{1,20}$")
    access_token: str | None = None
    expires_in: float | None = Field(default=None, ge=0)  # 0: expired already


class GraphFake(Generic[UserT, ConfigT, FaultT]):
    """One fake: what its routes share (gatekeeping, faults, URLs) and what is its own."""

    title: ClassVar[str]  # of the app
    fault_model: ClassVar[type[FaultFields]]  # what `/_faults` takes
    edge: ClassVar[str]  # `POST /{node}/<edge>` makes a container, `GET` lists the posts
    publish_edge: ClassVar[str]  # `POST /{node}/<publish_edge>` publishes one
    # How `/_inspect/containers` names a container's status, its reason and its text.
    container_names: ClassVar[tuple[str, str, str]]
    earliest_since: ClassVar[int | None] = None  # the listing's lowest `since`, if any
    # Faults of the platform's own besides Graph's (`graph.GRAPH_FAULTS`).
    own_faults: ClassVar[dict[str, Callable[[], GraphError]]] = {}

    def __init__(
        self, state: GraphState[UserT, ConfigT, FaultT], public_url: str, media_origin: str
    ) -> None:
        self.state = state
        self.public_url = public_url.rstrip("/")
        self.fetch_origin = media_origin  # media fetched only from there, when given

    # --- what a platform says for itself ---------------------------------------------------

    async def make(self, user: UserT, params: dict[str, str]) -> Container:
        """A new container, checked as the platform checks it (and its media fetched)."""
        raise NotImplementedError

    def own_routes(self, app: FastAPI) -> None:
        """The sign-in, the token refresh, the publishing limit and the public pages."""
        raise NotImplementedError

    def container_view(self, container: Container, fields: set[str]) -> dict[str, Any]:
        raise NotImplementedError

    def post_view(self, post: Post, fields: set[str], base: str) -> dict[str, Any]:
        raise NotImplementedError

    def inspected(self, post: Post, base: str) -> dict[str, Any]:
        """A post as `/_inspect/posts` shows it."""
        raise NotImplementedError

    # --- what the routes share -------------------------------------------------------------

    def app(self) -> FastAPI:
        """The fake as an ASGI app."""
        app = fake_app(self.title)
        app.state.fake = self.state
        graph_error_handlers(app)
        control_routes(app, self.state, self.fault_model, CALL_KINDS)
        _sandbox_routes(app, self)
        self.own_routes(app)
        _container_routes(app, self)
        _listing_route(app, self)
        _node_route(app, self)  # last: `/{version}/{id}` is the broadest path
        return app

    def base_url(self, request: Request) -> str:
        return public_base(self.public_url, request)

    def check_version(self, version: str) -> None:
        wanted = self.state.config.version
        if (wanted is not None and version != wanted) or not _VERSION.match(version):
            raise GraphError(400, 2500, f"Unknown path components: /{version}")

    async def gate(
        self, request: Request, version: str, node: str, kind: str
    ) -> tuple[UserT, dict[str, str], FaultT | None]:
        """A `/{version}/{node}/…` call: the account it acts for, its parameters (query, form or
        JSON) and the fault it takes (as `fault`)."""
        self.check_version(version)
        params = await graph_params(request)
        user = self.state.node_user(await self.user(request, params), node)
        return user, params, await self.fault(kind, user.id)

    async def user(self, request: Request, params: dict[str, str]) -> UserT:
        """The caller: its token checked, its call counted in the X-App-Usage header."""
        await asyncio.sleep(self.state.config.latency_ms / 1000)
        user = self.state.user_for_token(access_token(request, params))
        self.state.user_calls[user.id] += 1
        used = self.state.user_calls[user.id]
        request.state.usage_headers = usage_headers(used, self.state.config.call_limit)
        return user

    async def fault(self, kind: str, user_id: str | None) -> FaultT | None:
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


def _sandbox_routes(app: FastAPI, fake: GraphFake[Any, Any, Any]) -> None:
    """`POST /_users` (a sandbox account by name, with a token when one is given),
    `/_inspect/posts` and `/_inspect/containers`."""
    state = fake.state

    @app.post("/_users", status_code=201)
    async def add_user(body: NewUser) -> dict[str, Any]:
        user = state.add_user(body.username, body.user_id)
        if body.access_token:
            state.add_token(body.access_token, user.id, body.expires_in)
        return {"id": user.id, "username": user.username}

    @app.get("/_inspect/posts")
    async def posts(request: Request) -> dict[str, Any]:
        base = fake.base_url(request)
        return {"posts": [fake.inspected(post, base) for post in state.posts]}

    @app.get("/_inspect/containers")
    async def containers() -> dict[str, Any]:
        status, reason, text = fake.container_names
        return {"containers": [
            {"id": c.id, "user_id": c.user_id, "media_type": c.media_type, status: c.status,
             reason: c.reason, text: c.text, "url": c.url, "children": c.children,
             "is_carousel_item": c.is_carousel_item, "media_id": c.media_id}
            for c in state.containers.values()
        ]}  # fmt: skip


def _container_routes(app: FastAPI, fake: GraphFake[Any, Any, Any]) -> None:
    """`POST /{version}/{node}/<edge>`: a new container; and its publish."""

    @app.post(f"/{{version}}/{{node}}/{fake.edge}")
    async def create(request: Request, version: str, node: str) -> JSONResponse:
        user, params, fault = await fake.gate(request, version, node, "create")
        container = await fake.make(user, params)
        fail_on_fault(fake.state, container, fault)
        fake.state.refresh_status(container)
        return graph_answer(request, {"id": container.id})

    _publish_route(app, fake)


def _listing_route(app: FastAPI, fake: GraphFake[Any, Any, Any]) -> None:
    """`GET /{version}/{node}/<edge>`: the account's posts, newest first (since / until /
    cursors)."""

    @app.get(f"/{{version}}/{{node}}/{fake.edge}")
    async def listing(request: Request, version: str, node: str) -> JSONResponse:
        user, params, _ = await fake.gate(request, version, node, "list")
        limit = page_limit(params)
        since = time_param(params.get("since"), "since")
        until = time_param(params.get("until"), "until")
        earliest = fake.earliest_since
        if earliest is not None and since is not None and since < earliest:
            raise invalid_parameter(f"(#100) Param since must be at least {earliest}")
        posts = fake.state.recent(user.id, since, until)
        start = page_start(params.get("after"))
        base, fields = fake.base_url(request), graph_fields(params)
        return page_answer(
            request, params, posts, start, limit, lambda post: fake.post_view(post, fields, base)
        )


def creation_id(params: dict[str, str]) -> str:
    """The container a publish names."""
    named = params.get("creation_id", "")
    if not named:
        raise invalid_parameter("(#100) The parameter creation_id is required")
    return named


def _publish_route(app: FastAPI, fake: GraphFake[Any, Any, Any]) -> None:
    """`POST /{version}/{node}/<publish_edge>?creation_id=…`: a finished container published."""

    @app.post(f"/{{version}}/{{node}}/{fake.publish_edge}")
    async def publish(request: Request, version: str, node: str) -> JSONResponse:
        user, params, fault = await fake.gate(request, version, node, "publish")
        post = fake.state.publish(user, creation_id(params))
        await finish_publish(fault)
        return graph_answer(request, {"id": post.id})


def limit_route(
    app: FastAPI, fake: GraphFake[Any, Any, Any], edge: str, shown: set[str], more: dict[str, Any]
) -> None:
    """`GET /{version}/{node}/<edge>`: the posts of the last 24 h against the quota; `shown`,
    the fields given when none are asked, `more`, the platform's other (fixed) fields."""

    @app.get(f"/{{version}}/{{node}}/{edge}")
    async def publishing_limit(request: Request, version: str, node: str) -> JSONResponse:
        user, params, _ = await fake.gate(request, version, node, "limit")
        config = fake.state.config
        row = {
            "quota_usage": fake.state.quota_usage(user.id),
            "config": {"quota_total": config.quota_total, "quota_duration": config.quota_duration},
            **more,
        }
        fields = graph_fields(params) or shown
        return graph_answer(request, {"data": [{k: v for k, v in row.items() if k in fields}]})


def refresh_handler(fake: GraphFake[Any, Any, Any]) -> Callable[[Request], Awaitable[JSONResponse]]:
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


def fail_on_fault(
    state: GraphState[Any, Any, Any], container: Container, fault: GraphFaultSpec | None
) -> None:
    """A container fault taken by the route: the container ends in ERROR or EXPIRED."""
    if fault is not None and fault.error_code in CONTAINER_FAULTS:
        state.fail(container, CONTAINER_FAULTS[fault.error_code], fault.container_error)


def _node_route(app: FastAPI, fake: GraphFake[Any, Any, Any]) -> None:
    """`GET /{version}/{node}`: the account (`me`), a container (its status) or a post."""
    state = fake.state

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
            return graph_answer(request, fake.container_view(container, fields))
        await fake.fault("media", caller.id)
        if post is None or post.user_id != caller.id:
            raise unsupported(node, "get")
        return graph_answer(request, fake.post_view(post, fields, fake.base_url(request)))
