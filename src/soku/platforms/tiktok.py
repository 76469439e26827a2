"""TikTok (Content Posting API): content rules, and where its connector and sandbox fake live."""

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
    oauth_endpoints,
)
from soku.platforms.rules import MediaRules, check_media, text_length
from soku.platforms.text import utf16_length

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from starlette.types import ASGIApp

    from soku.platforms.connector import Connector

MAX_VIDEO_CAPTION_LENGTH = 2200  # tiktok.md: video post_info.title, 2,200 UTF-16 units
MAX_PHOTO_DESCRIPTION_LENGTH = 4000  # tiktok.md: photo post_info.description <= 4000


class TikTokRules:
    """A TikTok post: one video, or a photo post of up to 35 images.

    Our text goes to the video's caption (`post_info.title`, 2,200) or, for a photo post, to
    its description (`post_info.description`, 4,000; the photo title of 90 is left unset).
    Both are counted in UTF-16 code units, so an emoji counts 2; tiktok.md marks the unit
    unsure and this is the stricter reading.
    """

    name = "tiktok"
    label = "TikTok"
    # No text-only posts; up to 35 photos (tiktok.md; product UI too).
    media = MediaRules(text_only=False, max_images=35)

    def check(self, draft: ContentDraft) -> list[RuleViolation]:
        if draft.media_type == "image":
            limit, what = MAX_PHOTO_DESCRIPTION_LENGTH, "characters in a photo post's description"
        else:
            limit, what = MAX_VIDEO_CAPTION_LENGTH, "characters in a video caption"
        count = utf16_length(draft.text or "")
        note = "counted in UTF-16 units: an emoji counts 2"
        return [
            *check_media(self.name, self.label, self.media, draft),
            *text_length(self.name, self.label, limit, count, what=what, note=note),
        ]


RULES = TikTokRules()
# video/init: 6 requests per minute per token (tiktok.md).
LIMITS = DeliveryLimits(publish_caps=(PublishCap(6, 60),))


def _connector(target: ConnectorTarget) -> Connector:
    from soku.platforms.tiktok_connector import (
        API_URL,
        PRIVACY_LEVEL,
        TOKEN_URL,
        WEB_URL,
        TikTokConnector,
    )

    options = target.options
    privacy_level = options.get("privacy_level", PRIVACY_LEVEL)
    if target.sandbox_url:  # the fake serves the API, the uploads, OAuth and the post pages
        sandbox = target.sandbox_url.rstrip("/")
        token_url = f"{sandbox}/v2/oauth/token/"
        return TikTokConnector(
            sandbox, token_url=token_url, web_url=sandbox, privacy_level=privacy_level
        )
    return TikTokConnector(
        options.get("api_url", API_URL),
        token_url=options.get("token_url", TOKEN_URL),
        web_url=options.get("web_url", WEB_URL),
        privacy_level=privacy_level,
        client_id=options.get("client_id"),
        client_secret=options.get("client_secret"),
    )


def _sandbox(public_url: str, media_origin: str) -> ASGIApp:
    from soku.sandbox.tiktok import create_tiktok_fake

    return create_tiktok_fake(public_url, media_origin=media_origin)


AUTHORIZE_URL = "https://www.tiktok.com/v2/auth/authorize/"  # tiktok.md, "Auth"


def _oauth_endpoints(target: ConnectorTarget) -> OAuthEndpoints:
    from soku.platforms.tiktok_connector import API_URL, TOKEN_URL

    # the fake serves the consent page, the token endpoint and the API
    return oauth_endpoints(
        target, ("/v2/auth/authorize/", "/v2/oauth/token/"), (AUTHORIZE_URL, TOKEN_URL, API_URL)
    )


async def _identify(call: OAuthCall, answer: Mapping[str, Any]) -> Identities:
    from soku.integrations.oauth_identity import identify_tiktok

    return await identify_tiktok(call, answer)


# A web app: no PKCE (mobile and desktop apps only); the app's id is its `client_key`, sent
# with its secret in the token request's form; scopes are comma-separated (tiktok.md, "Auth").
OAUTH = OAuthSpec(
    endpoints=_oauth_endpoints,
    scopes=("user.info.basic", "video.publish"),
    scope_separator=",",
    pkce=False,
    client_auth="client_secret_post",
    identify=_identify,
    client_id_name="client_key",
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
            "privacy_level",
            "client_id",
            "client_secret",
        }
    ),
    oauth=OAUTH,
)
