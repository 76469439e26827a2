"""Snapchat (Public Profile API): content rules, and where its connector and sandbox fake live."""

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
    RuleViolation,
    oauth_endpoints,
)
from soku.platforms.rules import MediaRules, check_media, text_length
from soku.platforms.text import plain_length

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from starlette.types import ASGIApp

    from soku.platforms.connector import Connector

MAX_SPOTLIGHT_DESCRIPTION_LENGTH = 160  # snapchat.md: Spotlight description <= 160 chars


class SnapchatRules:
    """A Snapchat post: exactly one image or one video, never text alone.

    Both go to the profile's public Story, which has no text field. A video may go to
    Spotlight instead (the connector's option `video_target=spotlight`), with our text as
    its description (at most 160 characters, hashtags included), so a video's text is
    checked against that limit; an image's text is neither published nor checked.
    """

    name = "snapchat"
    label = "Snapchat"
    # No text-only posts; exactly one media item per post, no carousels (snapchat.md).
    media = MediaRules(text_only=False, max_images=1)

    def check(self, draft: ContentDraft) -> list[RuleViolation]:
        problems = check_media(self.name, self.label, self.media, draft)
        if draft.media_type == "video":
            problems += text_length(
                self.name,
                self.label,
                MAX_SPOTLIGHT_DESCRIPTION_LENGTH,
                plain_length(draft.text or ""),
                what="characters in a Spotlight video's description",
            )
        return problems


RULES = SnapchatRules()
# No posting cap is published; the API answers 429 (snapchat.md).
LIMITS = DeliveryLimits(publish_caps=())


def _connector(target: ConnectorTarget) -> Connector:
    from soku.platforms.connector import from_options
    from soku.platforms.snapchat_connector import (
        API_URL,
        PART_BYTES,
        TOKEN_URL,
        WEB_URL,
        SnapchatConnector,
    )

    if target.sandbox_url:  # the fake serves the API, the uploads, OAuth and the profile pages
        root = target.sandbox_url.rstrip("/")
        return SnapchatConnector(root, token_url=f"{root}{TOKEN_PATH}", web_url=root)
    options = target.options
    return from_options(
        "snapchat",
        lambda: SnapchatConnector(
            options.get("api_url", API_URL),
            token_url=options.get("token_url", TOKEN_URL),
            web_url=options.get("web_url", WEB_URL),
            client_id=options.get("client_id"),
            client_secret=options.get("client_secret"),
            video_target=options.get("video_target", "story"),
            locale=options.get("locale", "en_US"),
            part_bytes=int(options.get("part_bytes", PART_BYTES)),
        ),
    )


def _sandbox(public_url: str, media_origin: str) -> ASGIApp:
    from soku.sandbox.snapchat import create_snapchat_fake

    return create_snapchat_fake(public_url)  # it takes media as uploads only: nothing to fetch


AUTHORIZE_URL = "https://accounts.snapchat.com/login/oauth2/authorize"  # snapchat.md, "Auth"
AUTHORIZE_PATH, TOKEN_PATH = "/login/oauth2/authorize", "/login/oauth2/access_token"


def _oauth_endpoints(target: ConnectorTarget) -> OAuthEndpoints:
    from soku.platforms.snapchat_connector import API_URL, TOKEN_URL

    # the fake serves the consent page, the token endpoint and the API
    return oauth_endpoints(
        target, (AUTHORIZE_PATH, TOKEN_PATH), (AUTHORIZE_URL, TOKEN_URL, API_URL)
    )


async def _identify(call: OAuthCall, answer: Mapping[str, Any]) -> Identities:
    from soku.integrations.oauth_identity import identify_snapchat

    return await identify_snapchat(call, answer)


# The authorization code grant with client_id and client_secret in the token request's form;
# PKCE is not documented; `snapchat-profile-api` is the Public Profile API's scope, the
# scopes space-separated (snapchat.md, "Auth").
OAUTH = OAuthSpec(
    endpoints=_oauth_endpoints,
    scopes=("snapchat-profile-api",),
    scope_separator=" ",
    pkce=False,
    client_auth="client_secret_post",
    identify=_identify,
)
INTEGRATION = PlatformIntegration(
    make_connector=_connector,
    create_sandbox=_sandbox,
    options=frozenset(
        {
            "api_url",
            "token_url",
            "authorize_url",
            "web_url",
            "client_id",
            "client_secret",
            "video_target",
            "locale",
            "part_bytes",
        }
    ),
    oauth=OAUTH,
)
