"""The reason codes every platform uses, and the checks most of them share."""

from __future__ import annotations

from dataclasses import dataclass

from soku.platforms.base import ContentDraft, RuleViolation
from soku.platforms.text import plain_length

TEXT_REQUIRED = "text_required"
TEXT_TOO_LONG = "text_too_long"
INVALID_CHARACTERS = "invalid_characters"
TEXT_ONLY_NOT_SUPPORTED = "text_only_not_supported"
IMAGES_NOT_SUPPORTED = "images_not_supported"
TOO_MANY_IMAGES = "too_many_images"
TOO_MANY_VIDEOS = "too_many_videos"
TOO_MANY_LINKS = "too_many_links"
TOO_MANY_HASHTAGS = "too_many_hashtags"
TOO_MANY_MENTIONS = "too_many_mentions"


@dataclass(frozen=True)
class MediaRules:
    """What content kinds a platform takes, and how many media items per post.

    `max_images` 0 means images are not taken at all.
    """

    text_only: bool
    max_images: int
    max_videos: int = 1


@dataclass  # not frozen: PlatformRules declares `name` a plain attribute
class PlainTextRules:
    """A platform whose text rule is a length alone, in plain characters (LinkedIn, Facebook)."""

    name: str
    label: str
    media: MediaRules
    max_text_length: int

    def check(self, draft: ContentDraft) -> list[RuleViolation]:
        count = plain_length(draft.text or "")
        return [
            *check_media(self.name, self.label, self.media, draft),
            *text_length(self.name, self.label, self.max_text_length, count),
        ]


def check_media(
    platform: str, label: str, rules: MediaRules, draft: ContentDraft
) -> list[RuleViolation]:
    """Violations of a platform's media rules; `label` is the name people know it by."""
    problems: list[RuleViolation] = []
    if draft.media_type == "text" and not rules.text_only:
        wanted = "a video" if rules.max_images == 0 else "an image or a video"
        message = f"{label} does not publish text-only posts; add {wanted}."
        problems.append(RuleViolation(platform, TEXT_ONLY_NOT_SUPPORTED, message))
    images = len(draft.image_urls)
    if rules.max_images == 0 and (images or draft.media_type == "image"):
        message = f"{label} does not publish images, only videos."
        problems.append(RuleViolation(platform, IMAGES_NOT_SUPPORTED, message))
    else:
        problems += _too_many(platform, label, TOO_MANY_IMAGES, "image", rules.max_images, images)
    videos = len(draft.video_urls)
    problems += _too_many(platform, label, TOO_MANY_VIDEOS, "video", rules.max_videos, videos)
    return problems


def over_limit(
    platform: str, reason: str, limit: int, count: int, message: str
) -> list[RuleViolation]:
    """The violation, in a list, when `count` passes `limit`; an empty list otherwise."""
    return [RuleViolation(platform, reason, message)] if count > limit else []


def text_length(
    platform: str, label: str, limit: int, count: int, what: str = "characters", note: str = ""
) -> list[RuleViolation]:
    """The violation of a text (or the part named in `what`) longer than `limit`."""
    suffix = f" ({note})" if note else ""
    message = f"{label} allows at most {limit:,} {what}; this text counts {count:,}{suffix}."
    return over_limit(platform, TEXT_TOO_LONG, limit, count, message)


def _too_many(
    platform: str, label: str, reason: str, noun: str, limit: int, count: int
) -> list[RuleViolation]:
    allowed = f"{limit} {noun}" if limit == 1 else f"{limit} {noun}s"
    message = f"{label} allows at most {allowed} per post; this post has {count}."
    return over_limit(platform, reason, limit, count, message)
