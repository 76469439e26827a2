"""Each platform's limits on a fetched file: what is refused, why, and in which words."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from soku.platforms import PLATFORM_NAMES
from soku.platforms.media_limits import LIMITS, MB, check_files


@dataclass(frozen=True)
class File:
    """A file as the media intake describes it once probed (a `media` row's fields)."""

    kind: str = "image"
    content_type: str = "image/jpeg"
    bytes: int = 100_000
    width: int | None = 1080
    height: int | None = 1080
    duration_seconds: float | None = None
    probe: Mapping[str, Any] = field(default_factory=dict)


def clip(seconds: float = 10, size: tuple[int, int] = (1080, 1920), fps: float = 30) -> File:
    width, height = size
    return File("video", "video/mp4", 5 * MB, width, height, seconds, {"frame_rate": fps})


def reasons(platform: str, *files: File) -> list[str]:
    names = [f"file {i}" for i in range(len(files))]
    return [found.violation.reason for found in check_files(platform, files, names)]


def test_every_platform_has_limits_and_takes_an_ordinary_photo_and_clip() -> None:
    assert set(LIMITS) == set(PLATFORM_NAMES)
    for platform in PLATFORM_NAMES:
        assert reasons(platform, File(), clip()) == [], platform


@pytest.mark.parametrize(
    ("platform", "file", "reason"),
    [
        ("instagram", File(content_type="image/png"), "media_format_not_supported"),
        ("tiktok", File(content_type="image/png"), "media_format_not_supported"),
        ("linkedin", File("video", "video/quicktime", MB, 1080, 1920, 10),
         "media_format_not_supported"),
        ("x", File(bytes=5 * MB + 1), "media_too_large"),
        ("instagram", File(bytes=8 * MB + 1), "media_too_large"),
        ("x", clip(seconds=141), "video_too_long"),
        ("threads", clip(seconds=301), "video_too_long"),
        ("tiktok", clip(seconds=601), "video_too_long"),
        ("linkedin", clip(seconds=2.9), "video_too_short"),
        ("snapchat", clip(seconds=61), "video_too_long"),
        ("snapchat", clip(seconds=4), "video_too_short"),
        ("instagram", File(width=1000, height=1300), "aspect_ratio_not_supported"),
        ("instagram", File(width=2000, height=1000), "aspect_ratio_not_supported"),
        ("x", clip(size=(400, 1300)), "aspect_ratio_not_supported"),
        ("snapchat", clip(size=(480, 854)), "dimensions_not_supported"),
        ("tiktok", clip(size=(320, 640)), "dimensions_not_supported"),
        ("tiktok", clip(size=(4100, 2160)), "dimensions_not_supported"),
        ("linkedin", File(width=6100, height=6000), "dimensions_not_supported"),
        ("threads", clip(fps=15), "frame_rate_not_supported"),
        ("x", clip(fps=120), "frame_rate_not_supported"),
    ],
)  # fmt: skip
def test_a_file_past_a_limit_is_refused_with_its_reason(
    platform: str, file: File, reason: str
) -> None:
    assert reasons(platform, file) == [reason]


@pytest.mark.parametrize(
    ("platform", "file"),
    [
        ("x", File(content_type="image/gif", bytes=15 * MB)),  # animated GIFs: 15 MB
        ("instagram", File(width=1080, height=1350)),  # 4:5 exactly
        ("instagram", File(width=1910, height=1000)),  # 1.91:1 exactly
        ("threads", clip(fps=23.976)),
        ("threads", clip(fps=59.94)),
        ("linkedin", clip(seconds=3)),
        ("snapchat", clip(seconds=5, size=(540, 960))),
        ("tiktok", File(content_type="image/webp")),
        ("youtube", clip(seconds=12 * 3600, size=(7680, 4320), fps=120)),
        ("facebook", File(content_type="image/png", bytes=10 * MB)),
    ],
)
def test_a_file_at_a_limit_is_taken(platform: str, file: File) -> None:
    assert reasons(platform, file) == []


def test_what_the_probe_did_not_learn_is_not_held_against_the_file() -> None:
    unknown = File("video", "video/mp4", MB, None, None, None, {})
    for platform in PLATFORM_NAMES:
        assert reasons(platform, unknown) == [], platform


def test_the_message_names_the_platform_the_file_and_both_numbers() -> None:
    found = check_files("instagram", [File(), clip(seconds=1.5, fps=12)], ["a", "b"])
    assert [(f.index, f.violation.reason) for f in found] == [
        (1, "video_too_short"),
        (1, "frame_rate_not_supported"),
    ]
    assert found[0].violation.platform == "instagram"
    assert found[0].violation.message == ("Instagram takes videos of 3 s or more; b lasts 1.5 s.")
    assert found[1].violation.message == (
        "Instagram takes videos at 23 to 60 frames per second; b has 12."
    )
    png = check_files("instagram", [File(content_type="image/png", width=2000, height=1000)], ["c"])
    assert [f.violation.message for f in png] == [
        "Instagram takes JPEG images only; c is PNG.",
        "Instagram takes images from 4:5 to 1.91:1 (width:height); c is 2000x1000 (2:1).",
    ]
    big = check_files("x", [File(content_type="image/gif", bytes=16 * MB)], ["d"])
    assert big[0].violation.message == "X takes GIF images up to 15 MB; d is 16 MB."


def test_an_unknown_platform_has_no_limits() -> None:
    assert check_files("myspace", [File(content_type="image/png")], ["a"]) == []
