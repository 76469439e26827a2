"""The Instagram fake's memory: accounts and tokens, containers, published media, faults.

Every method is synchronous, so under asyncio no two requests interleave inside one: no lock.
Errors are Graph errors (`soku.sandbox.graph`) with the codes and subcodes of Instagram's
error table (instagram.md, "Error model"); the few it does not give are marked "not
confirmed". Numbers the platform doc leaves open or gives twice are `FakeConfig` knobs.
"""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
import string
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from soku.sandbox.common import FaultFields, FaultQueue, Fetched
from soku.sandbox.consent import CodeBook
from soku.sandbox.graph import GraphError, invalid_parameter
from soku.sandbox.graph_accounts import GraphAccounts, Token, unsupported

CallKind = Literal[
    "create", "status", "publish", "media", "list", "limit", "me", "refresh", "token"
]
CALL_KINDS: tuple[CallKind, ...] = get_args(CallKind)
# Container `status_code` values (IG container reference).
STATUS_CODES = ("IN_PROGRESS", "FINISHED", "PUBLISHED", "ERROR", "EXPIRED")
# What the media listing calls each kind of container once published (a reel is a VIDEO).
LISTED_TYPES = {"IMAGE": "IMAGE", "REELS": "VIDEO", "VIDEO": "VIDEO",
                "CAROUSEL": "CAROUSEL_ALBUM", "STORIES": "IMAGE"}  # fmt: skip
PRODUCT_TYPES = {"REELS": "REELS", "STORIES": "STORY"}
_SHORTCODE = string.ascii_letters + string.digits + "_-"


class FaultSpec(FaultFields):
    """One injected fault, as posted to `/_faults`.

    `error_code` names a Graph error (`soku.sandbox.graph.GRAPH_FAULTS`, plus
    `publishing_limit` and `restricted`), or on `create` and `status` `processing_failed`
    (the container ends in ERROR, `container_error` its `status`) or `container_expired`.
    """

    on: Literal[
        "create", "status", "publish", "media", "list", "limit", "me", "refresh", "token", "any"
    ]  # fmt: skip
    container_error: str = "Error: 2207026"  # the unsupported-video subcode


class FakeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(default=0, ge=0)
    version: str | None = Field(default=None, pattern=r"^v\d+\.\d+$")  # None: any vN.N
    video_polls: int = Field(default=1, ge=0)  # status reads IN_PROGRESS before FINISHED
    image_polls: int = Field(default=0, ge=0)  # the same for images and carousels
    container_lifetime_secs: int = Field(default=86400, ge=0)  # then EXPIRED (24 h)
    containers_per_day: int = Field(default=400, ge=0)  # per account, rolling 24 h
    # (U) 50 in the doc's example and the carousel section, 100 in its publishing section
    quota_total: int = Field(default=50, ge=0)
    quota_duration: int = Field(default=86400, ge=1)
    fetch_media: bool = True  # GET every image_url / video_url, as Instagram does
    max_caption_length: int = Field(default=2200, ge=1)
    max_hashtags: int = Field(default=30, ge=0)  # (U) one third-party page says 5
    max_mentions: int = Field(default=20, ge=0)
    max_carousel_items: int = Field(default=10, ge=2)
    max_image_bytes: int = Field(default=8 * 1024 * 1024, ge=1)
    max_video_bytes: int = Field(default=300 * 1024 * 1024, ge=1)  # (U) 300 MB or 1 GB
    jpeg_only: bool = True
    min_aspect_ratio: float = Field(default=0.8, gt=0)  # 4:5
    max_aspect_ratio: float = Field(default=1.91, gt=0)
    token_lifetime_secs: int = Field(default=5183944, ge=0)  # a long-lived token: ~60 days
    refresh_min_age_secs: int = Field(default=0, ge=0)  # Instagram: 86400
    call_limit: int = Field(default=48000, ge=1)  # for X-App-Usage
    short_token_lifetime_secs: int = Field(default=3600, ge=0)  # a code's token: 1 h
    code_lifetime_secs: float = Field(default=3600, ge=0)  # a code: 1 h
    token_answer: Literal["nested", "flat"] = "nested"  # noqa: S105 (U) both are seen
    client_secret: str | None = None  # when set, the token endpoints want this app secret


@dataclass
class User:
    id: str
    username: str

    def view(self, fields: set[str]) -> dict[str, Any]:
        shown = {"id": self.id, "user_id": self.id, "username": self.username,
                 "account_type": "BUSINESS"}  # fmt: skip
        return {key: value for key, value in shown.items() if key == "id" or key in fields}


@dataclass
class Container:
    id: str
    user_id: str
    media_type: str  # IMAGE | REELS | VIDEO (a carousel item) | CAROUSEL | STORIES
    caption: str
    url: str | None
    is_carousel_item: bool
    children: list[str]
    created_at: float
    fetched: Fetched | None = None
    status_code: str = "IN_PROGRESS"
    status: str | None = None  # the error, when ERROR
    polls: int = 0
    media_id: str | None = None


@dataclass
class Post:
    id: str
    user_id: str
    container_id: str
    shortcode: str
    created_at: dt.datetime


@dataclass
class FakeState(GraphAccounts[User]):
    """All the fake knows. Ids keep counting across resets, so none is reused."""

    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    containers: dict[str, Container] = field(default_factory=dict)
    posts: list[Post] = field(default_factory=list)
    faults: FaultQueue[FaultSpec] = field(default_factory=FaultQueue)
    config: FakeConfig = field(default_factory=FakeConfig)
    calls: Counter[str] = field(default_factory=Counter)
    user_calls: Counter[str] = field(default_factory=Counter)
    codes: CodeBook = field(default_factory=CodeBook)
    short_tokens: set[str] = field(default_factory=set)  # issued for a code, to be exchanged
    issued_prefix = "IGAA"
    grant_type = "ig_refresh_token"
    _ids: itertools.count[int] = field(
        default_factory=lambda: itertools.count(17_900_000_000_000_000 + secrets.randbelow(10**9))
    )

    def reset(self) -> None:
        for store in (self.users, self.tokens, self.containers):
            store.clear()
        for other in (self.posts, self.faults, self.calls, self.user_calls, self.codes,
                      self.short_tokens):  # fmt: skip
            other.clear()
        self.config = FakeConfig()

    def new_id(self) -> str:
        return str(next(self._ids) * 10 + secrets.randbelow(10))

    # --- accounts and tokens -----------------------------------------------------------------

    def add_user(self, username: str | None = None, user_id: str | None = None) -> User:
        user_id = user_id or self.new_id()
        user = self.users[user_id] = User(user_id, username or f"sandbox_{user_id[-6:]}")
        return user

    # --- containers ------------------------------------------------------------------------

    def add_container(self, container: Container) -> Container:
        day_ago = time.time() - 86400
        made = sum(1 for c in self.containers.values()
                   if c.user_id == container.user_id and c.created_at > day_ago)  # fmt: skip
        if made >= self.config.containers_per_day:
            # Not confirmed: the code for the 400-containers limit.
            raise GraphError(400, 9, "(#9) Container limit reached for the last 24 hours")
        self.containers[container.id] = container
        return container

    def carousel_children(self, user: User, kids: list[str]) -> list[Container]:
        if not 2 <= len(kids) <= self.config.max_carousel_items:
            message = f"The carousel must have 2 to {self.config.max_carousel_items} children"
            raise invalid_parameter(f"(#100) {message}", 2207028)
        children = [self.owned(user, kid) for kid in kids]
        for child in children:
            self.refresh_status(child)
            if not child.is_carousel_item:
                raise invalid_parameter(f"(#100) Child {child.id} is not a carousel item")
            if child.status_code != "FINISHED":
                # Not confirmed: the refusal of an unfinished child.
                raise GraphError(400, 9007, "Media ID is not available", 2207027)
        return children

    def owned(self, user: User, container_id: str) -> Container:
        found = self.containers.get(container_id)
        if found is None or found.user_id != user.id:
            raise unsupported(container_id, "get")
        return found

    def refresh_status(self, container: Container, poll: bool = False) -> None:
        """Moves a container on: one status read counts as one poll while IN_PROGRESS."""
        age = time.time() - container.created_at
        if container.status_code in ("IN_PROGRESS", "FINISHED") and (
            age >= self.config.container_lifetime_secs
        ):
            container.status_code = "EXPIRED"
            return
        if container.status_code != "IN_PROGRESS":
            return
        video = container.media_type in ("REELS", "VIDEO")
        if container.polls < (self.config.video_polls if video else self.config.image_polls):
            container.polls += 1 if poll else 0
            return
        fetched = container.fetched
        if fetched is not None and not fetched.ok and video:
            self.fail(container, "ERROR", f"Error: 2207052 ({fetched.detail or 'not fetched'})")
        elif fetched is not None and video and fetched.detail == "not mp4":
            self.fail(container, "ERROR", "Error: 2207026 (the video is not MOV or MP4)")
        else:
            container.status_code = "FINISHED"

    def fail(self, container: Container, status_code: str, status: str | None) -> None:
        container.status_code = status_code
        container.status = status if status_code == "ERROR" else None

    # --- publishing --------------------------------------------------------------------------

    def quota_usage(self, user_id: str) -> int:
        since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.config.quota_duration)
        return sum(1 for post in self.posts if post.user_id == user_id and post.created_at > since)

    def publish(self, user: User, creation_id: str) -> Post:
        container = self.owned(user, creation_id)
        self.refresh_status(container)
        if container.is_carousel_item:
            raise invalid_parameter("(#100) A carousel item is published through its carousel")
        if container.status_code == "IN_PROGRESS":
            raise GraphError(400, 9007, "Media ID is not available", 2207027)
        if container.status_code == "EXPIRED":
            raise GraphError(400, -2, "The media has expired", 2207020)
        if container.status_code != "FINISHED":
            # Not confirmed: the answer for an ERROR or PUBLISHED container.
            raise GraphError(400, 24, "The media is not available", 2207006)
        if self.quota_usage(user.id) >= self.config.quota_total:
            raise publishing_limit()
        post = Post(self.new_id(), user.id, container.id, shortcode(), dt.datetime.now(dt.UTC))
        container.status_code, container.media_id = "PUBLISHED", post.id
        self.posts.append(post)
        return post

    def find_post(self, post_id: str) -> Post | None:
        return next((post for post in self.posts if post.id == post_id), None)

    def by_shortcode(self, code: str) -> Post | None:
        return next((post for post in self.posts if post.shortcode == code), None)

    def recent(self, user_id: str, since: float | None, until: float | None) -> list[Post]:
        """The account's media, newest first, within [since, until] (Unix seconds)."""
        return [
            post
            for post in reversed(self.posts)
            if post.user_id == user_id
            and (since is None or post.created_at.timestamp() >= since)
            and (until is None or post.created_at.timestamp() <= until)
        ]


def publishing_limit() -> GraphError:
    message = "The user has reached the maximum number of posts allowed for 24 hours"
    return GraphError(400, 9, message, 2207042)


def shortcode() -> str:
    return "C" + "".join(secrets.choice(_SHORTCODE) for _ in range(10))
