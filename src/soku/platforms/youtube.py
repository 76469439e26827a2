"""YouTube (Data API v3, videos.insert): content rules."""

from __future__ import annotations

from soku.platforms.base import ContentDraft, DeliveryLimits, PublishCap, RuleViolation
from soku.platforms.rules import (
    INVALID_CHARACTERS,
    TEXT_REQUIRED,
    MediaRules,
    check_media,
    text_length,
)
from soku.platforms.text import plain_length, utf8_length

MAX_TITLE_LENGTH = 100  # youtube.md: snippet.title required, <= 100 characters
MAX_DESCRIPTION_BYTES = 5000  # youtube.md: snippet.description <= 5000 bytes
FORBIDDEN_CHARACTERS = "<>"  # youtube.md: no < or > in title or description


def title_and_description(text: str | None) -> tuple[str, str]:
    """Split our text into YouTube's title (its first line) and description (the rest)."""
    first_line, _, rest = (text or "").partition("\n")
    return first_line.strip(), rest.strip()


class YouTubeRules:
    """A YouTube upload: exactly one video, no images, no text-only posts.

    The first line of our text is the video's title (required, at most 100 characters); the
    lines after it are the description (at most 5,000 UTF-8 bytes; youtube.md says bytes,
    aggregators say characters, and bytes is the stricter reading). Neither may hold < or >.
    """

    name = "youtube"
    label = "YouTube"
    # Video only: the Data API has no community-post endpoint (youtube.md).
    media = MediaRules(text_only=False, max_images=0)

    def check(self, draft: ContentDraft) -> list[RuleViolation]:
        title, description = title_and_description(draft.text)
        problems = check_media(self.name, self.label, self.media, draft)
        if title:
            problems += text_length(
                self.name,
                self.label,
                MAX_TITLE_LENGTH,
                plain_length(title),
                what="characters in a title (the first line of the text)",
            )
        else:
            message = (
                "YouTube needs a video title: the first line of the text, "
                f"at most {MAX_TITLE_LENGTH} characters."
            )
            problems.append(RuleViolation(self.name, TEXT_REQUIRED, message))
        problems += text_length(
            self.name,
            self.label,
            MAX_DESCRIPTION_BYTES,
            utf8_length(description),
            what="bytes in a description (the lines after the first)",
            note="UTF-8 bytes: an accented letter counts 2, an emoji 4",
        )
        if any(character in FORBIDDEN_CHARACTERS for character in title + description):
            message = "YouTube does not allow < or > in a video's title or description."
            problems.append(RuleViolation(self.name, INVALID_CHARACTERS, message))
        return problems


RULES = YouTubeRules()
# videos.insert: 100 calls per day by default (youtube.md).
LIMITS = DeliveryLimits(publish_caps=(PublishCap(100, 24 * 3600),))
