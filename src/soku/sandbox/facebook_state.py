"""The Facebook Pages fake's memory: pages and tokens, photos, videos, posts, quotas, faults.

Every method is synchronous, so under asyncio (one process) no two requests interleave inside
one: the state needs no lock. Errors are Graph errors (`soku.sandbox.graph`). How its objects
are shown is in `facebook_views.py`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from soku.sandbox.common import FaultFields, FaultQueue
from soku.sandbox.consent import CodeBook
from soku.sandbox.graph import GraphError, fault_error, invalid_parameter, usage_headers

# publish: a feed post, a published photo, a video set to published (the points of no return);
# photo: an unpublished photo; video: a video upload; status: a video's status; read: any other
# object read; list: a page's posts or videos; accounts: /me/accounts; token: the OAuth
# token endpoint.
CallKind = Literal["publish", "photo", "video", "status", "read", "list", "accounts", "token"]
CALL_KINDS: tuple[CallKind, ...] = get_args(CallKind)
MAX_MESSAGE = 63_206  # facebook.md "Constraints": longer is refused with code 100
MAX_ATTACHED = 10  # photos per post via attached_media (facebook.md, [C]/[S])
RATE_WINDOW_SECS = 3600
_FIRST_ID = 122_100_000_000_000_001  # Graph ids are long numeric strings


def not_found(object_id: str) -> GraphError:
    """Graph's answer for an id that does not exist or belongs to another Page."""
    message = (
        f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation. Please read "
        "the Graph API documentation at https://developers.facebook.com/docs/graph-api"
    )
    return GraphError(400, 100, message, subcode=33, kind="GraphMethodException")


class FaultSpec(FaultFields):
    """One injected fault, as posted to `/_faults`; `user_id` names a Page id."""

    on: Literal["publish", "photo", "video", "status", "read", "list", "accounts", "token", "any"]

    def error(self) -> GraphError | None:
        return fault_error(self)


class FakeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(default=0, ge=0)
    video_polls: int = Field(default=1, ge=0)  # status answers `processing` this many times
    # ... or until this many seconds have passed: Facebook processes in the background, so a
    # video published at upload appears without anyone asking (None: only status reads)
    video_seconds: float | None = Field(default=0.0, ge=0)
    fetch_media: bool = True  # GET each photo / video URL as Facebook does
    rate_limit: int | None = Field(default=None, ge=1)  # calls per Page per hour; None: none
    reject_duplicates: bool = True  # the same text twice in a row on a Page: code 506
    max_photo_bytes: int = Field(default=4 * 1024 * 1024, ge=1)  # [!] 4 MB or 10 MB
    pages_per_user: int = Field(default=1, ge=0)  # Pages a new sandbox user manages
    code_lifetime_secs: float = Field(default=600, ge=0)  # (U) not in facebook.md
    client_secret: str | None = None  # when set, the token endpoint wants this app secret
    # answers of these calls carry a `padding` field of that many bytes (a client's size cap)
    padding: dict[Literal["token", "accounts"], int] = Field(default_factory=dict)


@dataclass
class Photo:
    id: str
    page_id: str
    url: str | None
    size: int
    published: bool
    caption: str
    created_at: dt.datetime
    post_id: str | None = None  # the post it was published in or attached to


@dataclass
class Video:
    id: str
    page_id: str
    url: str
    description: str
    title: str
    size: int
    created_at: dt.datetime
    state: str = "processing"  # then ready or error
    upload_error: str | None = None  # the file could not be fetched
    polls: int = 0
    published: bool = False
    post_id: str | None = None


@dataclass
class Post:
    id: str  # {page-id}_{post-id}
    page_id: str
    message: str
    photo_ids: list[str]
    video_id: str | None
    created_at: dt.datetime


@dataclass
class FakeState:
    """All the fake knows. Ids keep counting across resets, so no id is ever reused."""

    tokens: dict[str, str] = field(default_factory=dict)  # Page token: Page id
    user_pages: dict[str, list[str]] = field(default_factory=dict)  # user token: Page ids
    page_names: dict[str, str] = field(default_factory=dict)
    photos: dict[str, Photo] = field(default_factory=dict)
    videos: dict[str, Video] = field(default_factory=dict)
    posts: list[Post] = field(default_factory=list)
    faults: FaultQueue[FaultSpec] = field(default_factory=FaultQueue)
    config: FakeConfig = field(default_factory=FakeConfig)
    calls: Counter[str] = field(default_factory=Counter)
    windows: dict[str, list[float]] = field(default_factory=dict)  # Page: call times
    codes: CodeBook = field(default_factory=CodeBook)
    people: dict[str, list[str]] = field(default_factory=dict)  # sandbox user: their Page ids
    short_tokens: dict[str, str] = field(default_factory=dict)  # a code's user token: user
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(_FIRST_ID))

    def reset(self) -> None:
        for store in (self.tokens, self.user_pages, self.page_names, self.photos, self.videos):
            store.clear()
        for other in (self.posts, self.faults, self.calls, self.windows, self.codes,
                      self.people, self.short_tokens):  # fmt: skip
            other.clear()
        self.config = FakeConfig()

    def new_id(self) -> str:
        return str(next(self._ids))

    # --- tokens, quotas ----------------------------------------------------------------------

    def page_for_token(self, token: str, page_id: str) -> str:
        """The Page a token acts for; a token the fake never issued is adopted for `page_id`."""
        owner = self.tokens.setdefault(token, page_id)
        if owner != page_id:
            raise GraphError(
                403, 200, "(#200) The Page access token is for another Page than the one "
                "in this request.")  # fmt: skip
        self.page_names.setdefault(page_id, f"Sandbox Page {page_id}")
        return owner

    def add_page(self, page_id: str, name: str, token: str | None, user_token: str | None) -> str:
        self.page_names[page_id] = name
        token = token or secrets.token_urlsafe(32)
        self.tokens[token] = page_id
        if user_token:
            pages = self.user_pages.setdefault(user_token, [])
            if page_id not in pages:
                pages.append(page_id)
        return token

    def padded(self, kind: Literal["token", "accounts"], body: dict[str, Any]) -> dict[str, Any]:
        """The answer, with the `padding` `/_config` asks for on this kind of call."""
        size = self.config.padding.get(kind, 0)
        return {**body, "padding": "x" * size} if size > 0 else body

    def accounts(self, page_ids: list[str]) -> list[dict[str, Any]]:
        """`/me/accounts` entries for these Pages of a user: each with a fresh Page token."""
        listed = []
        for page_id in page_ids:
            token = secrets.token_urlsafe(32)
            self.tokens[token] = page_id
            listed.append({"access_token": token, "category": "Software", "id": page_id,
                           "name": self.page_names[page_id],
                           "tasks": ["ANALYZE", "ADVERTISE", "MODERATE", "CREATE_CONTENT",
                                     "MANAGE"]})  # fmt: skip
        return listed

    def count_call(self, page_id: str) -> dict[str, str]:
        """Counts one call for the Page; raises the Pages throttle (80001) past the limit."""
        now, limit = time.time(), self.config.rate_limit
        window = [t for t in self.windows.get(page_id, []) if t > now - RATE_WINDOW_SECS]
        window.append(now)
        self.windows[page_id] = window
        budget = limit or 4800
        regain = 0
        if limit is not None and len(window) > limit:
            regain = max(1, math.ceil((window[-limit - 1] + RATE_WINDOW_SECS - now) / 60))
        percent = min(100, math.floor(len(window) * 100 / budget))
        usage = {
            page_id: [
                {
                    "type": "pages",
                    "call_count": percent,
                    "total_cputime": 0,
                    "total_time": 0,
                    "estimated_time_to_regain_access": regain,
                }
            ]
        }
        headers = usage_headers(sum(map(len, self.windows.values())), budget * 4)
        headers["x-business-use-case-usage"] = json.dumps(usage, separators=(",", ":"))
        if regain:
            message = "(#80001) There have been too many calls to this Page account. Wait a bit "
            raise GraphError(400, 80001, message + "and try again.", headers=headers)
        return headers

    # --- photos, videos, posts ----------------------------------------------------------------

    def add_photo(self, page_id: str, url: str | None, size: int, caption: str, published: bool
                  ) -> Photo:  # fmt: skip
        photo = Photo(self.new_id(), page_id, url, size, published, caption, now())
        self.photos[photo.id] = photo
        if published:
            photo.post_id = self.add_post(page_id, caption, [photo.id], None).id
        return photo

    def add_video(self, page_id: str, url: str, size: int, description: str, title: str,
                  upload_error: str | None) -> Video:  # fmt: skip
        video = Video(self.new_id(), page_id, url, description, title, size, now())
        video.upload_error = upload_error
        if upload_error:
            video.state = "error"
        self.videos[video.id] = video
        return video

    def check(self, video: Video, fail: bool) -> Video:
        """One status read: `processing` `video_polls` times, then ready (or error)."""
        if video.state == "processing":
            video.polls += 1
            if fail:
                video.state = "error"
            elif video.polls > self.config.video_polls:
                video.state = "ready"
                if video.published and video.post_id is None:
                    self.publish_video(video)
        return video

    def settle(self) -> None:
        """Finishes processing the videos whose `video_seconds` have passed."""
        wait = self.config.video_seconds
        if wait is None:
            return
        for video in self.videos.values():
            if video.state == "processing" and (now() - video.created_at).total_seconds() >= wait:
                video.state = "ready"
                if video.published and video.post_id is None:
                    self.publish_video(video)

    def publish_video(self, video: Video) -> None:
        """Marks the video published; its post appears once it is ready (as on Facebook)."""
        if video.state == "error":
            raise invalid_parameter("(#100) The video failed processing and cannot be published.")
        video.published = True
        if video.state == "ready" and video.post_id is None:
            video.post_id = self.add_post(video.page_id, video.description, [], video.id).id

    def attachable(self, page_id: str, ids: list[str]) -> list[Photo]:
        """The unpublished photos named in `attached_media`, each usable in one post only."""
        if len(ids) > MAX_ATTACHED:
            raise invalid_parameter(f"(#100) attached_media may hold at most {MAX_ATTACHED} items")
        photos = []
        for index, media_id in enumerate(ids):
            photo = self.photos.get(media_id)
            if photo is None or photo.page_id != page_id or photo.published or photo.post_id:
                raise invalid_parameter(
                    f"(#100) param attached_media[{index}] has invalid media_fbid {media_id}"
                )
            photos.append(photo)
        return photos

    def add_post(self, page_id: str, message: str, photo_ids: list[str], video_id: str | None
                 ) -> Post:  # fmt: skip
        if len(message) > MAX_MESSAGE:
            raise invalid_parameter(f"(#100) The message may hold at most {MAX_MESSAGE} characters")
        if not message.strip() and not photo_ids and not video_id:
            raise invalid_parameter("(#100) Requires one of the params: message, link, "
                                    "attached_media")  # fmt: skip
        if self.config.reject_duplicates and message.strip() and not photo_ids and not video_id:
            last = next((p for p in reversed(self.posts) if p.page_id == page_id), None)
            if last is not None and last.message == message and not last.photo_ids:
                raise GraphError(400, 506, "Duplicate status message")
        post = Post(f"{page_id}_{self.new_id()}", page_id, message, photo_ids, video_id, now())
        for photo_id in photo_ids:
            self.photos[photo_id].post_id = post.id
        self.posts.append(post)
        return post

    def find_post(self, post_id: str) -> Post | None:
        return next((post for post in self.posts if post.id == post_id), None)

    def owned(self, object_id: str) -> Post | Photo | Video:
        found: Post | Photo | Video | None = self.find_post(object_id)
        found = found or self.photos.get(object_id) or self.videos.get(object_id)
        if found is None:
            raise not_found(object_id)
        return found

    def recent_posts(self, page_id: str, since: float | None, until: float | None) -> list[Post]:
        """The Page's posts, newest first."""
        return [
            post
            for post in reversed(self.posts)
            if post.page_id == page_id
            and (since is None or post.created_at.timestamp() >= since)
            and (until is None or post.created_at.timestamp() <= until)
        ]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
