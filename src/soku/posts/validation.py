"""Every check of a post submission that needs no database, all problems at once."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from soku.errors import ValidationFailed
from soku.platforms import PLATFORM_NAMES, ContentDraft, check_all, rules
from soku.platforms.base import MediaType
from soku.posts.schemas import Content, CreatePostRequest, PlatformTarget

Problem = dict[str, str]
VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".m4v")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp")
MAX_URL_LENGTH = 2048

_TEXT_REASONS = frozenset(
    {
        rules.TEXT_REQUIRED,
        rules.TEXT_TOO_LONG,
        rules.INVALID_CHARACTERS,
        rules.TOO_MANY_LINKS,
        rules.TOO_MANY_HASHTAGS,
        rules.TOO_MANY_MENTIONS,
    }
)


@dataclass(frozen=True)
class Target:
    platform: str
    account_id: str | None
    field: str


@dataclass(frozen=True)
class Submission:
    draft: ContentDraft
    targets: tuple[Target, ...]
    scheduled_time: dt.datetime | None


def problem(field: str, reason: str, message: str) -> Problem:
    return {"field": field, "reason": reason, "message": message}


def unstorable(value: str) -> str | None:
    """What in a string can't be stored (PostgreSQL refuses NUL in text and JSONB) or sent
    back as UTF-8 (an unpaired surrogate, which JSON's \\u escapes can carry); None if fine."""
    if "\x00" in value:
        return "NUL characters (\\u0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "unpaired surrogates (\\ud800-\\udfff)"
    return None


def parse_scheduled_time(
    value: str | None, now: dt.datetime, min_lead_seconds: int, field: str = "scheduledTime"
) -> tuple[dt.datetime | None, list[Problem]]:
    """ISO 8601 with an offset, at least the minimum lead ahead of now."""
    if value is None:
        return None, []
    text = value.strip()
    if text.endswith("z"):  # RFC 3339 allows a lowercase Z (fromisoformat takes a lowercase T)
        text = text[:-1] + "Z"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None, [
            problem(
                field,
                "invalid_format",
                f"{field} must be an ISO 8601 timestamp such as 2026-03-02T09:00:00.000Z.",
            )
        ]
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return None, [
            problem(field, "missing_offset", f"{field} must carry a UTC offset (Z or ±hh:mm).")
        ]
    try:
        parsed = parsed.astimezone(dt.UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 or 9999-12-31T23:59:59-01:00
        return None, [
            problem(
                field,
                "out_of_range",
                f"{field} must fall between the years 1 and 9999 once converted to UTC.",
            )
        ]
    earliest = now + dt.timedelta(seconds=min_lead_seconds)
    if parsed < earliest:
        reason = "in_past" if parsed <= now else "too_soon"
        return None, [
            problem(
                field,
                reason,
                f"{field} must be at least {min_lead_seconds} seconds in the "
                f"future (earliest {earliest.isoformat()}).",
            )
        ]
    return parsed, []


def _check_targets(content: Content) -> tuple[list[Target], list[Problem]]:
    targets: list[Target] = []
    problems: list[Problem] = []
    seen: set[tuple[str, str | None]] = set()
    if not content.platform:
        problems.append(
            problem(
                "post.content.platform",
                "empty",
                "post.content.platform must list at least one platform.",
            )
        )
    for index, entry in enumerate(content.platform):
        field = f"post.content.platform[{index}]"
        name, account = (
            (entry.platform, entry.accountId)
            if isinstance(entry, PlatformTarget)
            else (entry, None)
        )
        if isinstance(entry, PlatformTarget):
            field += ".platform"
        if name not in PLATFORM_NAMES:
            problems.append(
                problem(
                    field,
                    "unknown_platform",
                    f"Unknown platform {name!r}; expected one of "
                    + ", ".join(PLATFORM_NAMES)
                    + ".",
                )
            )
            continue
        why = unstorable(account) if account is not None else None
        if why is not None:
            problems.append(
                problem(
                    f"post.content.platform[{index}].accountId",
                    "invalid_characters",
                    f"accountId must not contain {why}.",
                )
            )
            continue
        if account is not None and not account.strip():
            problems.append(
                problem(
                    f"post.content.platform[{index}].accountId",
                    "empty",
                    "accountId must not be empty.",
                )
            )
            continue
        if (name, account) in seen:
            problems.append(
                problem(
                    field,
                    "duplicate_target",
                    f"{name}{' account ' + account if account else ''} is targeted more than once.",
                )
            )
            continue
        seen.add((name, account))
        targets.append(Target(name, account, field))
    return targets, problems


def _split(url: str) -> SplitResult | None:
    """The URL's parts, or None when it is too long or can't be parsed (`http://[::1`,
    characters NFKC turns into URL syntax, a port out of range, a control character: urlsplit
    drops tabs and line breaks silently, and no HTTP client sends them)."""
    if len(url) > MAX_URL_LENGTH or unstorable(url) is not None:
        return None
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError when out of range)
    except ValueError:
        return None
    return parts


def check_urls(field: str, urls: list[str]) -> list[Problem]:
    """`invalid_url` for each URL that is not an http(s) URL we can store and fetch."""
    problems = []
    for index, url in enumerate(urls):
        where = f"{field}[{index}]" if field.endswith("Urls") else field
        parts = _split(url)
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(
                problem(
                    where,
                    "invalid_url",
                    f"{where} must be an http(s) URL of at most {MAX_URL_LENGTH} characters.",
                )
            )
    return problems


def _kind_of(url: str) -> MediaType | None:
    parts = _split(url)
    path = parts.path.lower() if parts else ""
    if path.endswith(VIDEO_SUFFIXES):
        return "video"
    if path.endswith(IMAGE_SUFFIXES):
        return "image"
    return None


def _undecided_kind(media_urls: list[str]) -> Problem:
    """mediaUrls without mediaType whose kind the URLs do not settle: images and videos
    mixed (no mediaType would help), or a URL whose kind its name does not tell."""
    kinds = {url: _kind_of(url) for url in media_urls}
    image = next((url for url, kind in kinds.items() if kind == "image"), None)
    video = next((url for url, kind in kinds.items() if kind == "video"), None)
    if image is not None and video is not None:
        return problem(
            "post.content.mediaUrls",
            "mixed_media",
            f"post.content.mediaUrls mixes images ({image}) and videos ({video}): a post has "
            "images or one video.",
        )
    # named only if it parses: an unparsable one has its invalid_url problem, and may hold
    # what can't be sent back (an unpaired surrogate)
    unknown = next((u for u, kind in kinds.items() if kind is None and _split(u)), None)
    if unknown is None:
        why = "the kinds of the mediaUrls can't be told from them"
    else:
        why = f"the kind of {unknown} can't be told from its URL"
    return problem("post.content.mediaType", "required", f"Set mediaType (image or video): {why}.")


def _infer_media_type(content: Content) -> MediaType | None:
    if content.mediaType is not None:
        return content.mediaType
    if content.videoUrl is not None:
        return "video"
    if content.imageUrls:
        return "image"
    if not content.mediaUrls:
        return "text"
    kinds = {_kind_of(url) for url in content.mediaUrls}
    return kinds.pop() if len(kinds) == 1 else None


def _check_media(content: Content, max_urls: int) -> tuple[ContentDraft | None, list[Problem]]:
    media_urls = content.mediaUrls or []
    image_urls = content.imageUrls or []
    problems = check_urls("post.content.mediaUrls", media_urls)
    problems += check_urls("post.content.imageUrls", image_urls)
    if content.videoUrl is not None:
        problems += check_urls("post.content.videoUrl", [content.videoUrl])
    total = len(media_urls) + len(image_urls) + (content.videoUrl is not None)
    if total > max_urls:
        problems.append(
            problem(
                "post.content",
                "too_many_media",
                f"A post may name at most {max_urls} media URLs; it names {total}.",
            )
        )
    kind = _infer_media_type(content)
    if kind is None:
        problems.append(_undecided_kind(media_urls))
        return None, problems
    problems += _kind_problems(content, kind)
    text = content.text
    if kind == "text" and (text is None or not text.strip()):
        problems.append(
            problem("post.content.text", "required", "A text post needs post.content.text.")
        )
    fields, urls = _media_of_kind(content, kind)
    draft = ContentDraft(
        text=text,
        media_type=kind,
        image_urls=urls if kind == "image" else (),
        video_urls=urls if kind == "video" else (),
        media_fields=fields,
    )
    return draft, problems


def _media_of_kind(content: Content, kind: MediaType) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The post's files in their order, with the request field each came from: the video
    (videoUrl) or the images (imageUrls), then mediaUrls; none for a text post."""
    if kind == "text":
        return (), ()
    if kind == "video":
        named = [("post.content.videoUrl", content.videoUrl)] if content.videoUrl else []
    else:
        named = [(f"post.content.imageUrls[{i}]", u) for i, u in enumerate(content.imageUrls or [])]
    named += [(f"post.content.mediaUrls[{i}]", u) for i, u in enumerate(content.mediaUrls or [])]
    return tuple(f for f, _ in named), tuple(u for _, u in named)


def _kind_problems(content: Content, kind: MediaType) -> list[Problem]:
    problems = []
    if kind == "text" and (content.mediaUrls or content.imageUrls or content.videoUrl):
        problems.append(
            problem(
                "post.content.mediaType",
                "media_not_allowed",
                "mediaType is text but media URLs were given.",
            )
        )
    if kind == "image":
        if content.videoUrl is not None:
            problems.append(
                problem(
                    "post.content.videoUrl",
                    "conflicts_with_media_type",
                    "videoUrl was given but mediaType is image.",
                )
            )
        if not (content.imageUrls or content.mediaUrls):
            problems.append(
                problem(
                    "post.content.imageUrls",
                    "required",
                    "An image post needs imageUrls or mediaUrls.",
                )
            )
    if kind == "video":
        if content.imageUrls:
            said = content.mediaType is not None  # else videoUrl made it a video post
            problems.append(
                problem(
                    "post.content.imageUrls",
                    "conflicts_with_media_type",
                    "imageUrls were given but mediaType is video."
                    if said
                    else "imageUrls and videoUrl can't be given together: "
                    "a post has images or one video.",
                )
            )
        if content.videoUrl is None and not content.mediaUrls:
            problems.append(
                problem(
                    "post.content.videoUrl", "required", "A video post needs videoUrl or mediaUrls."
                )
            )
    return problems


def check_submission(
    body: CreatePostRequest, now: dt.datetime, min_lead_seconds: int, max_media_urls: int
) -> Submission:
    """The submission, or ValidationFailed listing every problem found."""
    content = body.post.content
    targets, problems = _check_targets(content)
    draft, media_problems = _check_media(content, max_media_urls)
    problems += media_problems
    why = unstorable(content.text) if content.text is not None else None
    if why is not None:  # and the platform rules can't measure it (UTF-16 length)
        problems.append(
            problem(
                "post.content.text",
                "invalid_characters",
                f"post.content.text must not contain {why}.",
            )
        )
    scheduled, time_problems = parse_scheduled_time(body.scheduledTime, now, min_lead_seconds)
    problems += time_problems
    if draft is not None and not media_problems and why is None:
        platforms = [t.platform for t in targets]
        for violation in check_all(draft, platforms):
            problems.append(
                {
                    "platform": violation.platform,
                    "field": _rule_field(violation.reason, content),
                    "reason": violation.reason,
                    "message": violation.message,
                }
            )
    if problems or draft is None:
        raise ValidationFailed.from_problems(problems)
    return Submission(draft=draft, targets=tuple(targets), scheduled_time=scheduled)


def _rule_field(reason: str, content: Content) -> str:
    """The field a platform rule's violation is about: the text, or the list that carried the
    media (`post.content` for a missing kind of content, such as text-only on Instagram)."""
    if reason in _TEXT_REASONS:
        return "post.content.text"
    if reason in (rules.IMAGES_NOT_SUPPORTED, rules.TOO_MANY_IMAGES):
        given = "mediaUrls" if content.mediaUrls else "imageUrls" if content.imageUrls else ""
        return f"post.content.{given or 'mediaType'}"
    if reason == rules.TOO_MANY_VIDEOS:
        return "post.content." + ("mediaUrls" if content.mediaUrls else "videoUrl")
    return "post.content"


def draft_of(content: dict[str, object]) -> ContentDraft:
    """The draft of a stored post's content (it was checked when the post was accepted)."""
    draft, _problems = _check_media(Content.model_validate(content), max_urls=10_000)
    if draft is None:
        raise ValueError("stored content has no media type")
    return draft
