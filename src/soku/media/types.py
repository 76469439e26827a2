"""Shared shapes of the media feature."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MediaKind = Literal["image", "video"]
FetchFailure = Literal[
    "invalid_url",  # not http(s), no host, unparsable
    "blocked_address",  # resolves to loopback, private, link-local, … (SSRF guard)
    "unreachable",  # DNS failure, connection refused or reset, TLS failure
    "timeout",  # connect or total time cap exceeded
    "too_many_redirects",
    "bad_status",  # the server answered 4xx/5xx
    "too_large",  # over the size cap for its kind (checked while streaming)
    "unsupported_format",  # the bytes are not an accepted image or video format
]


class FetchError(Exception):
    """A media URL could not be fetched; `reason` is one of FetchFailure."""

    def __init__(self, url: str, reason: FetchFailure, message: str) -> None:
        super().__init__(message)
        self.url = url
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Sniffed:
    """What the first bytes of a file say it is."""

    kind: MediaKind
    content_type: str  # e.g. image/jpeg, video/mp4
    extension: str  # e.g. jpg, mp4


@dataclass(frozen=True)
class Probe:
    """What Pillow or PyAV read from the stored file."""

    width: int | None
    height: int | None
    duration_seconds: float | None = None
    container: str | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    frame_rate: float | None = None
    image_format: str | None = None
