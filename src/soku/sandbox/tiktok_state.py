"""The TikTok fake's memory: creators and tokens, publishes and their uploads, faults, knobs.

Every method is synchronous, so under asyncio no two requests interleave inside one: the state
needs no lock. Errors are TikTok's envelope (`TikTokError`); where tiktok.md does not give a
refusal's exact status or code, the one used is marked "(U)" and is a guess.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import secrets
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from soku.sandbox.common import FaultQueue, Fetched
from soku.sandbox.consent import CodeBook
from soku.sandbox.fault_gate import InjectedFault

# `publish`: the call that makes the post (a photo post's init, a video's last chunk)
CallKind = Literal[
    "creator_info", "video_init", "upload", "publish", "status", "token", "user_info"
]
CALL_KINDS: tuple[CallKind, ...] = get_args(CallKind)
LEVELS = ("PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "FOLLOWER_OF_CREATOR", "SELF_ONLY")
MB = 1024 * 1024
FIRST_ID = 7_300_000_000_000_000_000  # post ids look like TikTok's 19-digit ones
# TikTok's codes and their HTTP statuses (tiktok.md "Error model"; the posting codes' 403 is U).
CODES = {
    "access_token_invalid": (401, "The access token is invalid or not found in the request."),
    "scope_not_authorized": (401, "The user did not authorize the scope required."),
    "scope_permission_missed": (401, "The app does not have the permission for this scope."),
    "invalid_params": (400, "The request parameters are invalid."),
    "invalid_file_upload": (400, "The file upload is invalid."),
    "rate_limit_exceeded": (429, "The API rate limit was exceeded."),
    "internal_error": (500, "Something went wrong; try again later."),
    "spam_risk_too_many_posts": (403, "The creator has reached the daily post cap."),
    "spam_risk_user_banned_from_posting": (403, "The creator is banned from posting."),
    "spam_risk_text": (403, "The text was flagged as spam risk."),
    "reached_active_user_cap": (403, "The app has reached its active creator cap."),
    "unaudited_client_can_only_post_to_private_accounts": (
        403, "An unaudited client can only post to private accounts."),
    "url_ownership_unverified": (403, "The URL's domain or prefix is not verified."),
    "privacy_level_option_mismatch": (403, "The privacy level is not offered to the creator."),
}  # fmt: skip
ALIASES = {"token_expired": "access_token_invalid", "server_error": "internal_error",
           "rate_limited": "rate_limit_exceeded"}  # fmt: skip
_BY_STATUS = {401: "access_token_invalid", 429: "rate_limit_exceeded", 400: "invalid_params",
              403: "spam_risk_too_many_posts"}  # fmt: skip


class TikTokError(Exception):
    """An answer in TikTok's envelope: `{"data": {}, "error": {code, message, log_id}}`."""

    def __init__(self, code: str, message: str | None = None, status: int | None = None):
        known_status, known_message = CODES.get(code, (400, "The request was refused."))
        super().__init__(message or known_message)
        self.status = status or known_status
        self.body = {"data": {}, "error": {"code": code, "message": message or known_message,
                                           "log_id": log_id()}}  # fmt: skip
        self.headers: dict[str, str] = {}


class OAuthError(Exception):
    """The token endpoint's error: `{"error", "error_description", "log_id"}` (status U: 400)."""

    def __init__(self, code: str, description: str, status: int = 400):
        super().__init__(description)
        self.status = status
        self.body = {"error": code, "error_description": description, "log_id": log_id()}


def log_id() -> str:
    return time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(10).upper()


class FaultSpec(InjectedFault):
    """One injected fault. `error_code` is a TikTok code (`CODES`, or `token_expired`,
    `server_error`, `rate_limited`), or on `status` `processing_failed`: the publish ends
    FAILED with `fail_reason`."""

    on: Literal[
        "creator_info", "video_init", "upload", "publish", "status", "token", "user_info",
        "any",
    ]  # fmt: skip
    fail_reason: str = "internal"

    def error(self, kind: str = "") -> Exception | None:
        """TikTok's answer follows the call the fault is `on`, not the `kind` it hits."""
        if self.status is None and self.error_code is None:
            return None
        name = ALIASES.get(self.error_code or "", self.error_code or "")
        if not name:
            name = "internal_error" if (self.status or 0) >= 500 else _BY_STATUS.get(
                self.status or 0, "invalid_params")  # fmt: skip
        if self.on == "token":
            return OAuthError(name, f"Injected fault: {name}", self.status or 400)
        error = TikTokError(name, status=self.status)
        if self.retry_after is not None:
            error.headers["retry-after"] = str(math.ceil(self.retry_after))
        return error


class FakeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(default=0, ge=0)
    min_chunk_bytes: int = Field(default=5 * MB, ge=1)  # 5 MB (media transfer guide)
    max_chunk_bytes: int = Field(default=64 * MB, ge=1)
    max_last_chunk_bytes: int = Field(default=128 * MB, ge=1)
    chunk_status: int = Field(default=206, ge=200, le=299)  # (U) a chunk before the last
    final_chunk_status: int = Field(default=201, ge=200, le=299)  # (U) the last chunk
    processing_polls: int = Field(default=0, ge=0)  # status reads still processing
    moderation_polls: int = Field(default=0, ge=0)  # reads PUBLISH_COMPLETE without an id
    private_account: bool = False  # no PUBLIC_TO_EVERYONE among the privacy options
    audited: bool = True  # unaudited: private accounts only, every post SELF_ONLY
    verified_prefixes: list[str] = Field(default_factory=list)  # empty: every URL verified
    require_https: bool = False  # (3P) pulled URLs must be https
    fetch_media: bool = True  # pull photos and videos from their URLs, as TikTok does
    posts_per_day: int = Field(default=15, ge=0)  # (U) "typically around 15"
    init_per_minute: int = Field(default=6, ge=0)  # per token (tiktok.md)
    creator_info_per_minute: int = Field(default=20, ge=0)
    status_per_minute: int = Field(default=30, ge=0)
    max_video_post_duration_sec: int = Field(default=600, ge=1)
    token_lifetime_secs: int = Field(default=86400, ge=0)  # 24 h
    refresh_lifetime_secs: int = Field(default=365 * 86400, ge=0)
    code_lifetime_secs: float = Field(default=600, ge=0)  # (U)
    client_key: str | None = None  # when set, the token endpoint wants this app
    client_secret: str | None = None


@dataclass
class Creator:
    open_id: str
    username: str
    nickname: str


@dataclass
class Publish:
    """One init call and what followed: an upload (or a pull), processing, a post."""

    id: str
    open_id: str
    kind: Literal["VIDEO", "PHOTO"]
    source: str
    post_info: dict[str, Any]
    created_at: float
    total_bytes: int = 0
    chunk_size: int = 0
    chunk_count: int = 0
    upload_token: str = ""
    received: int = 0
    chunks: dict[int, int] = field(default_factory=dict)  # first byte → size received
    digest: Any = field(default_factory=hashlib.sha256)
    urls: list[str] = field(default_factory=list)
    fetched: list[Fetched] = field(default_factory=list)
    fail_reason: str | None = None
    polls: int = 0
    post_id: int | None = None

    @property
    def uploaded(self) -> bool:
        return self.source != "FILE_UPLOAD" or self.received >= self.total_bytes


@dataclass
class FakeState:
    """All the fake knows. Ids keep counting across resets, so no id is ever reused."""

    creators: dict[str, Creator] = field(default_factory=dict)
    tokens: dict[str, tuple[str, float | None]] = field(default_factory=dict)
    refresh_tokens: dict[str, tuple[str, float | None]] = field(default_factory=dict)
    publishes: dict[str, Publish] = field(default_factory=dict)
    faults: FaultQueue[FaultSpec] = field(default_factory=FaultQueue)
    config: FakeConfig = field(default_factory=FakeConfig)
    calls: Counter[str] = field(default_factory=Counter)
    codes: CodeBook = field(default_factory=CodeBook)
    windows: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    unpaired: list[str] = field(default_factory=list)  # creators adopted from a bearer token
    _ids: itertools.count[int] = field(
        default_factory=lambda: itertools.count(FIRST_ID + secrets.randbelow(10**9))
    )

    def reset(self) -> None:
        for store in (self.creators, self.tokens, self.refresh_tokens, self.publishes):
            store.clear()
        for other in (self.faults, self.calls, self.codes, self.windows, self.unpaired):
            other.clear()
        self.config = FakeConfig()

    def new_id(self) -> int:
        return next(self._ids)

    def add_creator(self, username: str | None = None, open_id: str | None = None) -> Creator:
        open_id = open_id or f"-000{secrets.token_hex(12)}"
        username = username or f"sandbox_{open_id[-6:]}"
        creator = self.creators[open_id] = Creator(open_id, username, username.title())
        return creator

    def named(self, username: str) -> Creator:
        found = next((c for c in self.creators.values() if c.username == username), None)
        return found or self.add_creator(username)

    def creator_for(self, token: str) -> Creator:
        """A token the fake never issued is adopted: it names a new sandbox creator."""
        if not token:
            raise TikTokError("access_token_invalid")
        if token not in self.tokens:
            self.tokens[token] = (self.add_creator().open_id, None)
            self.unpaired.append(self.tokens[token][0])
        open_id, expires_at = self.tokens[token]
        if expires_at is not None and time.time() >= expires_at:
            raise TikTokError("access_token_invalid", "The access token has expired.")
        return self.creators[open_id]

    def issue(self, open_id: str, scope: str) -> dict[str, Any]:
        """A token answer for the creator (24 h access, 365 days refresh)."""
        config, now = self.config, time.time()
        access, refresh = "act." + secrets.token_urlsafe(30), "rft." + secrets.token_urlsafe(30)
        self.tokens[access] = (open_id, now + config.token_lifetime_secs)
        self.refresh_tokens[refresh] = (open_id, now + config.refresh_lifetime_secs)
        return {"access_token": access, "expires_in": config.token_lifetime_secs,
                "open_id": open_id, "refresh_token": refresh,
                "refresh_expires_in": config.refresh_lifetime_secs, "scope": scope,
                "token_type": "Bearer"}  # fmt: skip

    def refresh(self, token: str) -> dict[str, Any]:
        """A new access token; the refresh token stays (U: whether TikTok rotates it).

        One the fake never issued is adopted, like bearer tokens: for the creator adopted last
        from a bearer token and not paired with a refresh token yet (a sandbox account's
        made-up pair: its access token is used, and refused, before its refresh token), else
        for a new creator."""
        if not token:
            raise OAuthError("invalid_request", "refresh_token is required.")
        if token not in self.refresh_tokens:
            lifetime, unpaired = self.config.refresh_lifetime_secs, self.unpaired
            open_id = unpaired.pop() if unpaired else self.add_creator().open_id
            self.refresh_tokens[token] = (open_id, time.time() + lifetime)
        found = self.refresh_tokens.get(token)
        if found is None or (found[1] is not None and time.time() >= found[1]):
            raise OAuthError("invalid_grant", "Refresh token is invalid or expired.")
        access = "act." + secrets.token_urlsafe(30)
        lifetime = self.config.token_lifetime_secs
        self.tokens[access] = (found[0], time.time() + lifetime)
        left = int(found[1] - time.time()) if found[1] is not None else 0
        return {"access_token": access, "expires_in": lifetime, "open_id": found[0],
                "refresh_token": token, "refresh_expires_in": left,
                "scope": "user.info.basic,video.publish", "token_type": "Bearer"}  # fmt: skip

    def throttle(self, token: str, kind: str, per_minute: int) -> None:
        """TikTok's per-token, per-minute limits: 429 `rate_limit_exceeded` over one."""
        window = self.windows.setdefault((token, kind), deque())
        now = time.time()
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= per_minute:
            error = TikTokError("rate_limit_exceeded")
            oldest = window[0] if window else now
            error.headers["retry-after"] = str(max(1, math.ceil(oldest + 60 - now)))
            raise error
        window.append(now)

    def privacy_options(self) -> list[str]:
        private = self.config.private_account or not self.config.audited
        return [level for level in LEVELS if not (private and level == "PUBLIC_TO_EVERYONE")]

    def posted_today(self, open_id: str) -> int:
        since = time.time() - 86400
        return sum(1 for p in self.publishes.values() if p.open_id == open_id
                   and p.created_at > since)  # fmt: skip

    def publish_of(self, creator: Creator, publish_id: str) -> Publish:
        found = self.publishes.get(publish_id)
        if found is None or found.open_id != creator.open_id:
            raise TikTokError("invalid_params", f"publish_id {publish_id!r} was not found.")
        return found
