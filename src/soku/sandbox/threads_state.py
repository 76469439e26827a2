"""The Threads fake's memory: users and tokens, containers, published threads, quota, faults.

Every method is synchronous, so under asyncio (one process) no two requests interleave inside
one: the state needs no lock. Errors are Graph errors (`soku.sandbox.graph`); the ones whose
exact code threads.md does not give are marked "not confirmed" where they are raised.
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

from soku.platforms.text import threads_length
from soku.sandbox.common import FaultFields, FaultQueue, Fetched
from soku.sandbox.consent import CodeBook
from soku.sandbox.graph import GraphError, invalid_parameter
from soku.sandbox.graph_accounts import GraphAccounts, Token, unsupported
from soku.sandbox.graph_views import media_item

CallKind = Literal[
    "create", "status", "publish", "media", "list", "limit", "me", "refresh", "token"
]
CALL_KINDS: tuple[CallKind, ...] = get_args(CallKind)
# Container `status` values and `error_message` values (threads.md, TH-TROUBLE).
STATUSES = ("IN_PROGRESS", "FINISHED", "PUBLISHED", "ERROR", "EXPIRED")
CONTAINER_ERRORS = (
    "FAILED_DOWNLOADING_VIDEO", "FAILED_PROCESSING_AUDIO", "FAILED_PROCESSING_VIDEO",
    "INVALID_ASPEC_RATIO", "INVALID_BIT_RATE", "INVALID_DURATION", "INVALID_FRAME_RATE",
    "INVALID_AUDIO_CHANNELS", "INVALID_AUDIO_CHANNEL_LAYOUT", "UNKNOWN",
)  # fmt: skip
# What a published container is listed as (retrieve-posts: media_type).
LISTED_TYPES = {"TEXT": "TEXT_POST", "IMAGE": "IMAGE", "VIDEO": "VIDEO",
                "CAROUSEL": "CAROUSEL_ALBUM"}  # fmt: skip
_SHORTCODE = string.ascii_letters + string.digits + "_-"


class FaultSpec(FaultFields):
    """One injected fault, as posted to `/_faults`.

    `error_code` names a Graph error (`soku.sandbox.graph.GRAPH_FAULTS`), or on `create` and
    `status` `processing_failed` (the container ends in ERROR with `container_error`) or
    `container_expired` (it ends EXPIRED).
    """

    on: Literal[
        "create", "status", "publish", "media", "list", "limit", "me", "refresh", "token", "any"
    ]  # fmt: skip
    container_error: str = "FAILED_PROCESSING_VIDEO"


class FakeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(default=0, ge=0)
    version: str | None = Field(default=None, pattern=r"^v\d+\.\d+$")  # None: any vN.N
    video_polls: int = Field(default=1, ge=0)  # status reads IN_PROGRESS before FINISHED
    image_polls: int = Field(default=0, ge=0)  # the same for text, image and carousel
    container_lifetime_secs: int = Field(default=86400, ge=0)  # then EXPIRED (TH-TROUBLE)
    quota_total: int = Field(default=250, ge=0)  # posts per `quota_duration` (TH-OVERVIEW)
    quota_duration: int = Field(default=86400, ge=1)
    fetch_media: bool = True  # GET every image_url / video_url, as Threads does
    max_text_length: int = Field(default=500, ge=1)
    token_lifetime_secs: int = Field(default=5183944, ge=0)  # a refreshed token: ~60 days
    refresh_min_age_secs: int = Field(default=0, ge=0)  # Threads: 86400 (TH-LLT)
    call_limit: int = Field(default=48000, ge=1)  # 4800 x 10 impressions, for X-App-Usage
    short_token_lifetime_secs: int = Field(default=3600, ge=0)  # a code's token: 1 h (TH-LLT)
    code_lifetime_secs: float = Field(default=600, ge=0)  # (U) not in threads.md
    client_secret: str | None = None  # when set, the token endpoints want this app secret


@dataclass
class User:
    id: str
    username: str
    name: str

    def view(self, fields: set[str]) -> dict[str, Any]:
        shown = {"id": self.id, "username": self.username, "name": self.name}
        return {key: value for key, value in shown.items() if key == "id" or key in fields}


@dataclass
class Container:
    id: str
    user_id: str
    media_type: str  # TEXT | IMAGE | VIDEO | CAROUSEL
    text: str
    url: str | None
    is_carousel_item: bool
    children: list[str]
    created_at: float
    fetched: Fetched | None = None
    status: str = "IN_PROGRESS"
    error_message: str | None = None
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
    """All the fake knows. Ids keep counting across resets, so no id is ever reused."""

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
    issued_prefix = "TH"
    grant_type = "th_refresh_token"
    _ids: itertools.count[int] = field(
        default_factory=lambda: itertools.count(17_841_400_000_000_000 + secrets.randbelow(10**9))
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

    # --- users and tokens ----------------------------------------------------------------

    def add_user(self, username: str | None = None, user_id: str | None = None) -> User:
        user_id = user_id or self.new_id()
        username = username or f"sandbox_{user_id[-6:]}"
        user = self.users[user_id] = User(user_id, username, username)
        return user

    # --- containers ------------------------------------------------------------------------

    def create(
        self, user: User, media_type: str, text: str, url: str | None, item: bool, kids: list[str]
    ) -> Container:
        if threads_length(text) > self.config.max_text_length:
            raise invalid_parameter(
                f"(#100) text must be at most {self.config.max_text_length} characters"
            )
        if media_type == "CAROUSEL" and not 2 <= len(kids) <= 20:
            raise invalid_parameter("(#100) A carousel takes 2 to 20 children")
        children = [self.owned(user, child) for child in kids]
        if media_type == "CAROUSEL":
            for child in children:
                self.refresh_status(child)
                if not child.is_carousel_item or child.status != "FINISHED":
                    # Not confirmed: the exact refusal for an unready or plain child.
                    raise invalid_parameter(
                        f"(#100) Child {child.id} is not a finished carousel item"
                    )
        container = Container(
            self.new_id(), user.id, media_type, text, url, item, kids, time.time()
        )
        self.containers[container.id] = container
        return container

    def owned(self, user: User, container_id: str) -> Container:
        found = self.containers.get(container_id)
        if found is None or found.user_id != user.id:
            raise unsupported(container_id, "get")
        return found

    def refresh_status(self, container: Container, poll: bool = False) -> None:
        """Moves a container on: one status read counts as one poll while IN_PROGRESS."""
        if container.status in ("IN_PROGRESS", "FINISHED"):
            age = time.time() - container.created_at
            if age >= self.config.container_lifetime_secs:
                container.status = "EXPIRED"
                return
        if container.status != "IN_PROGRESS":
            return
        video = container.media_type == "VIDEO"
        if container.polls < (self.config.video_polls if video else self.config.image_polls):
            container.polls += 1 if poll else 0
            return
        fetched = container.fetched
        if fetched is not None and not fetched.ok and video:
            container.status, container.error_message = "ERROR", "FAILED_DOWNLOADING_VIDEO"
        else:
            container.status = "FINISHED"

    def fail(self, container: Container, status: str, message: str | None) -> None:
        container.status = status
        container.error_message = message if status == "ERROR" else None

    def container_view(self, container: Container, fields: set[str]) -> dict[str, Any]:
        view: dict[str, Any] = {"id": container.id}
        if "status" in fields:
            view["status"] = container.status
        if "error_message" in fields and container.error_message:
            view["error_message"] = container.error_message
        return view

    # --- publishing --------------------------------------------------------------------------

    def quota_usage(self, user_id: str) -> int:
        since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.config.quota_duration)
        return sum(1 for post in self.posts if post.user_id == user_id and post.created_at > since)

    def publish(self, user: User, creation_id: str) -> Post:
        container = self.owned(user, creation_id)
        self.refresh_status(container)
        if container.is_carousel_item:
            raise invalid_parameter("(#100) A carousel item is published through its carousel")
        if container.status == "IN_PROGRESS":
            # Not confirmed for Threads: Instagram's "media not ready" (9007 / 2207027).
            raise GraphError(400, 9007, "Media ID is not available", 2207027)
        if container.status != "FINISHED":
            raise invalid_parameter(f"(#100) The container is {container.status}", 4279009)
        if self.quota_usage(user.id) >= self.config.quota_total:
            # Not confirmed for Threads: Instagram's publishing-limit error (9 / 2207042).
            message = "The user has reached the maximum number of posts allowed for 24 hours"
            raise GraphError(400, 9, message, 2207042)
        post = Post(self.new_id(), user.id, container.id, shortcode(), dt.datetime.now(dt.UTC))
        container.status, container.media_id = "PUBLISHED", post.id
        self.posts.append(post)
        return post

    def find_post(self, post_id: str) -> Post | None:
        return next((post for post in self.posts if post.id == post_id), None)

    def by_shortcode(self, code: str) -> Post | None:
        return next((post for post in self.posts if post.shortcode == code), None)

    def recent(self, user_id: str, since: float | None, until: float | None) -> list[Post]:
        """The user's posts, newest first, within [since, until] (Unix seconds)."""
        return [
            post
            for post in reversed(self.posts)
            if post.user_id == user_id
            and (since is None or post.created_at.timestamp() >= since)
            and (until is None or post.created_at.timestamp() <= until)
        ]

    # --- views ---------------------------------------------------------------------------------

    def permalink(self, post: Post, base: str) -> str:
        return f"{base}/@{self.users[post.user_id].username}/post/{post.shortcode}"

    def post_view(self, post: Post, fields: set[str], base: str) -> dict[str, Any]:
        """A published thread as `GET /{media-id}` and the user's listing show it."""
        container, user = self.containers[post.container_id], self.users[post.user_id]
        shown: dict[str, Any] = {
            "media_product_type": "THREADS",
            "media_type": LISTED_TYPES[container.media_type],
            "permalink": self.permalink(post, base),
            "owner": {"id": user.id},
            "username": user.username,
            "timestamp": post.created_at.strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "shortcode": post.shortcode,
            "is_quote_post": False,
        }
        if container.text:
            shown["text"] = container.text
        if container.url:
            shown["media_url"] = container.url
        if container.children:
            shown["children"] = {"data": [{"id": child} for child in container.children]}
        return {"id": post.id, **{key: shown[key] for key in shown if key in fields}}

    def inspected(self, post: Post, base: str) -> dict[str, Any]:
        """A post as `/_inspect/posts` shows it: what was sent, and where it can be seen."""
        container, user = self.containers[post.container_id], self.users[post.user_id]
        items = [self.containers[child] for child in container.children] or (
            [container] if container.url else []
        )
        return {
            "id": post.id,
            "user": {"id": user.id, "username": user.username},
            "container_id": container.id,
            "media_type": LISTED_TYPES[container.media_type],
            "text": container.text,
            "media": [media_item(item) for item in items],
            "created_at": post.created_at.isoformat(timespec="seconds"),
            "url": self.permalink(post, base),
        }


def shortcode() -> str:
    return "D" + "".join(secrets.choice(_SHORTCODE) for _ in range(10))
