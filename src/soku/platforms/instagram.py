"""Instagram (Instagram API with Instagram Login): content rules, and where its connector,
sign-in and sandbox fake live."""

from __future__ import annotations

from typing import TYPE_CHECKING

from soku.platforms.base import ContentDraft, DeliveryLimits, PublishCap, RuleViolation
from soku.platforms.graph_platform import graph_integration
from soku.platforms.rules import (
    TOO_MANY_HASHTAGS,
    TOO_MANY_MENTIONS,
    MediaRules,
    check_media,
    over_limit,
    text_length,
)
from soku.platforms.text import count_hashtags, count_mentions, plain_length

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from starlette.types import ASGIApp

    from soku.platforms.base import Identities, OAuthCall
    from soku.platforms.graph_connector import GraphConnector

# instagram.md (IG user media reference, verbatim): caption <= 2200 characters,
# 30 hashtags, 20 @ tags.
MAX_CAPTION_LENGTH = 2200
MAX_HASHTAGS = 30
MAX_MENTIONS = 20


class InstagramRules:
    """An Instagram post: one image, a carousel of images, or one video (a reel).

    Our text is the caption.
    """

    name = "instagram"
    label = "Instagram"
    # No text-only posts; carousel 2-10 items (instagram.md); product UI also says 10.
    media = MediaRules(text_only=False, max_images=10)

    def check(self, draft: ContentDraft) -> list[RuleViolation]:
        text = draft.text or ""
        hashtags = count_hashtags(text)
        mentions = count_mentions(text)
        return [
            *check_media(self.name, self.label, self.media, draft),
            *text_length(
                self.name,
                self.label,
                MAX_CAPTION_LENGTH,
                plain_length(text),
                what="characters in a caption",
            ),
            *over_limit(
                self.name,
                TOO_MANY_HASHTAGS,
                MAX_HASHTAGS,
                hashtags,
                f"Instagram allows at most {MAX_HASHTAGS} hashtags in a caption; "
                f"this text has {hashtags}.",
            ),
            *over_limit(
                self.name,
                TOO_MANY_MENTIONS,
                MAX_MENTIONS,
                mentions,
                f"Instagram allows at most {MAX_MENTIONS} @mentions in a caption; "
                f"this text has {mentions}.",
            ),
        ]


RULES = InstagramRules()
# content_publishing_limit: quota_total 50 per 24 h (instagram.md).
LIMITS = DeliveryLimits(publish_caps=(PublishCap(50, 24 * 3600),))


def _connector() -> type[GraphConnector]:
    from soku.platforms.instagram_connector import InstagramConnector

    return InstagramConnector


def _sandbox(public_url: str, media_origin: str) -> ASGIApp:
    from soku.sandbox.instagram import create_instagram_fake

    return create_instagram_fake(public_url, media_origin=media_origin)


async def _identify(call: OAuthCall, answer: Mapping[str, Any]) -> Identities:
    from soku.integrations.oauth_identity import identify_instagram

    return await identify_instagram(call, answer)


# instagram.md "Auth": the consent page (Postiz's; the reference page names
# api.instagram.com) and the code exchange, on a host of its own. The Instagram app's id and
# secret; no PKCE; the code exchange is a form POST with client_id and client_secret.
INTEGRATION = graph_integration(
    _connector,
    _sandbox,
    _identify,
    scopes=("instagram_business_basic", "instagram_business_content_publish"),
    authorize_url="https://www.instagram.com/oauth/authorize",
    token_url="https://api.instagram.com/oauth/access_token",  # noqa: S106 (a URL)
)
