"""The small interface every platform module implements."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from soku.platforms.connector import Connector

MediaType = Literal["text", "image", "video"]


@dataclass(frozen=True)
class ContentDraft:
    """A post's content after the request body has been checked for shape.

    `image_urls` holds every image (imageUrls and mediaUrls of an image post);
    `video_urls` every video (videoUrl and mediaUrls of a video post).
    """

    text: str | None
    media_type: MediaType
    image_urls: tuple[str, ...] = field(default_factory=tuple)
    video_urls: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class RuleViolation:
    """One way a post breaks a platform's rules.

    `reason` is a short machine-readable code (e.g. `text_too_long`);
    `message` says it in plain words for a person.
    """

    platform: str
    reason: str
    message: str


class PlatformRules(Protocol):
    """What a platform accepts, checked before anything is stored."""

    name: str

    def check(self, draft: ContentDraft) -> list[RuleViolation]: ...


@dataclass(frozen=True)
class PublishCap:
    """At most `count` posts per account in any `window_seconds` (a rolling window)."""

    count: int
    window_seconds: int


@dataclass(frozen=True)
class DeliveryLimits:
    """How hard the delivery engine may push one platform.

    `publish_caps` hold per account; a delivery over a cap is delayed until the cap frees,
    never failed. `max_concurrency` bounds one worker's deliveries in flight to the platform.
    """

    publish_caps: tuple[PublishCap, ...] = ()
    max_concurrency: int = 64


@dataclass(frozen=True)
class ConnectorTarget:
    """Where a connector sends its calls, as the settings say.

    `sandbox_url` is the root of the platform's own fake (e.g. `http://host/sandbox/x`) when
    the account is a sandbox one, else None. `options` are the operator's settings for this
    platform (`SOKU_PLATFORM_OPTIONS`, e.g. `{"x": {"api_url": …, "client_id": …}}`), only
    keys the platform's `PlatformIntegration.options` names.
    """

    sandbox_url: str | None
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PlatformIntegration:
    """What a platform module offers beyond its rules: a connector and a sandbox fake.

    A platform module that defines `INTEGRATION` is delivered to by its own connector (real
    accounts) and, for sandbox accounts, by the same connector pointed at its fake, which the
    service mounts at `/sandbox/<platform>`. Both factories import lazily, so checking a post's
    rules never loads HTTP code.
    """

    make_connector: Callable[[ConnectorTarget], Connector]
    # the fake, told its public URL and the only origin it may fetch media from ("": any)
    create_sandbox: Callable[[str, str], ASGIApp]
    options: frozenset[str] = frozenset()  # the option names the connector reads
