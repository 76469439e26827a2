"""Facebook Pages (Graph API): content rules, and where its connector and sandbox fake live."""

from __future__ import annotations

from typing import TYPE_CHECKING

from soku.platforms.base import (
    ConnectorTarget,
    ContentDraft,
    DeliveryLimits,
    PlatformIntegration,
    RuleViolation,
)
from soku.platforms.rules import MediaRules, check_media, text_length
from soku.platforms.text import plain_length

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from soku.platforms.connector import Connector

MAX_TEXT_LENGTH = 63_206  # facebook.md: above this the request fails with code 100


class FacebookRules:
    """A Facebook Page post: text, up to 10 photos, or one video. Our text is the message."""

    name = "facebook"
    label = "Facebook"
    # Text-only allowed; up to 10 photos via attached_media (facebook.md; product UI too).
    media = MediaRules(text_only=True, max_images=10)

    def check(self, draft: ContentDraft) -> list[RuleViolation]:
        count = plain_length(draft.text or "")
        return [
            *check_media(self.name, self.label, self.media, draft),
            *text_length(self.name, self.label, MAX_TEXT_LENGTH, count),
        ]


RULES = FacebookRules()
# No per-Page feed cap is documented; reels alone have 30 per 24 h (facebook.md).
LIMITS = DeliveryLimits(publish_caps=())


def _connector(target: ConnectorTarget) -> Connector:
    from soku.platforms.facebook_connector import (
        GRAPH_URL,
        VERSION,
        VIDEO_URL,
        WEB_URL,
        FacebookConnector,
    )

    if target.sandbox_url:  # the fake serves Graph, the video host and the permalink pages
        url = target.sandbox_url
        return FacebookConnector(url, video_url=url, web_url=url)
    options = target.options
    return FacebookConnector(
        options.get("graph_url", GRAPH_URL),
        video_url=options.get("video_url", VIDEO_URL),
        web_url=options.get("web_url", WEB_URL),
        version=options.get("version", VERSION),
    )


def _sandbox(public_url: str, media_origin: str) -> ASGIApp:
    from soku.sandbox.facebook import create_facebook_fake

    return create_facebook_fake(public_url, media_origin=media_origin)


INTEGRATION = PlatformIntegration(
    make_connector=_connector,
    create_sandbox=_sandbox,
    options=frozenset({"graph_url", "video_url", "web_url", "version"}),
)
