"""The X fake's memory: users and tokens, uploads, posts, quotas, faults and settings.

Every method is synchronous, so under asyncio (one process) no two requests interleave inside
one: the state needs no lock. Error bodies follow the X API v2 (see `soku.sandbox.x`); they
are made in `x_faults.py`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import re
import secrets
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from soku.sandbox.common import FaultQueue
from soku.sandbox.consent import CodeBook
from soku.sandbox.x_faults import (
    CallKind,
    FaultSpec,
    XError,
    fault_problem,
    invalid_request,
    oauth_error,
)

RATE_WINDOW_SECS = 15 * 60
# Per user per 15 minutes (x.md "Rate limits"; users/me and the timeline from the X docs).
RATE_LIMITS = {"publish": 100, "media": 500, "status": 1000, "initialize": 1875,
               "append": 1875, "finalize": 1875, "me": 75, "list": 900}  # fmt: skip
MAX_SEGMENT_BYTES = 5 * 1024 * 1024  # one APPEND ≤ 5 MB (v1.1 APPEND reference)
MEDIA_EXPIRES_SECS = 86400
_TWEPOCH_MS = 1288834974657
_URL = re.compile(r"https?://\S+")
_KEY_PREFIX = {"photo": "3", "video": "7", "animated_gif": "16", "amplify_video": "13"}


class FakeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(default=0, ge=0)
    video_polls: int = Field(default=1, ge=0)  # STATUS answers in_progress before succeeded
    check_after_secs: int = Field(default=1, ge=0)
    rate_limit: int | None = Field(default=None, ge=1)  # None: X's limit of each endpoint
    token_lifetime_secs: int = Field(default=7200, ge=0)
    client_id: str | None = None  # when set, a refresh must name this client
    client_secret: str | None = None  # when set, a confidential client must send this one
    code_lifetime_secs: float = Field(default=30, ge=0)  # x.md: exchange within 30 seconds
    tco_links: bool = True  # texts read back as X renders them (t.co links, &amp;)
    media_expires_secs: int = Field(default=MEDIA_EXPIRES_SECS, ge=1)  # then ids are refused


@dataclass
class User:
    id: str
    username: str
    name: str

    def view(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "username": self.username}


@dataclass
class Media:
    id: str
    user_id: str
    kind: str  # photo | video | animated_gif | amplify_video
    media_type: str
    total_bytes: int
    state: str = "uploading"  # then pending, in_progress, succeeded or failed
    segments: dict[int, tuple[int, str]] = field(default_factory=dict)  # index: size, sha256
    appends: list[int] = field(default_factory=list)  # segment indexes, as received
    polls: int = 0
    sha256: str = ""
    size: tuple[int, int] = (0, 0)
    expires_at: float = float("inf")  # Unix time

    @property
    def key(self) -> str:
        return f"{_KEY_PREFIX[self.kind]}_{self.id}"

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id, "media_key": self.key, "type": self.kind, "media_type": self.media_type,
            "size": self.total_bytes, "state": self.state, "sha256": self.sha256,
            "segments": [self.segments[i][1] for i in sorted(self.segments)],
            "appends": list(self.appends),
        }  # fmt: skip


@dataclass
class Post:
    id: str
    user_id: str
    text: str
    rendered: str
    media_ids: list[str]
    created_at: dt.datetime


def tco(seed: str) -> str:
    return "https://t.co/" + hashlib.sha256(seed.encode()).hexdigest()[:10]


def render(text: str, post_id: str, has_media: bool) -> str:
    """The text as X gives it back: URLs as t.co links, a media link appended, & < > escaped."""
    shown = _URL.sub(lambda match: tco(match.group()), text)
    if has_media:
        shown = f"{shown} {tco(post_id)}".strip()
    return shown.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass
class FakeState:
    """All the fake knows. Ids keep counting across resets, so no id is ever reused."""

    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, tuple[str, float | None]] = field(default_factory=dict)  # user, expiry
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    used_refresh_tokens: set[str] = field(default_factory=set)
    media: dict[str, Media] = field(default_factory=dict)
    posts: list[Post] = field(default_factory=list)
    faults: FaultQueue[FaultSpec] = field(default_factory=FaultQueue)
    config: FakeConfig = field(default_factory=FakeConfig)
    calls: Counter[str] = field(default_factory=Counter)
    windows: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    codes: CodeBook = field(default_factory=CodeBook)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _last_id: int = 0

    def reset(self) -> None:
        for store in (self.users, self.tokens, self.refresh_tokens, self.media, self.windows):
            store.clear()
        for other in (self.used_refresh_tokens, self.posts, self.faults, self.calls):
            other.clear()
        self.codes.clear()
        self.config = FakeConfig()

    def new_id(self) -> str:
        """A snowflake: milliseconds since X's epoch, shifted by 22 bits (19 digits today)."""
        candidate = (int(time.time() * 1000) - _TWEPOCH_MS) << 22 | next(self._seq) % 4096
        self._last_id = max(candidate, self._last_id + 1)
        return str(self._last_id)

    # --- users, tokens, quotas, faults -----------------------------------------------------

    def add_user(self, username: str | None = None, name: str | None = None) -> User:
        user_id = self.new_id()
        username = username or f"sbx{user_id[-8:]}"
        user = self.users[user_id] = User(user_id, username, name or username)
        return user

    def user_named(self, username: str) -> User:
        """The sandbox user of that name (made the first time someone signs in as it)."""
        for user in self.users.values():
            if user.username.lower() == username.lower():
                return user
        return self.add_user(username)

    def user_for_token(self, token: str) -> User:
        """A token the fake never issued is adopted: it names a new sandbox user."""
        if token not in self.tokens:
            self.tokens[token] = (self.add_user().id, None)
        user_id, expires_at = self.tokens[token]
        if expires_at is not None and time.time() >= expires_at:
            raise fault_problem("token_expired")
        return self.users[user_id]

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        """New tokens for a refresh token, which is used up (X rotates refresh tokens)."""
        if not refresh_token or refresh_token in self.used_refresh_tokens:
            raise oauth_error(400, "invalid_request", "Value passed for the token was invalid.")
        self.used_refresh_tokens.add(refresh_token)
        user_id = self.refresh_tokens.pop(refresh_token, None) or self.add_user().id
        return self.grant(user_id, "tweet.read tweet.write users.read media.write offline.access")

    def grant(self, user_id: str, scope: str) -> dict[str, Any]:
        """A token answer; a refresh token only with offline.access (x.md, "Auth")."""
        access, lifetime = secrets.token_urlsafe(32), self.config.token_lifetime_secs
        self.tokens[access] = (user_id, time.time() + lifetime)
        answer: dict[str, Any] = {"token_type": "bearer", "expires_in": lifetime,
                                  "access_token": access, "scope": scope}  # fmt: skip
        if "offline.access" in scope.split():
            answer["refresh_token"] = refresh = secrets.token_urlsafe(32)
            self.refresh_tokens[refresh] = user_id
        return answer

    def rate_headers(self, user_id: str, kind: CallKind) -> dict[str, str]:
        """Counts one call; raises 429 once the user's 15-minute window for it is used up."""
        now = time.time()
        start = int(now) - int(now) % RATE_WINDOW_SECS
        began, count = self.windows.get((user_id, kind), (start, 0))
        count = count + 1 if began == start else 1
        self.windows[(user_id, kind)] = (start, count)
        limit = self.config.rate_limit or RATE_LIMITS.get(kind, 1000)
        headers = {
            "x-rate-limit-limit": str(limit),
            "x-rate-limit-remaining": str(max(limit - count, 0)),
            "x-rate-limit-reset": str(start + RATE_WINDOW_SECS),
        }
        if count > limit:
            raise XError(429, fault_problem("rate_limited").body, headers)
        return headers

    # --- media -------------------------------------------------------------------------------

    def add_media(self, user_id: str, kind: str, media_type: str, total: int) -> Media:
        item = Media(self.new_id(), user_id, kind, media_type, total)
        item.expires_at = time.time() + self.config.media_expires_secs
        self.media[item.id] = item
        return item

    def owned(self, user_id: str, media_id: str) -> Media:
        item = self.media.get(media_id)
        if item is None or item.user_id != user_id or time.time() >= item.expires_at:
            raise invalid_request(f"Unknown media id {media_id}.", "media_id")
        return item

    def append(self, user_id: str, media_id: str, index: int, data: bytes) -> None:
        item = self.owned(user_id, media_id)
        if item.state != "uploading":
            raise invalid_request("The upload is already finalized.", "id")
        if not 0 <= index <= 999:
            raise invalid_request("segment_index must be between 0 and 999.", "segment_index")
        if len(data) > MAX_SEGMENT_BYTES:
            raise invalid_request(f"A segment may not exceed {MAX_SEGMENT_BYTES} bytes.", "media")
        item.segments[index] = (len(data), hashlib.sha256(data).hexdigest())
        item.appends.append(index)

    def finalize(self, user_id: str, media_id: str) -> Media:
        item = self.owned(user_id, media_id)
        if item.state != "uploading":
            raise invalid_request("The upload is already finalized.", "id")
        received = sum(size for size, _ in item.segments.values())
        if received != item.total_bytes or sorted(item.segments) != list(range(len(item.segments))):
            message = f"File size mismatch: {received} of {item.total_bytes} bytes received."
            raise invalid_request(message, "id")
        item.state = "succeeded" if item.kind == "photo" else "pending"
        return item

    def check(self, user_id: str, media_id: str, fail: bool) -> Media:
        """One STATUS check: in_progress `video_polls` times, then succeeded (or failed)."""
        item = self.owned(user_id, media_id)
        if item.state in ("pending", "in_progress"):
            item.polls += 1
            done = item.polls > self.config.video_polls
            item.state = "failed" if fail else "succeeded" if done else "in_progress"
        return item

    # --- posts -------------------------------------------------------------------------------

    def add_post(self, user_id: str, text: str | None, media_ids: list[str]) -> Post:
        text = unicodedata.normalize("NFC", text or "").strip()
        if not text and not media_ids:
            raise invalid_request("A post needs text or media.", "text")
        items = [self.media.get(media_id) for media_id in media_ids]
        usable = [
            m
            for m in items
            if m and m.user_id == user_id and m.state == "succeeded" and time.time() < m.expires_at
        ]
        if len(usable) != len(items) or ({m.kind for m in usable} - {"photo"} and len(items) > 1):
            raise invalid_request("Your media IDs are invalid.", "media.media_ids")
        if text and any(post.user_id == user_id and post.text == text for post in self.posts):
            raise fault_problem("duplicate_content")
        post_id = self.new_id()
        rendered = render(text, post_id, bool(media_ids)) if self.config.tco_links else text
        post = Post(post_id, user_id, text, rendered, list(media_ids), dt.datetime.now(dt.UTC))
        self.posts.append(post)
        return post

    def recent_posts(
        self, user_id: str, since: dt.datetime | None, until: dt.datetime | None
    ) -> list[Post]:
        """The user's posts, newest first."""
        return [
            post
            for post in reversed(self.posts)
            if post.user_id == user_id
            and (since is None or post.created_at >= since)
            and (until is None or post.created_at <= until)
        ]

    def find_post(self, post_id: str) -> Post | None:
        return next((post for post in self.posts if post.id == post_id), None)

    # --- views ---------------------------------------------------------------------------------

    def tweet_view(self, post: Post, fields: set[str] | None = None) -> dict[str, Any]:
        """A post as X shows it: the default fields, then those asked for in tweet.fields."""
        fields = fields or set()
        view: dict[str, Any] = {"id": post.id, "text": post.rendered}
        view["edit_history_tweet_ids"] = [post.id]
        if "created_at" in fields:
            view["created_at"] = iso(post.created_at)
        if "author_id" in fields:
            view["author_id"] = post.user_id
        if "attachments" in fields and post.media_ids:
            view["attachments"] = {"media_keys": [self.media[m].key for m in post.media_ids]}
        return view

    def media_view(self, item: Media) -> dict[str, Any]:
        """A media object as initialize, finalize, the simple upload and STATUS return it."""
        data: dict[str, Any] = {"id": item.id, "media_key": item.key}
        data["expires_after_secs"] = max(0, round(item.expires_at - time.time()))
        if item.state == "uploading":
            return data
        data["size"] = item.total_bytes
        if item.kind == "photo":
            data["image"] = {"image_type": item.media_type, "w": item.size[0], "h": item.size[1]}
            return data
        data["video"] = {"video_type": item.media_type}
        info: dict[str, Any] = {"state": item.state}
        if item.state in ("pending", "in_progress"):
            info["check_after_secs"] = self.config.check_after_secs
        if item.state != "pending":
            done = item.state == "succeeded"
            info["progress_percent"] = 100 if done else 100 * item.polls // (item.polls + 1)
        if item.state == "failed":
            info["error"] = {
                "code": 1,
                "name": "InvalidMedia",
                "message": "Unsupported video format",
            }
        data["processing_info"] = info
        return data

    def inspected(self, post: Post, base: str) -> dict[str, Any]:
        """A post as `/_inspect/posts` shows it: what was sent, and where it can be seen."""
        user = self.users[post.user_id]
        return {
            "id": post.id,
            "user_id": post.user_id,
            "username": user.username,
            "text": post.text,
            "rendered_text": post.rendered,
            "media": [self.media[m].describe() for m in post.media_ids],
            "created_at": iso(post.created_at),
            "url": f"{base}/{user.username}/status/{post.id}",
        }


def iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
