"""The Snapchat fake's memory: Public Profiles and tokens, media containers, Stories, Spotlights.

Every method is synchronous, so under asyncio no two requests interleave inside one and the
state needs no lock. Its errors and faults are in `snapchat_faults.py`, what it checks of an
upload in `snapchat_checks.py`.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from soku.sandbox.common import FaultQueue
from soku.sandbox.consent import CodeBook
from soku.sandbox.snapchat_faults import FaultSpec, api_error, fault_error, oauth_error

MB = 1024 * 1024


class FakeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(default=0, ge=0)
    token_lifetime_secs: int = Field(default=3600, ge=0)  # (U) "about 3600 s"
    code_lifetime_secs: float = Field(default=600, ge=0)  # (U) not in snapchat.md
    client_id: str | None = None  # when set, the token endpoint wants this client and secret
    client_secret: str | None = None
    part_max_bytes: int = Field(default=32 * MB, ge=16)  # a part's ciphertext (snapchat.md)
    max_parts: int = Field(default=35, ge=1)  # (U) "one implementation says up to 35"
    max_total_bytes: int = Field(default=1024 * MB, ge=1)  # (C) 1 GB in all
    max_image_bytes: int = Field(default=20 * MB, ge=1)  # Story image, JPEG or PNG
    video_seconds: tuple[float, float] = (5.0, 60.0)  # Story video, MP4 (C, 3P)
    video_min_size: tuple[int, int] = (540, 960)
    media_lifetime_secs: float = Field(default=86400, ge=0)  # a container lives 24 h (O)
    processing_answers: int = Field(default=0, ge=0)  # post calls answered MEDIA_PROCESSING
    story_id_in_answer: bool = True  # (U) False: a post's answer names no story_id
    accept_bare_token: bool = False  # (U) `Authorization: <token>`, as GetStarted prints it
    one_post_per_media: bool = True  # (U) a media posted once: MEDIA_POSTING_ALREADY_IN_PROGRESS


@dataclass
class Profile:
    id: str  # a UUID, as `my_profile` names it
    username: str  # snap_user_name
    display_name: str
    provisional: bool = False  # made up for an unknown token: becomes the profile it posts as

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "display_name": self.display_name,
                "snap_user_name": self.username, "organization_id": str(uuid.uuid5(
                    uuid.NAMESPACE_URL, f"sandbox-org/{self.id}")), "logo_urls": {}}  # fmt: skip


@dataclass
class Media:
    id: str
    profile_id: str
    type: Literal["IMAGE", "VIDEO"]
    name: str
    key: bytes
    iv: bytes
    created_at: float
    parts: dict[int, bytes] = field(default_factory=dict, repr=False)  # until FINALIZE
    adds: list[int] = field(default_factory=list)  # part numbers as they arrived
    status: str = "PENDING_UPLOAD"  # then READY
    finalized_at: float = 0.0
    processing_left: int = 0
    posted: bool = False
    found: dict[str, Any] = field(default_factory=dict)  # what the checks read of the file

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "name": self.name, "status": self.status,
                "parts": len(self.adds), "adds": list(self.adds), **self.found}  # fmt: skip


@dataclass
class Post:
    id: str
    kind: Literal["story", "spotlight"]
    profile_id: str
    media_id: str
    body: dict[str, Any]
    created_at: float


@dataclass
class FakeState:
    """All the fake knows; ids are UUIDs, so none is ever reused."""

    profiles: dict[str, Profile] = field(default_factory=dict)
    tokens: dict[str, tuple[str, float | None]] = field(default_factory=dict)  # profile, expiry
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # refresh token: profile
    media: dict[str, Media] = field(default_factory=dict)
    posts: list[Post] = field(default_factory=list)
    faults: FaultQueue[FaultSpec] = field(default_factory=FaultQueue)
    config: FakeConfig = field(default_factory=FakeConfig)
    calls: Counter[str] = field(default_factory=Counter)
    codes: CodeBook = field(default_factory=CodeBook)

    def reset(self) -> None:
        for store in (self.profiles, self.tokens, self.refresh_tokens, self.media):
            store.clear()
        for other in (self.posts, self.faults, self.calls, self.codes):
            other.clear()
        self.config = FakeConfig()

    # --- profiles and tokens -------------------------------------------------------------

    def add_profile(
        self, profile_id: str | None = None, username: str | None = None, provisional: bool = False
    ) -> Profile:
        profile_id = profile_id or str(uuid.uuid4())
        username = username or f"sandbox_{secrets.token_hex(4)}"
        profile = Profile(profile_id, username, f"Sandbox {username}", provisional)
        self.profiles[profile_id] = profile
        return profile

    def by_login(self, login: str) -> Profile:
        """The profile a sandbox user signs in as on the consent page (made on first use)."""
        found = next((p for p in self.profiles.values() if p.username == login), None)
        return found or self.add_profile(username=login)

    def profile_for_token(self, token: str) -> Profile:
        """A token the fake never issued is adopted: it names a new sandbox profile."""
        if token not in self.tokens:
            self.tokens[token] = (self.add_profile(provisional=True).id, None)
        profile_id, expires_at = self.tokens[token]
        if expires_at is not None and time.time() >= expires_at:
            raise fault_error("token_expired")
        return self.profiles[profile_id]

    def issue(self, profile_id: str, refresh_token: str | None = None) -> dict[str, Any]:
        """A token answer; a refresh keeps its refresh token (rotation is not documented)."""
        if refresh_token is None:
            refresh_token = secrets.token_urlsafe(32)
            self.refresh_tokens[refresh_token] = profile_id
        access, lifetime = secrets.token_urlsafe(32), self.config.token_lifetime_secs
        self.tokens[access] = (profile_id, time.time() + lifetime)
        return {"access_token": access, "token_type": "Bearer", "expires_in": lifetime,
                "refresh_token": refresh_token, "scope": "snapchat-profile-api"}  # fmt: skip

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        if not refresh_token:
            raise oauth_error(400, "invalid_request", "Missing refresh_token")
        if refresh_token not in self.refresh_tokens:  # adopted, like bearer tokens
            self.refresh_tokens[refresh_token] = self.add_profile(provisional=True).id
        return self.issue(self.refresh_tokens[refresh_token], refresh_token)

    def acting(self, profile: Profile, profile_id: str) -> Profile:
        """The profile of the path, which the token must be for. A made-up profile (an
        adopted token) becomes the one it first posts as, so a sandbox account's own id and
        made-up tokens agree."""
        if profile.id == profile_id:
            return profile
        if profile.provisional:
            return self._claim(profile, profile_id)
        message = "You do not have access to this Public Profile"
        raise api_error(403, "FORBIDDEN", message, f"token of {profile.id} used for {profile_id}")

    def _claim(self, made_up: Profile, profile_id: str) -> Profile:
        target = self.profiles.get(profile_id) or self.add_profile(profile_id)
        for token, (owner, expires_at) in list(self.tokens.items()):
            if owner == made_up.id:
                self.tokens[token] = (target.id, expires_at)
        for token, owner in list(self.refresh_tokens.items()):
            if owner == made_up.id:
                self.refresh_tokens[token] = target.id
        for item in self.media.values():
            item.profile_id = target.id if item.profile_id == made_up.id else item.profile_id
        del self.profiles[made_up.id]
        return target

    # --- media and posts ---------------------------------------------------------------------

    def new_media(self, profile: Profile, kind: Literal["IMAGE", "VIDEO"], name: str,
                  key: bytes, iv: bytes) -> Media:  # fmt: skip
        media_id = str(uuid.uuid4())
        item = Media(media_id, profile.id, kind, name, key, iv, time.time())
        self.media[media_id] = item
        return item

    def owned(self, profile: Profile, media_id: str) -> Media:
        item = self.media.get(media_id)
        if item is None or item.profile_id != profile.id:
            raise api_error(404, "MEDIA_NOT_FOUND", "Media not found", f"no media {media_id}")
        if time.time() - item.created_at > self.config.media_lifetime_secs:
            raise api_error(400, "MEDIA_EXPIRED", "The media has expired")
        return item

    def add_post(
        self, profile: Profile, kind: Literal["story", "spotlight"], media: Media, body: Any
    ) -> Post:
        media.posted = True
        post = Post(str(uuid.uuid4()), kind, profile.id, media.id, dict(body), time.time())
        self.posts.append(post)
        return post
