"""The Instagram fake's memory: accounts and tokens, containers, published media, faults
(`graph_state.GraphState`, with what is Instagram's own).

Errors are Graph errors (`soku.sandbox.graph`) with the codes and subcodes of Instagram's
error table (instagram.md, "Error model"); the few it does not give are marked "not
confirmed". Numbers the platform doc leaves open or gives twice are `FakeConfig` knobs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from soku.sandbox.common import Fetched
from soku.sandbox.graph import GraphError, invalid_parameter
from soku.sandbox.graph_state import Container, GraphConfig, GraphFaultSpec, GraphState
from soku.sandbox.graph_views import asked_fields

# What the media listing calls each kind of container once published (a reel is a VIDEO).
LISTED_TYPES = {"IMAGE": "IMAGE", "REELS": "VIDEO", "VIDEO": "VIDEO",
                "CAROUSEL": "CAROUSEL_ALBUM", "STORIES": "IMAGE"}  # fmt: skip
PRODUCT_TYPES = {"REELS": "REELS", "STORIES": "STORY"}


class FaultSpec(GraphFaultSpec):
    """One injected fault (`GraphFaultSpec`); Instagram's own `error_code`s are
    `publishing_limit`, `restricted` and `container_unavailable`."""

    container_error: str = "Error: 2207026"  # the unsupported-video subcode


class FakeConfig(GraphConfig):
    containers_per_day: int = Field(default=400, ge=0)  # per account, rolling 24 h
    # (U) 50 in the doc's example and the carousel section, 100 in its publishing section
    quota_total: int = Field(default=50, ge=0)
    code_lifetime_secs: float = Field(default=3600, ge=0)  # a code: 1 h
    max_caption_length: int = Field(default=2200, ge=1)
    max_hashtags: int = Field(default=30, ge=0)  # (U) one third-party page says 5
    max_mentions: int = Field(default=20, ge=0)
    max_carousel_items: int = Field(default=10, ge=2)
    max_image_bytes: int = Field(default=8 * 1024 * 1024, ge=1)
    max_video_bytes: int = Field(default=300 * 1024 * 1024, ge=1)  # (U) 300 MB or 1 GB
    jpeg_only: bool = True
    min_aspect_ratio: float = Field(default=0.8, gt=0)  # 4:5
    max_aspect_ratio: float = Field(default=1.91, gt=0)
    token_answer: Literal["nested", "flat"] = "nested"  # noqa: S105 (U) both are seen


@dataclass
class User:
    id: str
    username: str

    def view(self, fields: set[str]) -> dict[str, Any]:
        shown = {"id": self.id, "user_id": self.id, "username": self.username,
                 "account_type": "BUSINESS"}  # fmt: skip
        return asked_fields(shown, fields)


@dataclass
class FakeState(GraphState[User, FakeConfig, FaultSpec]):
    """All the fake knows (`GraphState`), and what Instagram refuses of a new container."""

    config: FakeConfig = field(default_factory=FakeConfig)
    issued_prefix, grant_type = "IGAA", "ig_refresh_token"
    first_id, shortcode_letter, video_types = 17_900_000_000_000_000, "C", ("REELS", "VIDEO")

    def add_user(self, username: str | None = None, user_id: str | None = None) -> User:
        user_id = user_id or self.new_id()
        user = self.users[user_id] = User(user_id, username or f"sandbox_{user_id[-6:]}")
        return user

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
            if child.status != "FINISHED":
                # Not confirmed: the refusal of an unfinished child.
                raise GraphError(400, 9007, "Media ID is not available", 2207027)
        return children

    def video_failure(self, fetched: Fetched) -> str | None:
        if not fetched.ok:
            return f"Error: 2207052 ({fetched.detail or 'not fetched'})"
        if fetched.detail == "not mp4":
            return "Error: 2207026 (the video is not MOV or MP4)"
        return None

    def not_publishable(self, container: Container) -> GraphError:
        if container.status == "EXPIRED":
            return GraphError(400, -2, "The media has expired", 2207020)
        # Not confirmed: the answer for an ERROR or PUBLISHED container.
        return GraphError(400, 24, "The media is not available", 2207006)
