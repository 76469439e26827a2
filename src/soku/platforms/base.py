"""The small interface every platform module implements."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import httpx
    from starlette.types import ASGIApp

    from soku.platforms.connector import Connector

MediaType = Literal["text", "image", "video"]


@dataclass(frozen=True)
class ContentDraft:
    """A post's content after the request body has been checked for shape.

    `image_urls` holds every image (imageUrls and mediaUrls of an image post);
    `video_urls` every video (videoUrl and mediaUrls of a video post); `media_fields` the
    request field each of those URLs came from, in the same order (`post.content.videoUrl`,
    `post.content.mediaUrls[0]`, ...), so that an error about a file can name it.
    """

    text: str | None
    media_type: MediaType
    image_urls: tuple[str, ...] = field(default_factory=tuple)
    video_urls: tuple[str, ...] = field(default_factory=tuple)
    media_fields: tuple[str, ...] = field(default_factory=tuple)


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
class OAuthEndpoints:
    """Where one connect flow goes: the platform's (options or its defaults) or its fake's.

    `api_url` is where the "who is this" calls go (with the API version in the path where
    the platform has one, e.g. `https://graph.facebook.com/v25.0`); `exchange_url` where a
    short-lived token is swapped for a long-lived one (Threads, Facebook).
    """

    authorize_url: str
    token_url: str
    api_url: str
    exchange_url: str | None = None


def oauth_endpoints(
    target: ConnectorTarget,
    sandbox_paths: tuple[str, str],
    defaults: tuple[str, str, str],
    token_option: str = "token_url",  # noqa: S107 (an option's name)
) -> OAuthEndpoints:
    """A platform whose sign-in, token and API URLs are each an option (`authorize_url`,
    `token_option`, `api_url`; `defaults` in that order), and whose fake serves the consent
    page and the token endpoint at `sandbox_paths` under its root, and the API at the root."""
    if target.sandbox_url:
        root = target.sandbox_url.rstrip("/")
        authorize_path, token_path = sandbox_paths
        return OAuthEndpoints(f"{root}{authorize_path}", f"{root}{token_path}", root)
    options = target.options
    return OAuthEndpoints(
        options.get("authorize_url", defaults[0]),
        options.get(token_option, defaults[1]),
        options.get("api_url", defaults[2]).rstrip("/"),
    )


@dataclass(frozen=True)
class OAuthCall:
    """What a "who is this" step needs: where to call, as which app, with which client."""

    endpoints: OAuthEndpoints
    client_id: str
    client_secret: str | None
    http: httpx.AsyncClient


@dataclass(frozen=True)
class Identity:
    """One account a finished flow can connect: its platform id, name and tokens."""

    platform_user_id: str
    username: str | None
    access_token: str
    refresh_token: str | None = None
    expires_at: dt.datetime | None = None
    scopes: str | None = None


@dataclass(frozen=True)
class Identities:
    """What a flow found. `interim_token` (Facebook: the long-lived user token) lists them
    again through `OAuthSpec.list_again`, when the user has to pick one."""

    found: tuple[Identity, ...]
    interim_token: str | None = None


@dataclass(frozen=True)
class OAuthSpec:
    """How a user connects an account of the platform: OAuth 2.0's authorization code grant.

    `endpoints` picks the URLs as the connector factory does (the fake's for a sandbox
    connect); `client_auth` is how a client with a secret authenticates at the token endpoint
    (one without a secret is a public client and sends its client_id in the body);
    `identify` turns the token answer into the account(s) to connect; `authorize_params`
    are extra query parameters of the authorize URL (Google's `access_type=offline`).
    """

    endpoints: Callable[[ConnectorTarget], OAuthEndpoints]
    scopes: tuple[str, ...]
    scope_separator: Literal[" ", ","]
    pkce: bool
    client_auth: Literal["client_secret_basic", "client_secret_post"]
    identify: Callable[[OAuthCall, Mapping[str, Any]], Awaitable[Identities]]
    list_again: Callable[[OAuthCall, str], Awaitable[Identities]] | None = None
    # the name of the app's id in the authorize URL and the token request (TikTok: client_key)
    client_id_name: str = "client_id"
    authorize_params: tuple[tuple[str, str], ...] = ()

    @property
    def scope(self) -> str:
        return self.scope_separator.join(self.scopes)


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
    oauth: OAuthSpec | None = None  # how a user connects an account (None: by the CLI only)
