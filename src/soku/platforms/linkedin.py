"""LinkedIn (Posts API): content rules."""

from __future__ import annotations

from soku.platforms.base import ContentDraft, DeliveryLimits, RuleViolation
from soku.platforms.rules import MediaRules, check_media, text_length
from soku.platforms.text import plain_length

MAX_TEXT_LENGTH = 3000  # linkedin.md: commentary about 3,000 characters, silently cut above


class LinkedInRules:
    """A LinkedIn post: text, up to 9 images, or one video. Our text is the commentary."""

    name = "linkedin"
    label = "LinkedIn"
    # The product UI allows 9 images (related-pages.md); the API's multiImage takes 2-20
    # (linkedin.md), so 9 is our choice, not LinkedIn's limit.
    media = MediaRules(text_only=True, max_images=9)

    def check(self, draft: ContentDraft) -> list[RuleViolation]:
        count = plain_length(draft.text or "")
        return [
            *check_media(self.name, self.label, self.media, draft),
            *text_length(self.name, self.label, MAX_TEXT_LENGTH, count),
        ]


RULES = LinkedInRules()
# LinkedIn publishes no per-member numbers; it answers 429 (linkedin.md).
LIMITS = DeliveryLimits(publish_caps=())
