"""What the memories of the Graph container fakes (Threads, Instagram) share: their common
knobs and faults, containers and published posts, a container's way from IN_PROGRESS to
FINISHED (or ERROR, EXPIRED), a publish against the 24-hour quota, and the listing's window.

Every method is synchronous, so under asyncio no two requests interleave inside one: no lock.
A platform's state says what differs: where its ids start, the first letter of its shortcodes,
which media types are videos, why a fetched video fails, and how it refuses to publish a
container that is not FINISHED.
"""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
import string
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field

from soku.sandbox.common import FaultFields, FaultQueue, Fetched
from soku.sandbox.consent import CodeBook
from soku.sandbox.graph import GraphError, in_window, invalid_parameter
from soku.sandbox.graph_accounts import GraphAccounts, Token, unsupported

CallKind = Literal[
    "create", "status", "publish", "media", "list", "limit", "me", "refresh", "token"
]
CALL_KINDS: tuple[CallKind, ...] = get_args(CallKind)
# A container's status (Instagram's `status_code`, Threads' `status`).
STATUSES = ("IN_PROGRESS", "FINISHED", "PUBLISHED", "ERROR", "EXPIRED")
_SHORTCODE = string.ascii_letters + string.digits + "_-"


class GraphFaultSpec(FaultFields):
    """One injected fault, as posted to `/_faults`.

    `error_code` names a Graph error (`soku.sandbox.graph.GRAPH_FAULTS`, plus the fake's own
    faults), or on `create` and `status` `processing_failed` (the container ends in ERROR,
    `container_error` the reason it gives) or `container_expired` (it ends EXPIRED).
    """

    on: Literal[
        "create", "status", "publish", "media", "list", "limit", "me", "refresh", "token", "any"
    ]  # fmt: skip
    container_error: str


class GraphConfig(BaseModel):
    """The knobs both fakes have; each gives `quota_total` and `code_lifetime_secs` its own
    default."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(default=0, ge=0)
    version: str | None = Field(default=None, pattern=r"^v\d+\.\d+$")  # None: any vN.N
    video_polls: int = Field(default=1, ge=0)  # status reads IN_PROGRESS before FINISHED
    image_polls: int = Field(default=0, ge=0)  # the same for any other container
    container_lifetime_secs: int = Field(default=86400, ge=0)  # then EXPIRED (24 h)
    quota_total: int = Field(default=50, ge=0)  # posts per `quota_duration`
    quota_duration: int = Field(default=86400, ge=1)
    fetch_media: bool = True  # GET every image_url / video_url, as the platform does
    token_lifetime_secs: int = Field(default=5183944, ge=0)  # a long-lived token: ~60 days
    refresh_min_age_secs: int = Field(default=0, ge=0)  # the platforms: 86400
    call_limit: int = Field(default=48000, ge=1)  # for X-App-Usage
    short_token_lifetime_secs: int = Field(default=3600, ge=0)  # a code's token: 1 h
    code_lifetime_secs: float = Field(default=3600, ge=0)  # a code
    client_secret: str | None = None  # when set, the token endpoints want this app secret


@dataclass
class Container:
    id: str
    user_id: str
    media_type: str
    text: str  # Instagram's caption
    url: str | None
    is_carousel_item: bool
    children: list[str]
    created_at: float
    fetched: Fetched | None = None
    status: str = "IN_PROGRESS"  # one of STATUSES
    reason: str | None = None  # why it is in ERROR (Instagram's `status`, Threads' `error_message`)
    polls: int = 0
    media_id: str | None = None


@dataclass
class Post:
    id: str
    user_id: str
    container_id: str
    shortcode: str
    created_at: dt.datetime


class Account(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def username(self) -> str: ...
    def view(self, fields: set[str]) -> dict[str, Any]: ...


UserT = TypeVar("UserT", bound=Account)
ConfigT = TypeVar("ConfigT", bound=GraphConfig)
FaultT = TypeVar("FaultT", bound=GraphFaultSpec)


@dataclass
class GraphState(GraphAccounts[UserT], Generic[UserT, ConfigT, FaultT]):
    """All a fake knows. Ids keep counting across resets, so none is reused."""

    config: ConfigT
    users: dict[str, UserT] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    containers: dict[str, Container] = field(default_factory=dict)
    posts: list[Post] = field(default_factory=list)
    faults: FaultQueue[FaultT] = field(default_factory=FaultQueue)
    calls: Counter[str] = field(default_factory=Counter)
    user_calls: Counter[str] = field(default_factory=Counter)
    codes: CodeBook = field(default_factory=CodeBook)
    short_tokens: set[str] = field(default_factory=set)  # issued for a code, to be exchanged
    _ids: itertools.count[int] = field(init=False, repr=False)

    first_id: ClassVar[int]  # ids count from here, plus a random offset
    shortcode_letter: ClassVar[str]  # the first letter of a post's shortcode
    video_types: ClassVar[tuple[str, ...]]  # the media types processed as videos

    def __post_init__(self) -> None:
        self._ids = itertools.count(self.first_id + secrets.randbelow(10**9))

    def reset(self) -> None:
        for store in (self.users, self.tokens, self.containers):
            store.clear()
        for other in (self.posts, self.faults, self.calls, self.user_calls, self.codes,
                      self.short_tokens):  # fmt: skip
            other.clear()
        self.config = type(self.config)()

    def new_id(self) -> str:
        return str(next(self._ids) * 10 + secrets.randbelow(10))

    # --- containers ------------------------------------------------------------------------

    def owned(self, user: UserT, container_id: str) -> Container:
        found = self.containers.get(container_id)
        if found is None or found.user_id != user.id:
            raise unsupported(container_id, "get")
        return found

    def refresh_status(self, container: Container, poll: bool = False) -> None:
        """Moves a container on: one status read counts as one poll while IN_PROGRESS."""
        age = time.time() - container.created_at
        if container.status in ("IN_PROGRESS", "FINISHED") and (
            age >= self.config.container_lifetime_secs
        ):
            container.status = "EXPIRED"
            return
        if container.status != "IN_PROGRESS":
            return
        video = container.media_type in self.video_types
        if container.polls < (self.config.video_polls if video else self.config.image_polls):
            container.polls += 1 if poll else 0
            return
        fetched = container.fetched
        failed = self.video_failure(fetched) if video and fetched is not None else None
        if failed is not None:
            self.fail(container, "ERROR", failed)
        else:
            container.status = "FINISHED"

    def video_failure(self, fetched: Fetched) -> str | None:
        """Why a fetched video ends in ERROR, in the platform's words; None: it is fine."""
        raise NotImplementedError

    def fail(self, container: Container, status: str, reason: str | None) -> None:
        container.status = status
        container.reason = reason if status == "ERROR" else None

    # --- publishing --------------------------------------------------------------------------

    def quota_usage(self, user_id: str) -> int:
        since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.config.quota_duration)
        return sum(1 for post in self.posts if post.user_id == user_id and post.created_at > since)

    def publish(self, user: UserT, creation_id: str) -> Post:
        container = self.owned(user, creation_id)
        self.refresh_status(container)
        if container.is_carousel_item:
            raise invalid_parameter("(#100) A carousel item is published through its carousel")
        if container.status == "IN_PROGRESS":
            # Instagram's "media not ready"; not confirmed for Threads.
            raise GraphError(400, 9007, "Media ID is not available", 2207027)
        if container.status != "FINISHED":
            raise self.not_publishable(container)
        if self.quota_usage(user.id) >= self.config.quota_total:
            raise publishing_limit()
        post = Post(self.new_id(), user.id, container.id, self.shortcode(), dt.datetime.now(dt.UTC))
        container.status, container.media_id = "PUBLISHED", post.id
        self.posts.append(post)
        return post

    def not_publishable(self, container: Container) -> GraphError:
        """The refusal of a container in ERROR, EXPIRED or PUBLISHED."""
        raise NotImplementedError

    def shortcode(self) -> str:
        return self.shortcode_letter + "".join(secrets.choice(_SHORTCODE) for _ in range(10))

    def find_post(self, post_id: str) -> Post | None:
        return next((post for post in self.posts if post.id == post_id), None)

    def by_shortcode(self, code: str) -> Post | None:
        return next((post for post in self.posts if post.shortcode == code), None)

    def recent(self, user_id: str, since: float | None, until: float | None) -> list[Post]:
        """The account's posts, newest first, within [since, until] (Unix seconds)."""
        posts = reversed(self.posts)
        return [p for p in posts if p.user_id == user_id and in_window(p.created_at, since, until)]


def publishing_limit() -> GraphError:
    """Instagram's 24-hour publishing limit (9 / 2207042); not confirmed for Threads."""
    message = "The user has reached the maximum number of posts allowed for 24 hours"
    return GraphError(400, 9, message, 2207042)
