"""The LinkedIn fake's memory: members and tokens, images, videos, posts, quotas and faults.

Every method is synchronous, so under asyncio no two requests interleave inside one and the
state needs no lock. Its errors and faults are in `linkedin_faults.py`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import itertools
import re
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field

from soku.sandbox.common import FaultQueue
from soku.sandbox.consent import CodeBook
from soku.sandbox.linkedin_faults import FaultSpec, api_error, fault_error, oauth_error

PART_BYTES = 4 * 1024 * 1024  # linkedin.md: video parts of 4 MB, the last one smaller
MAX_VIDEO_BYTES = 500 * 1024 * 1024  # build to 500 MB (linkedin.md "Video limits")
MAX_PIXELS = 36_152_320
ACCESS_LIFETIME_SECS = 60 * 86400  # linkedin.md "Lifetimes"
REFRESH_LIFETIME_SECS = 365 * 86400
IMAGE_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif"}


class FakeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(default=0, ge=0)
    oldest_version: str = Field(default="202511", pattern=r"^[0-9]{6}$")  # older: 426
    require_restli_header: bool = True  # (U) without it LinkedIn speaks Rest.li 1.0
    part_bytes: int = Field(default=PART_BYTES, ge=1)
    upload_token: bool = True  # False: init answers an empty uploadToken, as some fixtures show
    image_polls: int = Field(default=0, ge=0)  # GETs an image stays PROCESSING after upload
    video_polls: int = Field(default=1, ge=0)  # GETs a video stays PROCESSING after finalize
    daily_limit: int | None = Field(default=None, ge=1)  # calls per member, kind and UTC day
    posts_per_day: int = Field(default=150, ge=1)  # (U) reported by aggregators
    finder_allowed: bool = True  # False: the author finder answers 403 (r_member_social)
    truncate_unescaped: bool = True  # cut the commentary at an unescaped reserved character
    post_urn_kind: Literal["share", "ugcPost"] = "share"
    token_lifetime_secs: int = Field(default=ACCESS_LIFETIME_SECS, ge=0)
    refresh_lifetime_secs: int = Field(default=REFRESH_LIFETIME_SECS, ge=0)
    client_id: str | None = None  # when set, the token endpoint wants this client and secret
    client_secret: str | None = None
    code_lifetime_secs: float = Field(default=1800, ge=0)  # (U) not in linkedin.md


@dataclass
class Member:
    id: str  # the person id: the author URN is urn:li:person:{id}
    name: str
    provisional: bool = False  # made up for an unknown token: becomes whoever it acts as

    @property
    def urn(self) -> str:
        return f"urn:li:person:{self.id}"


@dataclass
class Media:
    urn: str
    owner: str
    user_id: str
    kind: Literal["image", "video"]
    size: int = 0  # fileSizeBytes announced (videos) or bytes received (images)
    token: str = ""
    status: str = "WAITING_UPLOAD"  # then PROCESSING, AVAILABLE or PROCESSING_FAILED
    sha256: str = ""
    media_type: str = ""
    dimensions: tuple[int, int] = (0, 0)
    parts: list[tuple[int, int]] = field(default_factory=list)  # (firstByte, lastByte)
    received: dict[int, tuple[str, str]] = field(default_factory=dict)  # index: etag, sha256
    puts: list[int] = field(default_factory=list)  # part indexes as they arrived
    polls: int = 0
    failure: str = ""
    hasher: Any = field(default_factory=hashlib.sha256, repr=False)  # the parts, in order
    hashed: int = 0

    def describe(self) -> dict[str, Any]:
        view: dict[str, Any] = {"id": self.urn, "kind": self.kind, "status": self.status,
                                "bytes": self.size, "sha256": self.sha256}  # fmt: skip
        if self.kind == "image":
            view.update(media_type=self.media_type, dimensions=list(self.dimensions))
        else:
            view["parts"] = [self.received[i][1] for i in sorted(self.received)]
            view["puts"] = list(self.puts)
        return view


@dataclass
class Post:
    urn: str
    author: str
    user_id: str
    commentary: str
    body: dict[str, Any]
    media_urns: list[str]
    created_ms: int
    visible: bool  # False: accepted with media not AVAILABLE, so never shown (linkedin.md)


@dataclass
class FakeState:
    """All the fake knows. Ids keep counting across resets, so no id is ever reused."""

    members: dict[str, Member] = field(default_factory=dict)
    tokens: dict[str, tuple[str, float | None]] = field(default_factory=dict)  # member, expiry
    refresh_tokens: dict[str, tuple[str, float]] = field(default_factory=dict)
    media: dict[str, Media] = field(default_factory=dict)
    uploads: dict[str, tuple[str, int]] = field(default_factory=dict)  # token: media, part
    posts: list[Post] = field(default_factory=list)
    faults: FaultQueue[FaultSpec] = field(default_factory=FaultQueue)
    config: FakeConfig = field(default_factory=FakeConfig)
    calls: Counter[str] = field(default_factory=Counter)
    daily: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    codes: CodeBook = field(default_factory=CodeBook)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def reset(self) -> None:
        for store in (self.members, self.tokens, self.refresh_tokens, self.media, self.uploads):
            store.clear()
        for other in (self.posts, self.faults, self.calls, self.daily, self.codes):
            other.clear()
        self.config = FakeConfig()

    def new_number(self) -> str:
        """A 19-digit activity-like number, growing with time."""
        return str(7_000_000_000_000_000_000 + int(time.time() * 1000) * 1000 + next(self._seq))

    # --- members, tokens, quotas ---------------------------------------------------------

    def add_member(
        self, member_id: str | None = None, name: str | None = None, provisional: bool = False
    ) -> Member:
        member_id = member_id or "sbx" + secrets.token_hex(5)
        name = name or f"Sandbox {member_id}"
        member = self.members[member_id] = Member(member_id, name, provisional)
        return member

    def member_for_token(self, token: str) -> Member:
        """A token the fake never issued is adopted: it names a new sandbox member."""
        if token not in self.tokens:
            self.tokens[token] = (self.add_member(provisional=True).id, None)
        member_id, expires_at = self.tokens[token]
        if expires_at is not None and time.time() >= expires_at:
            raise fault_error("token_expired")
        return self.members[member_id]

    def issue(self, member_id: str, refresh_token: str | None = None) -> dict[str, Any]:
        """A token answer; a refresh keeps its refresh token, whose lifetime keeps running."""
        now = time.time()
        if refresh_token is None:
            refresh_token = secrets.token_urlsafe(32)
            self.refresh_tokens[refresh_token] = (
                member_id,
                now + self.config.refresh_lifetime_secs,
            )
        access, lifetime = secrets.token_urlsafe(32), self.config.token_lifetime_secs
        self.tokens[access] = (member_id, now + lifetime)
        refresh_left = max(int(self.refresh_tokens[refresh_token][1] - now), 0)
        return {"access_token": access, "expires_in": lifetime, "refresh_token": refresh_token,
                "refresh_token_expires_in": refresh_left,
                "scope": "openid,profile,w_member_social"}  # fmt: skip

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        if not refresh_token:
            raise oauth_error(
                400, "invalid_request", "A required parameter refresh_token is missing"
            )
        if refresh_token not in self.refresh_tokens:  # adopted, like bearer tokens
            lifetime = self.config.refresh_lifetime_secs
            member_id = self.add_member(provisional=True).id
            self.refresh_tokens[refresh_token] = (member_id, time.time() + lifetime)
        member_id, expires_at = self.refresh_tokens[refresh_token]
        if time.time() >= expires_at:
            description = (
                "The provided authorization grant or refresh token is invalid, expired or revoked"
            )
            raise oauth_error(400, "invalid_request", description)
        return self.issue(member_id, refresh_token)

    def count_call(self, member_id: str, kind: str) -> None:
        """Counts one call against the member's UTC day; 429 past the configured limit."""
        day = dt.datetime.now(dt.UTC).date().isoformat()
        self.daily[(member_id, kind, day)] += 1
        limit = self.config.daily_limit
        if kind == "publish":
            limit = min(limit or self.config.posts_per_day, self.config.posts_per_day)
        if limit is not None and self.daily[(member_id, kind, day)] > limit:
            raise fault_error("rate_limited")

    def may_act_as(self, member: Member, owner: str) -> Member:
        """A member acts as themself or (sandbox) any organization; never as another member.

        A member made up for an unknown token first acting as a person becomes that person,
        so a sandbox account's own id and made-up tokens agree. Returns the acting member.
        """
        if owner == member.urn or owner.startswith("urn:li:organization:"):
            return member
        if member.provisional and owner.startswith("urn:li:person:"):
            return self.claim(member, owner.removeprefix("urn:li:person:"))
        message = f"Member {member.urn} is not permitted to act as {owner}"
        raise api_error(403, message, 100)

    def claim(self, member: Member, person_id: str) -> Member:
        """Moves a made-up member's tokens and uploads to the person it says it is."""
        target = self.members.get(person_id) or self.add_member(person_id)
        for token, (owner, expires_at) in list(self.tokens.items()):
            if owner == member.id:
                self.tokens[token] = (target.id, expires_at)
        for token, (owner, expires) in list(self.refresh_tokens.items()):
            if owner == member.id:
                self.refresh_tokens[token] = (target.id, expires)
        things: list[Media | Post] = [*self.media.values(), *self.posts]
        for thing in things:
            thing.user_id = target.id if thing.user_id == member.id else thing.user_id
        del self.members[member.id]
        return target

    # --- media ---------------------------------------------------------------------------

    def new_media(self, member: Member, owner: str, kind: Literal["image", "video"]) -> Media:
        member = self.may_act_as(member, owner)
        prefix = "C4E" if kind == "image" else "D4E"
        urn = f"urn:li:{kind}:{prefix}{secrets.token_hex(8).upper()}"
        item = self.media[urn] = Media(urn, owner, member.id, kind, token=secrets.token_hex(12))
        return item

    def owned(self, member: Member, urn: str, kind: str) -> Media:
        item = self.media.get(urn)
        if item is None or item.kind != kind:
            raise api_error(404, f"{kind.capitalize()} {urn} does not exist")
        if item.user_id != member.id:
            raise api_error(403, f"Accessing this {kind} resource is forbidden. Please check "
                                 "your permissions for this resource")  # fmt: skip
        return item

    def upload_key(self, item: Media, part: int) -> str:
        """The opaque tail of an upload URL, naming the media and the part it receives."""
        key = secrets.token_urlsafe(18)
        self.uploads[key] = (item.urn, part)
        return key

    def plan_parts(self, item: Media, size: int) -> None:
        step = self.config.part_bytes
        item.size = size
        item.parts = [(start, min(start + step, size) - 1) for start in range(0, size, step)]

    def receive_image(self, item: Media, data: bytes) -> None:
        item.size, item.sha256 = len(data), hashlib.sha256(data).hexdigest()
        try:
            with Image.open(io.BytesIO(data)) as image:
                item.media_type = IMAGE_FORMATS.get(image.format or "", "")
                item.dimensions = image.size
        except (UnidentifiedImageError, OSError):
            item.media_type = ""
        pixels = item.dimensions[0] * item.dimensions[1]
        usable = item.media_type and pixels < MAX_PIXELS
        item.status = "PROCESSING" if usable else "PROCESSING_FAILED"
        item.failure = "" if usable else "Images must be JPG, GIF or PNG under 36,152,320 pixels"

    def receive_part(self, item: Media, index: int, data: bytes) -> str:
        first, last = item.parts[index]
        if item.status != "WAITING_UPLOAD":
            raise api_error(400, "The upload is already finalized")
        if len(data) != last - first + 1:
            message = f"Part {index} must carry bytes {first}-{last} ({last - first + 1} bytes)"
            raise api_error(400, message)
        digest = hashlib.sha256(data).hexdigest()
        etag = f"/{item.urn.rpartition(':')[2]}/{index}/{digest[:16]}"
        item.received[index] = (etag, digest)
        if index == item.hashed:  # the whole file's digest, when parts come in order
            item.hasher.update(data)
            item.hashed += 1
        item.puts.append(index)
        return etag

    def finalize(self, item: Media, token: str, part_ids: list[str]) -> None:
        if item.status != "WAITING_UPLOAD":
            raise api_error(400, f"Video {item.urn} is already finalized")
        expected = item.token if self.config.upload_token else ""
        if token != expected:
            raise api_error(400, "The uploadToken does not match this upload")
        if sorted(item.received) != list(range(len(item.parts))):
            raise api_error(400, "Not all parts of the video were uploaded")
        if part_ids != [item.received[i][0] for i in range(len(item.parts))]:
            raise api_error(400, "uploadedPartIds must list every part's ETag, in order")
        item.sha256 = item.hasher.hexdigest() if item.hashed == len(item.parts) else ""
        item.status = "PROCESSING"

    def poll(self, item: Media, fail: bool) -> None:
        """One status read: PROCESSING a configured number of times, then AVAILABLE."""
        if item.status != "PROCESSING":
            return
        if fail:
            item.status, item.failure = "PROCESSING_FAILED", "The media could not be processed"
            return
        item.polls += 1
        polls = self.config.image_polls if item.kind == "image" else self.config.video_polls
        if item.polls > polls:
            item.status = "AVAILABLE"

    # --- posts ---------------------------------------------------------------------------

    def add_post(
        self, member: Member, body: dict[str, Any], commentary: str, media_urns: list[str]
    ) -> Post:
        author = str(body["author"])
        member = self.may_act_as(member, author)
        items = [self.media.get(urn) for urn in media_urns]
        if any(item is None or item.owner != author for item in items):
            raise api_error(422, "The media must be uploaded by the post's author",
                            errorDetailType="com.linkedin.common.error.BadRequest")  # fmt: skip
        for post in self.posts:
            if post.author == author and commentary and post.commentary == commentary:
                raise fault_error("duplicate_content", urn=post.urn)
        visible = all(item is not None and item.status == "AVAILABLE" for item in items)
        urn = f"urn:li:{self.config.post_urn_kind}:{self.new_number()}"
        post = Post(urn, author, member.id, commentary, body, media_urns, now_ms(), visible)
        self.posts.append(post)
        return post

    def by_author(self, author: str) -> list[Post]:
        """The author's posts, newest first (sortBy LAST_MODIFIED; posts are never edited)."""
        return [post for post in reversed(self.posts) if post.author == author]

    def find_post(self, urn: str) -> Post | None:
        return next((post for post in self.posts if post.urn == urn), None)


def now_ms() -> int:
    return int(time.time() * 1000)


RESERVED = frozenset("\\|{}@[]()<>#*_~")
_MENTION = re.compile(r"@\[([^\]\\]*)\]\((urn:li:[a-zA-Z]+:[^)\\]+)\)")
_HASHTAG = re.compile(r"#[^\W\d_]\w*")


def read_little_text(commentary: str, truncate: bool) -> str:
    """The text a reader sees: escapes undone, mentions shown by name, hashtags kept.

    Any other reserved character left unescaped ends the text there when `truncate` is on,
    as LinkedIn silently cuts such commentary while still answering 201 (linkedin.md).
    """
    shown, index = [], 0
    while index < len(commentary):
        char, rest = commentary[index], commentary[index:]
        if char == "\\" and index + 1 < len(commentary) and commentary[index + 1] in RESERVED:
            shown.append(commentary[index + 1])
            index += 2
        elif (mention := _MENTION.match(rest)) is not None:
            shown.append(mention.group(1))
            index += mention.end()
        elif (hashtag := _HASHTAG.match(rest)) is not None:
            shown.append(hashtag.group())
            index += hashtag.end()
        elif char in RESERVED and truncate:
            break
        else:
            shown.append(char)
            index += 1
    return "".join(shown)
