"""Snapchat (Public Profile API): content rules."""

from __future__ import annotations

from soku.platforms.base import ContentDraft, DeliveryLimits, RuleViolation
from soku.platforms.rules import MediaRules, check_media, text_length
from soku.platforms.text import plain_length

MAX_SPOTLIGHT_DESCRIPTION_LENGTH = 160  # snapchat.md: Spotlight description <= 160 chars


class SnapchatRules:
    """A Snapchat post: exactly one image or one video, never text alone.

    A video goes to Spotlight, with our text as its description (at most 160 characters,
    hashtags included). An image goes to the Story, which has no text field, so the text
    is not published there and is not checked.
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
