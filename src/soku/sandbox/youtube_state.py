"""The YouTube fake's memory: channels and tokens, upload sessions, videos, quotas and faults.

Every method is synchronous, so under asyncio no two requests interleave inside one and the
state needs no lock. Its errors and faults are in `youtube_faults.py`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from soku.sandbox.common import FaultQueue
from soku.sandbox.consent import CodeBook
from soku.sandbox.youtube_faults import FaultSpec, api_error, fault_error, oauth_error

ACCESS_LIFETIME_SECS = 3599  # youtube.md: Google answers expires_in of about 3599
QUOTA_UNITS, INSERT_UNITS, INSERT_CALLS = 10_000, 1600, 100  # youtube.md "Quota" (conflicting)


class FakeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(default=0, ge=0)
    # (U) the two documented quota models: 1600 of 10,000 units, or 100 insert calls, a day
    quota_model: Literal["units", "calls"] = "calls"
    uploads_per_day: int | None = Field(default=None, ge=1)  # channel cap: uploadLimitExceeded
    require_quantum: bool = True  # (U) chunks a multiple of 256 KiB, the last excepted
    complete_status: Literal[200, 201] = 201  # youtube.md: 201, "some servers send 200"
    video_polls: int = Field(default=1, ge=0)  # status reads a video stays processing
    private_only: bool = False  # an unaudited project's uploads are locked to private
    session_lifetime_secs: float = Field(default=7 * 86400, ge=0)  # (U) not in youtube.md
    token_lifetime_secs: int = Field(default=ACCESS_LIFETIME_SECS, ge=0)
    refresh_lifetime_secs: int | None = Field(default=None, ge=0)  # 7 days in Testing mode
    client_id: str | None = None  # when set, the token endpoint wants this client and secret
    client_secret: str | None = None
    code_lifetime_secs: float = Field(default=600, ge=0)  # (U) not in youtube.md


@dataclass
class Channel:
    id: str  # UC + 22 characters, as YouTube's channel ids look
    title: str
    handle: str


@dataclass
class Session:
    key: str
    channel_id: str
    resource: dict[str, Any]
    total: int | None  # X-Upload-Content-Length, when sent
    expires_at: float
    received: int = 0
    puts: list[tuple[int, int]] = field(default_factory=list)  # (first, last) per chunk
    hasher: Any = field(default_factory=hashlib.sha256, repr=False)
    video_id: str = ""


@dataclass
class Video:
    id: str
    channel_id: str
    resource: dict[str, Any]
    size: int
    sha256: str
    created: float
    upload_id: str  # the session that made it
    polls: int = 0
    upload_status: str = "uploaded"
    processing: str = "processing"
    failure: str = ""

    def view(self, parts: set[str]) -> dict[str, Any]:
        found: dict[str, Any] = {"kind": "youtube#video", "id": self.id}
        if "snippet" in parts:
            found["snippet"] = {**self.resource.get("snippet", {}), "channelId": self.channel_id,
                                "publishedAt": _rfc3339(self.created)}  # fmt: skip
        if "status" in parts:
            found["status"] = {**self.resource.get("status", {}),
                               "uploadStatus": self.upload_status}  # fmt: skip
            if self.upload_status == "failed":
                found["status"]["failureReason"] = "conversion"
        if "processingDetails" in parts:
            details: dict[str, Any] = {"processingStatus": self.processing}
            if self.processing == "failed":
                details["processingFailureReason"] = self.failure
            found["processingDetails"] = details
        return found


@dataclass
class FakeState:
    """All the fake knows. Ids are random, so none is reused across resets."""

    channels: dict[str, Channel] = field(default_factory=dict)
    tokens: dict[str, tuple[str, float | None]] = field(default_factory=dict)  # channel, expiry
    refresh_tokens: dict[str, tuple[str, float | None]] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    videos: dict[str, Video] = field(default_factory=dict)
    faults: FaultQueue[FaultSpec] = field(default_factory=FaultQueue)
    config: FakeConfig = field(default_factory=FakeConfig)
    calls: Counter[str] = field(default_factory=Counter)
    daily: Counter[tuple[str, str]] = field(default_factory=Counter)  # (who, Pacific day)
    codes: CodeBook = field(default_factory=CodeBook)

    def reset(self) -> None:
        for store in (self.channels, self.tokens, self.refresh_tokens, self.sessions):
            store.clear()
        for other in (self.videos, self.faults, self.calls, self.daily, self.codes):
            other.clear()
        self.config = FakeConfig()

    # --- channels and tokens -------------------------------------------------------------

    def add_channel(self, channel_id: str | None = None, title: str | None = None) -> Channel:
        channel_id = channel_id or "UC" + secrets.token_urlsafe(16)[:22]
        title = title or f"Sandbox {channel_id[-6:]}"
        handle = "@" + "".join(c for c in title.lower() if c.isalnum())[:30]
        channel = self.channels[channel_id] = Channel(channel_id, title, handle)
        return channel

    def channel_for_token(self, token: str) -> Channel:
        """A token the fake never issued is adopted: it names a new sandbox channel."""
        if token not in self.tokens:
            self.tokens[token] = (self.add_channel().id, None)
        channel_id, expires_at = self.tokens[token]
        if expires_at is not None and time.time() >= expires_at:
            raise fault_error("token_expired")
        return self.channels[channel_id]

    def issue(self, channel_id: str, with_refresh: bool) -> dict[str, Any]:
        """A token answer; a refresh answers no new refresh token (Google keeps the first)."""
        access, lifetime = secrets.token_urlsafe(32), self.config.token_lifetime_secs
        self.tokens[access] = (channel_id, time.time() + lifetime)
        answer = {"access_token": access, "expires_in": lifetime, "token_type": "Bearer",
                  "scope": "https://www.googleapis.com/auth/youtube.upload"}  # fmt: skip
        if with_refresh:
            refresh = "1//" + secrets.token_urlsafe(32)
            lasting = self.config.refresh_lifetime_secs
            self.refresh_tokens[refresh] = (
                channel_id,
                None if lasting is None else time.time() + lasting,
            )
            answer["refresh_token"] = refresh
        return answer

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        if not refresh_token:
            raise oauth_error(400, "invalid_request", "Missing required parameter: refresh_token")
        if refresh_token not in self.refresh_tokens:  # adopted, like bearer tokens
            self.refresh_tokens[refresh_token] = (self.add_channel().id, None)
        channel_id, expires_at = self.refresh_tokens[refresh_token]
        if expires_at is not None and time.time() >= expires_at:
            raise oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        return self.issue(channel_id, with_refresh=False)

    # --- quota and upload sessions -------------------------------------------------------

    def charge_insert(self, channel: Channel) -> None:
        """One videos.insert against the project's daily quota and the channel's cap."""
        day = dt.datetime.now(dt.UTC).astimezone(_pacific()).date().isoformat()
        config = self.config
        units = INSERT_UNITS if config.quota_model == "units" else 1
        budget = QUOTA_UNITS if config.quota_model == "units" else INSERT_CALLS
        if self.daily[("project", day)] + units > budget:
            raise fault_error("quota_exceeded")
        cap = config.uploads_per_day
        if cap is not None and self.daily[(channel.id, day)] >= cap:
            raise fault_error("upload_limit_exceeded")
        self.daily[("project", day)] += units
        self.daily[(channel.id, day)] += 1

    def open_session(self, channel: Channel, resource: dict[str, Any], total: int | None) -> str:
        key = secrets.token_urlsafe(24)
        expires = time.time() + self.config.session_lifetime_secs
        self.sessions[key] = Session(key, channel.id, resource, total, expires)
        return key

    def live_session(self, key: str) -> Session | None:
        found = self.sessions.get(key)
        if found is None or (not found.video_id and time.time() >= found.expires_at):
            return None
        return found

    def receive(self, session: Session, first: int, data: bytes, total: int) -> Video | None:
        """A chunk from `first`: it must follow what is held; the last one makes the video."""
        last = first + len(data) - 1
        if session.total is not None and total != session.total:
            raise api_error(400, "badRequest", "The total size differs from "
                                               "X-Upload-Content-Length.", "global")  # fmt: skip
        if first != session.received:
            raise api_error(400, "badRequest", f"The chunk must start at byte {session.received}.",
                            "global")  # fmt: skip
        final = last + 1 == total
        if self.config.require_quantum and not final and len(data) % (256 * 1024):
            raise api_error(400, "badRequest", "A chunk other than the last must be a multiple "
                                               "of 256 KiB.", "global")  # fmt: skip
        session.hasher.update(data)
        session.received = last + 1
        session.puts.append((first, last))
        return self._complete(session) if final else None

    def _complete(self, session: Session) -> Video:
        resource = {key: dict(value) for key, value in session.resource.items()}
        if self.config.private_only:  # youtube.md: unaudited projects' uploads stay private
            resource.setdefault("status", {})["privacyStatus"] = "private"
        video_id = secrets.token_urlsafe(8)[:11]
        video = Video(video_id, session.channel_id, resource, session.received,
                      session.hasher.hexdigest(), time.time(), session.key)  # fmt: skip
        self.videos[video_id] = video
        session.video_id = video_id
        return video

    def poll(self, video: Video, fail: bool) -> None:
        """One status read: processing a configured number of times, then processed."""
        if video.processing != "processing":
            return
        if fail:
            video.upload_status, video.processing, video.failure = (
                "failed",
                "failed",
                "transcodeFailed",
            )
            return
        video.polls += 1
        if video.polls > self.config.video_polls:
            video.upload_status, video.processing = "processed", "succeeded"


def _rfc3339(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat().replace("+00:00", "Z")


def _pacific() -> dt.tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo("America/Los_Angeles")
