"""X (Twitter API v2): content rules, and where its connector and sandbox fake live."""

from __future__ import annotations

from typing import TYPE_CHECKING

from soku.platforms.base import (
    ConnectorTarget,
    ContentDraft,
    DeliveryLimits,
    Identities,
    OAuthCall,
    OAuthEndpoints,
    OAuthSpec,
    PlatformIntegration,
    PublishCap,
    RuleViolation,
)
from soku.platforms.rules import MediaRules, check_media, text_length
from soku.platforms.text import X_MAX_WEIGHTED_LENGTH, X_URL_LENGTH, x_weighted_length

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from starlette.types import ASGIApp

    from soku.platforms.connector import Connector


class XRules:
    """A post on X: weighted text (twitter-text v3), and up to 4 images or 1 video.

    Premium accounts may post longer texts; every account is held to the standard 280, since
    the API offers no documented way to learn the tier.
    """

    name = "x"
    label = "X"
    # Text-only allowed; up to 4 photos or 1 video, never both (x.md, media best practices).
    media = MediaRules(text_only=True, max_images=4)

    def check(self, draft: ContentDraft) -> list[RuleViolation]:
        # 280 weighted characters, every URL counted as 23 (x.md, counting characters).
        count = x_weighted_length(draft.text or "")
        return [
            *check_media(self.name, self.label, self.media, draft),
            *text_length(
                self.name,
                self.label,
                X_MAX_WEIGHTED_LENGTH,
                count,
                what="weighted characters",
                note=f"URLs count as {X_URL_LENGTH}",
            ),
        ]


RULES = XRules()
# POST /2/tweets: 100 per 15 min per user (x.md, rate limits).
LIMITS = DeliveryLimits(publish_caps=(PublishCap(100, 15 * 60),))


def _connector(target: ConnectorTarget) -> Connector:
    from soku.platforms.x_connector import API_URL, WEB_URL, XConnector

    if target.sandbox_url:  # the fake serves the API and the permalink pages
        return XConnector(target.sandbox_url, web_url=target.sandbox_url)
    options = target.options
    return XConnector(
        options.get("api_url", API_URL),
        web_url=options.get("web_url", WEB_URL),
        client_id=options.get("client_id"),
        client_secret=options.get("client_secret"),
    )


def _sandbox(public_url: str, media_origin: str) -> ASGIApp:
    from soku.sandbox.x import create_x_fake

    return create_x_fake(public_url)  # it takes media as uploads only: nothing to fetch


AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"  # x.md: the docs' URL, not the OpenAPI's


def _oauth_endpoints(target: ConnectorTarget) -> OAuthEndpoints:
    from soku.platforms.x_connector import API_URL

    if target.sandbox_url:  # the fake serves the consent page and the API
        root = target.sandbox_url.rstrip("/")
        return OAuthEndpoints(f"{root}/i/oauth2/authorize", f"{root}/2/oauth2/token", root)
    api_url = target.options.get("api_url", API_URL).rstrip("/")
    authorize_url = target.options.get("authorize_url", AUTHORIZE_URL)
    return OAuthEndpoints(authorize_url, f"{api_url}/2/oauth2/token", api_url)


async def _identify(call: OAuthCall, answer: Mapping[str, Any]) -> Identities:
    from soku.integrations.oauth_identity import identify_x

    return await identify_x(call, answer)


# Authorization code with PKCE (S256), required; a confidential client (one with a secret)
# authenticates with HTTP Basic, a public one sends its client_id in the body (x.md, "Auth").
# offline.access: a refresh token; media.write: the uploads.
OAUTH = OAuthSpec(
    endpoints=_oauth_endpoints,
    scopes=("tweet.read", "tweet.write", "users.read", "media.write", "offline.access"),
    scope_separator=" ",
    pkce=True,
    client_auth="client_secret_basic",
    identify=_identify,
)
INTEGRATION = PlatformIntegration(
    make_connector=_connector,
    create_sandbox=_sandbox,
    options=frozenset({"api_url", "web_url", "authorize_url", "client_id", "client_secret"}),
    oauth=OAUTH,
)
