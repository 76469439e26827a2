"""TikTok (Content Posting API): content rules."""

from __future__ import annotations

from soku.platforms.base import ContentDraft, DeliveryLimits, PublishCap, RuleViolation
from soku.platforms.rules import MediaRules, check_media, text_length
from soku.platforms.text import utf16_length

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
