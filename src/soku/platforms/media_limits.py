"""What each platform accepts of a media file once it has been fetched and probed.

`rules.py` checks what a post's request says (how many images, whether a video is allowed);
these limits need the file itself: its type, size in bytes, frame size, duration and frame
rate, which are known only after the media intake fetched and probed it. They are checked
when a post is created, so a file the platform would refuse fails the request with a
`validation_error` naming the platform and the file, instead of failing the delivery later.

Only limits `shared/platforms/<name>.md` gives as the platform's own word, or as the same
number from several independent implementations, are enforced; where the sources conflict,
the looser number is used (refusing a file the platform takes would be worse than letting the
platform refuse it). What is left out on purpose is listed in docs/platforms.md ("Media
limits checked at acceptance").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from soku.platforms.base import RuleViolation

MEDIA_FORMAT_NOT_SUPPORTED = "media_format_not_supported"
MEDIA_TOO_LARGE = "media_too_large"
VIDEO_TOO_LONG = "video_too_long"
VIDEO_TOO_SHORT = "video_too_short"
ASPECT_RATIO_NOT_SUPPORTED = "aspect_ratio_not_supported"
DIMENSIONS_NOT_SUPPORTED = "dimensions_not_supported"
FRAME_RATE_NOT_SUPPORTED = "frame_rate_not_supported"

MB = 1024 * 1024
JPEG, PNG, GIF, WEBP = "image/jpeg", "image/png", "image/gif", "image/webp"
MP4, MOV, WEBM = "video/mp4", "video/quicktime", "video/webm"
_TYPE_NAMES = {
    JPEG: "JPEG", PNG: "PNG", GIF: "GIF", WEBP: "WebP",
    MP4: "MP4", MOV: "MOV", WEBM: "WebM", "video/x-matroska": "MKV",
}  # fmt: skip


class ProbedMedia(Protocol):
    """What the intake knows of one file (a `media` row has these)."""

    @property
    def kind(self) -> str: ...
    @property
    def content_type(self) -> str: ...
    @property
    def bytes(self) -> int: ...
    @property
    def width(self) -> int | None: ...
    @property
    def height(self) -> int | None: ...
    @property
    def duration_seconds(self) -> float | None: ...
    @property
    def probe(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class FileLimits:
    """Limits on one kind of file; None is "no limit known"."""

    types: frozenset[str] | None = None  # content types taken
    max_bytes: int | None = None
    type_max_bytes: Mapping[str, int] | None = None  # a type's own cap (X's animated GIFs)
    seconds: tuple[float, float] | None = None  # shortest and longest video, inclusive
    aspect: tuple[float, float] | None = None  # width / height, lowest and highest
    min_size: tuple[int, int] | None = None  # width, height at least
    max_side: int | None = None  # neither side longer
    max_pixels: int | None = None  # width x height below
    frame_rate: tuple[float, float] | None = None  # frames per second, inclusive


@dataclass(frozen=True)
class MediaLimits:
    label: str
    image: FileLimits = FileLimits()
    video: FileLimits = FileLimits()


LIMITS: dict[str, MediaLimits] = {
    # x.md [P X-MEDIA-BP]: images JPG/PNG/GIF/WebP up to 5 MB, animated GIFs up to 15 MB;
    # video up to 512 MB, 0.5 to 140 s, 32x32 at least, aspect 1:3 to 3:1, at most 60 fps.
    # The page's largest frame (1280x1024) is not enforced: see docs/platforms.md.
    "x": MediaLimits(
        "X",
        image=FileLimits(max_bytes=5 * MB, type_max_bytes={GIF: 15 * MB}),
        video=FileLimits(
            max_bytes=512 * MB,
            seconds=(0.5, 140),
            aspect=(1 / 3, 3),
            min_size=(32, 32),
            frame_rate=(0, 60),
        ),
    ),
    # threads.md (restating the API's "Media Specifications"): images JPEG or PNG up to 8 MB,
    # aspect at most 10:1; video MOV or MP4 up to 1 GB and 5 min, aspect 0.01:1 to 10:1,
    # 23 to 60 fps.
    "threads": MediaLimits(
        "Threads",
        image=FileLimits(types=frozenset({JPEG, PNG}), max_bytes=8 * MB, aspect=(0.1, 10)),
        video=FileLimits(
            types=frozenset({MP4, MOV}),
            max_bytes=1024 * MB,
            seconds=(0, 300),
            aspect=(0.01, 10),
            frame_rate=(23, 60),
        ),
    ),
    # instagram.md [P IG-CP, IG-MEDIA]: images JPEG only, up to 8 MB, aspect 4:5 to 1.91:1;
    # reels MOV or MP4, 3 s to 15 min, aspect 0.01:1 to 10:1, 23 to 60 fps, and 300 MB or
    # 1 GB (the pages differ: the looser one).
    "instagram": MediaLimits(
        "Instagram",
        image=FileLimits(types=frozenset({JPEG}), max_bytes=8 * MB, aspect=(4 / 5, 1.91)),
        video=FileLimits(
            types=frozenset({MP4, MOV}),
            max_bytes=1024 * MB,
            seconds=(3, 900),
            aspect=(0.01, 10),
            frame_rate=(23, 60),
        ),
    ),
    # facebook.md: a Page photo is "≤4 MB" in one reference and "less than 10MB" in another
    # (the looser one); video up to 240 min (third-party summaries; 10 GB is past our cap).
    "facebook": MediaLimits(
        "Facebook",
        image=FileLimits(max_bytes=10 * MB),
        video=FileLimits(seconds=(0, 240 * 60)),
    ),
    # linkedin.md [L26, the Images and Videos API pages]: images JPG, GIF or PNG under
    # 36,152,320 pixels; video MP4, 3 s to 30 min, 75 KB to 500 MB.
    "linkedin": MediaLimits(
        "LinkedIn",
        image=FileLimits(types=frozenset({JPEG, GIF, PNG}), max_pixels=36_152_320),
        video=FileLimits(types=frozenset({MP4}), max_bytes=500 * MB, seconds=(3, 30 * 60)),
    ),
    # tiktok.md [T27, T9]: photos WebP or JPEG (no PNG) up to 20 MB; video MP4, WebM or MOV,
    # 23 to 60 fps, 360 to 4096 px each side, up to 4 GB and at most 10 min (the API's upper
    # bound; a creator's own maximum may be lower and is asked at delivery).
    "tiktok": MediaLimits(
        "TikTok",
        image=FileLimits(types=frozenset({JPEG, WEBP}), max_bytes=20 * MB),
        video=FileLimits(
            types=frozenset({MP4, WEBM, MOV}),
            max_bytes=4096 * MB,
            seconds=(0, 600),
            min_size=(360, 360),
            max_side=4096,
            frame_rate=(23, 60),
        ),
    ),
    # youtube.md: any video type we take, up to 256 GB; the longest upload depends on the
    # channel (15 min unless verified), so the platform answers for it.
    "youtube": MediaLimits("YouTube"),
    # snapchat.md [S6, S21, three implementations]: Story images JPEG or PNG up to 20 MB;
    # video MP4 (or MOV, the same container), 5 to 60 s, at least 540x960, up to 1 GB.
    "snapchat": MediaLimits(
        "Snapchat",
        image=FileLimits(types=frozenset({JPEG, PNG}), max_bytes=20 * MB),
        video=FileLimits(
            types=frozenset({MP4, MOV}),
            max_bytes=1024 * MB,
            seconds=(5, 60),
            min_size=(540, 960),
        ),
    ),
}


@dataclass(frozen=True)
class MediaViolation:
    """A platform's refusal of the post's `index`-th media file."""

    index: int
    violation: RuleViolation


def check_files(
    platform: str, files: Sequence[ProbedMedia], names: Sequence[str]
) -> list[MediaViolation]:
    """Every way the post's files break the platform's limits (none for an unknown platform);
    `names` say which file is which in the messages (the request's field of each)."""
    limits = LIMITS.get(platform)
    if limits is None:
        return []
    found = []
    for index, media in enumerate(files):
        file_limits = limits.video if media.kind == "video" else limits.image
        for reason, message in _problems(file_limits, media):
            what = "video" if media.kind == "video" else "image"
            text = f"{limits.label} {message.format(what=what, name=names[index])}"
            found.append(MediaViolation(index, RuleViolation(platform, reason, text)))
    return found


def _problems(limits: FileLimits, media: ProbedMedia) -> list[tuple[str, str]]:
    checks = (_type, _size, _duration, _frame, _aspect, _frame_rate)
    return [problem for check in checks if (problem := check(limits, media)) is not None]


Problem = tuple[str, str] | None


def _type(limits: FileLimits, media: ProbedMedia) -> Problem:
    if limits.types is None or media.content_type in limits.types:
        return None
    taken = " or ".join(sorted(_name(t) for t in limits.types))
    message = f"takes {taken} {{what}}s only; {{name}} is {_name(media.content_type)}."
    return MEDIA_FORMAT_NOT_SUPPORTED, message


def _size(limits: FileLimits, media: ProbedMedia) -> Problem:
    cap = (limits.type_max_bytes or {}).get(media.content_type, limits.max_bytes)
    if cap is None or media.bytes <= cap:
        return None
    kind = f"{_name(media.content_type)} " if limits.type_max_bytes else ""
    message = f"takes {kind}{{what}}s up to {_mb(cap)}; {{name}} is {_mb(media.bytes)}."
    return MEDIA_TOO_LARGE, message


def _duration(limits: FileLimits, media: ProbedMedia) -> Problem:
    seconds = media.duration_seconds
    if limits.seconds is None or seconds is None:
        return None
    shortest, longest = limits.seconds
    if seconds > longest:
        message = f"takes videos up to {_time(longest)}; {{name}} lasts {_time(seconds)}."
        return VIDEO_TOO_LONG, message
    if seconds < shortest:
        message = f"takes videos of {_time(shortest)} or more; {{name}} lasts {_time(seconds)}."
        return VIDEO_TOO_SHORT, message
    return None


def _frame(limits: FileLimits, media: ProbedMedia) -> Problem:
    width, height = media.width, media.height
    if width is None or height is None:
        return None
    size = f"{{name}} is {width}x{height}"
    if limits.min_size is not None and (width < limits.min_size[0] or height < limits.min_size[1]):
        least = f"{limits.min_size[0]}x{limits.min_size[1]}"
        return DIMENSIONS_NOT_SUPPORTED, f"takes {{what}}s of at least {least} pixels; {size}."
    if limits.max_side is not None and max(width, height) > limits.max_side:
        message = f"takes {{what}}s up to {limits.max_side} pixels a side; {size}."
        return DIMENSIONS_NOT_SUPPORTED, message
    if limits.max_pixels is not None and width * height >= limits.max_pixels:
        message = f"takes {{what}}s under {limits.max_pixels:,} pixels; {size}."
        return DIMENSIONS_NOT_SUPPORTED, message
    return None


def _aspect(limits: FileLimits, media: ProbedMedia) -> Problem:
    if limits.aspect is None or not media.width or not media.height:
        return None
    lowest, highest = limits.aspect
    ratio = media.width / media.height
    if lowest - 1e-3 <= ratio <= highest + 1e-3:  # 1.91:1 is 1.91, not 1.9100001
        return None
    message = (
        f"takes {{what}}s from {_ratio(lowest)} to {_ratio(highest)} (width:height); {{name}} "
        f"is {media.width}x{media.height} ({_ratio(ratio)})."
    )
    return ASPECT_RATIO_NOT_SUPPORTED, message


def _frame_rate(limits: FileLimits, media: ProbedMedia) -> Problem:
    rate = media.probe.get("frame_rate") if media.probe else None
    if limits.frame_rate is None or not isinstance(rate, int | float):
        return None
    lowest, highest = limits.frame_rate
    if lowest - 0.01 <= rate <= highest + 0.01:  # 59.94 and 23.976 are in
        return None
    span = f"up to {highest:g}" if lowest <= 0 else f"{lowest:g} to {highest:g}"
    message = f"takes videos at {span} frames per second; {{name}} has {rate:.3g}."
    return FRAME_RATE_NOT_SUPPORTED, message


def _name(content_type: str) -> str:
    return _TYPE_NAMES.get(content_type, content_type)


def _mb(size: int) -> str:
    return f"{size / MB:.1f} MB" if size % MB else f"{size // MB} MB"


def _time(seconds: float) -> str:
    if seconds < 60 or seconds % 60:
        return f"{seconds:.3g} s" if seconds < 60 else f"{seconds:.0f} s"
    return f"{seconds / 60:g} min"


def _ratio(value: float) -> str:
    """1.91 as "1.91:1", 0.8 as "4:5", 1/3 as "1:3"."""
    if value >= 1:
        return f"{value:.3g}:1"
    inverse = 1 / value
    if abs(inverse - round(inverse)) < 1e-6:
        return f"1:{round(inverse)}"
    for denominator in range(2, 11):
        numerator = value * denominator
        if abs(numerator - round(numerator)) < 1e-6:
            return f"{round(numerator)}:{denominator}"
    return f"{value:.3g}:1"
