"""The Threads fake's memory: users and tokens, containers, published threads, quota, faults
(`graph_state.GraphState`, with what is Threads' own).

Errors are Graph errors (`soku.sandbox.graph`); the ones whose exact code threads.md does not
give are marked "not confirmed" where they are raised.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from soku.platforms.text import threads_length
from soku.sandbox.common import Fetched
from soku.sandbox.graph import GraphError, invalid_parameter
from soku.sandbox.graph_state import Container, GraphConfig, GraphFaultSpec, GraphState, Post
from soku.sandbox.graph_views import asked_fields, media_item, post_view

# Container `error_message` values (threads.md, TH-TROUBLE).
CONTAINER_ERRORS = (
    "FAILED_DOWNLOADING_VIDEO", "FAILED_PROCESSING_AUDIO", "FAILED_PROCESSING_VIDEO",
    "INVALID_ASPEC_RATIO", "INVALID_BIT_RATE", "INVALID_DURATION", "INVALID_FRAME_RATE",
    "INVALID_AUDIO_CHANNELS", "INVALID_AUDIO_CHANNEL_LAYOUT", "UNKNOWN",
)  # fmt: skip
# What a published container is listed as (retrieve-posts: media_type).
LISTED_TYPES = {"TEXT": "TEXT_POST", "IMAGE": "IMAGE", "VIDEO": "VIDEO",
                "CAROUSEL": "CAROUSEL_ALBUM"}  # fmt: skip


class FaultSpec(GraphFaultSpec):
    """One injected fault (`GraphFaultSpec`); a failed container's `error_message` is one of
    `CONTAINER_ERRORS`."""

    container_error: str = "FAILED_PROCESSING_VIDEO"


class FakeConfig(GraphConfig):
    quota_total: int = Field(default=250, ge=0)  # posts per `quota_duration` (TH-OVERVIEW)
    code_lifetime_secs: float = Field(default=600, ge=0)  # (U) not in threads.md
    max_text_length: int = Field(default=500, ge=1)


@dataclass
class User:
    id: str
    username: str
    name: str

    def view(self, fields: set[str]) -> dict[str, Any]:
        return asked_fields({"id": self.id, "username": self.username, "name": self.name}, fields)


@dataclass
class FakeState(GraphState[User, FakeConfig, FaultSpec]):
    """All the fake knows (`GraphState`), and what Threads refuses of a new container."""

    config: FakeConfig = field(default_factory=FakeConfig)
    issued_prefix, grant_type = "TH", "th_refresh_token"
    first_id, shortcode_letter, video_types = 17_841_400_000_000_000, "D", ("VIDEO",)

    def add_user(self, username: str | None = None, user_id: str | None = None) -> User:
        user_id = user_id or self.new_id()
        username = username or f"sandbox_{user_id[-6:]}"
        user = self.users[user_id] = User(user_id, username, username)
        return user

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

    def video_failure(self, fetched: Fetched) -> str | None:
        return None if fetched.ok else "FAILED_DOWNLOADING_VIDEO"

    def not_publishable(self, container: Container) -> GraphError:
        return invalid_parameter(f"(#100) The container is {container.status}", 4279009)

    def container_view(self, container: Container, fields: set[str]) -> dict[str, Any]:
        view: dict[str, Any] = {"id": container.id}
        if "status" in fields:
            view["status"] = container.status
        if "error_message" in fields and container.reason:
            view["error_message"] = container.reason
        return view

    # --- views ---------------------------------------------------------------------------------

    def permalink(self, post: Post, base: str) -> str:
        return f"{base}/@{self.users[post.user_id].username}/post/{post.shortcode}"

    def post_view(self, post: Post, fields: set[str], base: str) -> dict[str, Any]:
        """A published thread as `GET /{media-id}` and the user's listing show it."""
        listed = LISTED_TYPES[self.containers[post.container_id].media_type]
        kinds = {"media_product_type": "THREADS", "media_type": listed}
        link, more = self.permalink(post, base), {"is_quote_post": False}
        return post_view(self, post, fields, kinds, link, "text", more)

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
