"""The generic fake platform's memory: media, posts, faults, settings, call counts.

Every method is synchronous, so under asyncio (one process) no two requests ever interleave
inside one: the state needs no lock.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from soku.sandbox.common import FaultFields, FaultQueue

CallKind = Literal["publish", "media", "media_status", "refresh", "list"]
CALL_KINDS: tuple[CallKind, ...] = ("publish", "media", "media_status", "refresh", "list")
RATE_WINDOW_SECS = 15 * 60

_STATUS_OF_CODE = {
    "rate_limited": 429,
    "token_expired": 401,
    "invalid_token": 401,
    "server_error": 500,
    "service_unavailable": 503,
    "duplicate_content": 400,
    "processing_failed": 400,
}
_MESSAGES = {
    "rate_limited": "Too many requests: wait for the rate-limit window to reset.",
    "token_expired": "The access token has expired.",
    "invalid_token": "The access token is invalid or was revoked.",
    "server_error": "Something went wrong on our side.",
    "service_unavailable": "The service is temporarily unavailable.",
    "duplicate_content": "This post duplicates one you already published.",
    "processing_failed": "The media could not be processed.",
    "timeout": "The platform did not answer in time.",
}


class FakeError(Exception):
    """An answer in the fake's error shape: {"error": {"code", "message", "status"}}."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        *,
        plain_text: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.plain_text = plain_text  # answered as text quoting the request (`echo`)

    def body(self) -> dict[str, object]:
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


class FaultSpec(FaultFields):
    """One injected fault, as posted to `/_faults`."""

    on: Literal["publish", "media", "media_status", "refresh", "list", "any"]
    # the error as plain text, as a proxy in front of a platform may answer, quoting the
    # request it refuses (its token included)
    plain_text: bool = False

    def matches(self, kind: str, user_id: str | None) -> bool:
        return self.on in (kind, "any") and self.user_id in ("*", user_id)

    def error(self) -> FakeError | None:
        """The error this fault answers with; None when it only delays an accepted publish."""
        if self.status is None and self.error_code is None:
            if self.accept_then_delay is not None:
                return None
            return FakeError(504, "timeout", _MESSAGES["timeout"])
        # a code of our own (not one of these): as given, with `status` or else 400
        status = self.status or _STATUS_OF_CODE.get(self.error_code or "", 400)
        code = self.error_code or _default_code(status)
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["retry-after"] = str(math.ceil(self.retry_after))
            headers["x-rate-limit-reset"] = str(math.ceil(time.time() + self.retry_after))
        message = _MESSAGES.get(code, f"Injected fault: {code}.")
        return FakeError(status, code, message, headers, plain_text=self.plain_text)


def _default_code(status: int) -> str:
    if status == 429:
        return "rate_limited"
    if status == 401:
        return "invalid_token"
    if status >= 500:
        return "server_error"
    return {403: "forbidden", 404: "not_found", 409: "conflict"}.get(status, "bad_request")


class FakeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(default=0, ge=0)
    video_polls: int = Field(default=1, ge=0)
    rate_limit: int = Field(default=10000, ge=1)


@dataclass
class Media:
    id: str
    user_id: str
    url: str
    kind: str
    status: str
    polls_left: int = 0

    def describe(self) -> dict[str, object]:
        return {"id": self.id, "url": self.url, "kind": self.kind}


@dataclass
class Post:
    id: str
    user_id: str
    platform: str
    text: str | None
    media_ids: list[str]
    created_at: dt.datetime
    url: str

    def listing(self) -> dict[str, object]:
        return {
            "id": self.id,
            "text": self.text,
            "media_ids": list(self.media_ids),
            "platform": self.platform,
            "created_at": iso(self.created_at),
            "url": self.url,
        }


def iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class _Window:
    start: int
    count: int = 0


@dataclass
class FakeState:
    """All the fake knows. Ids keep counting across resets, so no id is ever reused."""

    media: dict[str, Media] = field(default_factory=dict)
    posts: list[Post] = field(default_factory=list)
    faults: FaultQueue[FaultSpec] = field(default_factory=FaultQueue)
    config: FakeConfig = field(default_factory=FakeConfig)
    calls: Counter[str] = field(default_factory=Counter)
    windows: dict[str, _Window] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def reset(self) -> None:
        self.media.clear()
        self.posts.clear()
        self.faults.clear()
        self.config = FakeConfig()
        self.calls.clear()
        self.windows.clear()

    def rate_headers(self, user_id: str) -> dict[str, str]:
        """Counts one call for the user; raises 429 once the window's limit is used up."""
        now = time.time()
        start = int(now) - int(now) % RATE_WINDOW_SECS
        window = self.windows.get(user_id)
        if window is None or window.start != start:
            window = self.windows[user_id] = _Window(start)
        window.count += 1
        limit = self.config.rate_limit
        reset = start + RATE_WINDOW_SECS
        headers = {
            "x-rate-limit-limit": str(limit),
            "x-rate-limit-remaining": str(max(limit - window.count, 0)),
            "x-rate-limit-reset": str(reset),
        }
        if window.count > limit:
            headers["retry-after"] = str(max(math.ceil(reset - now), 1))
            raise FakeError(429, "rate_limited", _MESSAGES["rate_limited"], headers)
        return headers

    def add_media(self, user_id: str, url: str, kind: str) -> Media:
        media_id = f"m_{next(self._ids)}"
        status = "ready" if kind == "image" else "processing"
        item = Media(media_id, user_id, url, kind, status, self.config.video_polls)
        self.media[media_id] = item
        return item

    def poll_media(self, media_id: str) -> Media:
        """One status check: a processing video turns ready after `video_polls` checks."""
        item = self.media[media_id]
        if item.status == "processing":
            if item.polls_left > 0:
                item.polls_left -= 1
            else:
                item.status = "ready"
        return item

    def add_post(
        self, user_id: str, platform: str, text: str | None, media_ids: list[str], base: str
    ) -> Post:
        if not text and not media_ids:
            raise FakeError(400, "empty_post", "A post needs text or at least one media id.")
        for media_id in media_ids:
            self._check_media(user_id, media_id)
        post_id = f"{platform}_{next(self._ids)}"
        now = dt.datetime.now(dt.UTC)
        post = Post(post_id, user_id, platform, text, list(media_ids), now, f"{base}/p/{post_id}")
        self.posts.append(post)
        return post

    def _check_media(self, user_id: str, media_id: str) -> None:
        item = self.media.get(media_id)
        if item is None or item.user_id != user_id:
            raise FakeError(400, "invalid_media", f"Unknown media id {media_id!r}.")
        if item.status == "failed":
            raise FakeError(400, "invalid_media", f"Media {media_id} failed processing.")
        if item.status != "ready":
            raise FakeError(409, "media_not_ready", f"Media {media_id} is still processing.")

    def list_posts(self, user_id: str, since: dt.datetime | None, limit: int) -> list[Post]:
        """The user's posts, newest first."""
        found = [
            post
            for post in reversed(self.posts)
            if post.user_id == user_id and (since is None or post.created_at >= since)
        ]
        return found[:limit]

    def find_post(self, post_id: str) -> Post | None:
        return next((post for post in self.posts if post.id == post_id), None)
