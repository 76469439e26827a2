"""Facebook Pages (Graph API): content rules."""

from __future__ import annotations

from soku.platforms.base import ContentDraft, DeliveryLimits, RuleViolation
from soku.platforms.rules import MediaRules, check_media, text_length
from soku.platforms.text import plain_length

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
