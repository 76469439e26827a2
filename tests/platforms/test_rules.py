"""Each platform's content rules, at and just past every limit."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from soku.platforms import PLATFORM_NAMES, RULES, ContentDraft, RuleViolation, check_all
from soku.platforms import x as x_module
from soku.platforms.rules import MediaRules, PlainTextRules
from soku.platforms.youtube import title_and_description

MakeDraft = Callable[[str], ContentDraft]


def text_post(text: str = "Hello") -> ContentDraft:
    return ContentDraft(text=text, media_type="text")


def image_post(text: str = "", count: int = 1) -> ContentDraft:
    urls = tuple(f"https://cdn.example.com/{n}.jpg" for n in range(count))
    return ContentDraft(text=text, media_type="image", image_urls=urls)


def video_post(text: str | None = "A title", count: int = 1) -> ContentDraft:
    urls = tuple(f"https://cdn.example.com/{n}.mp4" for n in range(count))
    return ContentDraft(text=text, media_type="video", video_urls=urls)


def reasons(platform: str, draft: ContentDraft) -> list[str]:
    violations = RULES[platform].check(draft)
    assert all(violation.platform == platform for violation in violations)
    return [violation.reason for violation in violations]


def only_violation(platform: str, draft: ContentDraft) -> RuleViolation:
    violations = RULES[platform].check(draft)
    assert len(violations) == 1, violations
    return violations[0]


# --- the registry ------------------------------------------------------------------------


def test_platform_names_in_product_order() -> None:
    assert PLATFORM_NAMES == (
        "instagram",
        "tiktok",
        "youtube",
        "facebook",
        "x",
        "threads",
        "linkedin",
        "snapchat",
    )
    assert list(RULES) == list(PLATFORM_NAMES)
    assert all(RULES[name].name == name for name in PLATFORM_NAMES)
    assert RULES["x"] is x_module.RULES
    assert type(RULES["x"]).__name__ == "XRules"


# --- what kinds of content each platform takes --------------------------------------------


@pytest.mark.parametrize("platform", ["x", "threads", "facebook", "linkedin"])
def test_text_only_posts_allowed(platform: str) -> None:
    assert RULES[platform].check(text_post("Just shipped a new feature.")) == []


@pytest.mark.parametrize("platform", ["instagram", "tiktok", "youtube", "snapchat"])
def test_text_only_posts_refused(platform: str) -> None:
    violation = only_violation(platform, text_post("Just shipped a new feature."))
    assert violation.reason == "text_only_not_supported"
    assert violation.platform == platform


def test_text_only_message_says_what_to_add() -> None:
    assert only_violation("youtube", text_post()).message == (
        "YouTube does not publish text-only posts; add a video."
    )
    assert only_violation("instagram", text_post()).message == (
        "Instagram does not publish text-only posts; add an image or a video."
    )


@pytest.mark.parametrize(
    ("platform", "limit"),
    [
        ("x", 4),
        ("threads", 20),
        ("instagram", 10),
        ("facebook", 10),
        ("linkedin", 9),
        ("tiktok", 35),
        ("snapchat", 1),
    ],
)
def test_image_count_limits(platform: str, limit: int) -> None:
    assert RULES[platform].check(image_post(count=1)) == []
    assert RULES[platform].check(image_post(count=limit)) == []
    violation = only_violation(platform, image_post(count=limit + 1))
    assert violation.reason == "too_many_images"
    assert f"at most {limit} image" in violation.message
    assert f"this post has {limit + 1}." in violation.message


def test_snapchat_image_message_is_singular() -> None:
    assert only_violation("snapchat", image_post(count=2)).message == (
        "Snapchat allows at most 1 image per post; this post has 2."
    )


@pytest.mark.parametrize("count", [1, 3])
def test_youtube_refuses_images(count: int) -> None:
    violation = only_violation("youtube", image_post("A title", count=count))
    assert violation.reason == "images_not_supported"


@pytest.mark.parametrize("platform", PLATFORM_NAMES)
def test_one_video_is_fine_everywhere(platform: str) -> None:
    assert RULES[platform].check(video_post("A title")) == []


@pytest.mark.parametrize("platform", PLATFORM_NAMES)
@pytest.mark.parametrize("count", [2, 5])
def test_more_than_one_video_is_refused_everywhere(platform: str, count: int) -> None:
    violation = only_violation(platform, video_post("A title", count=count))
    assert violation.reason == "too_many_videos"
    assert violation.message.endswith(f"at most 1 video per post; this post has {count}.")


# --- text limits, at the limit and one past it --------------------------------------------


@pytest.mark.parametrize(
    ("platform", "make", "limit"),
    [
        ("x", text_post, 280),
        ("threads", text_post, 500),
        ("instagram", image_post, 2200),
        ("facebook", text_post, 63_206),
        ("linkedin", text_post, 3000),
        ("tiktok", video_post, 2200),
        ("tiktok", image_post, 4000),
        ("youtube", video_post, 100),
        ("snapchat", video_post, 160),
    ],
)
def test_text_limit_boundary(platform: str, make: MakeDraft, limit: int) -> None:
    assert RULES[platform].check(make("a" * limit)) == []
    violation = only_violation(platform, make("a" * (limit + 1)))
    assert violation.reason == "text_too_long"
    assert f"at most {limit:,} " in violation.message
    assert f"this text counts {limit + 1:,}" in violation.message


def test_x_message_names_weighted_count_and_url_length() -> None:
    text = "a" * 288 + " https://example.com/" + "p" * 80
    violation = only_violation("x", text_post(text))
    assert violation.message == (
        "X allows at most 280 weighted characters; this text counts 312 (URLs count as 23)."
    )


def test_x_counts_cjk_double() -> None:
    assert RULES["x"].check(text_post("故" * 140)) == []
    assert reasons("x", text_post("故" * 141)) == ["text_too_long"]


def test_x_long_url_fits() -> None:
    text = "a" * 256 + " https://example.com/" + "p" * 1000
    assert RULES["x"].check(image_post(text, count=4)) == []
    assert reasons("x", image_post(text + "!", count=4)) == ["text_too_long"]


def test_x_emoji_sequences_weigh_two() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert RULES["x"].check(text_post(family * 140)) == []
    assert reasons("x", text_post(family * 140 + "a")) == ["text_too_long"]


def test_threads_counts_emoji_bytes() -> None:
    assert RULES["threads"].check(text_post("a" * 496 + "\U0001f600")) == []
    violation = only_violation("threads", text_post("a" * 497 + "\U0001f600"))
    assert violation.reason == "text_too_long"
    assert "this text counts 501" in violation.message


def test_threads_allows_five_different_links() -> None:
    links = " ".join(f"https://site{n}.example.com" for n in range(5))
    assert RULES["threads"].check(text_post(links + " https://site0.example.com")) == []
    violation = only_violation("threads", text_post(links + " https://site5.example.com"))
    assert violation.reason == "too_many_links"
    assert violation.message == (
        "Threads allows at most 5 different links per post; this text has 6."
    )


def test_instagram_counts_code_points() -> None:
    assert RULES["instagram"].check(image_post("\U0001f600" * 2200)) == []
    assert reasons("instagram", image_post("\U0001f600" * 2201)) == ["text_too_long"]


def test_instagram_hashtag_limit() -> None:
    tags = " ".join(f"#tag{n}" for n in range(30))
    assert RULES["instagram"].check(image_post(tags)) == []
    violation = only_violation("instagram", image_post(tags + " #one_more"))
    assert violation.reason == "too_many_hashtags"
    assert "at most 30 hashtags" in violation.message
    assert "has 31" in violation.message


def test_instagram_mention_limit() -> None:
    mentions = " ".join(f"@user{n}" for n in range(20))
    assert RULES["instagram"].check(image_post(mentions + " write to a@b.com")) == []
    violation = only_violation("instagram", image_post(mentions + " @another"))
    assert violation.reason == "too_many_mentions"
    assert "has 21" in violation.message


def test_tiktok_counts_utf16_units() -> None:
    assert RULES["tiktok"].check(video_post("\U0001f600" * 1100)) == []
    violation = only_violation("tiktok", video_post("\U0001f600" * 1100 + "a"))
    assert "this text counts 2,201" in violation.message
    assert "UTF-16" in violation.message


def test_tiktok_photo_description_allows_more_than_video_caption() -> None:
    assert RULES["tiktok"].check(image_post("a" * 3000, count=35)) == []
    assert reasons("tiktok", video_post("a" * 3000)) == ["text_too_long"]


def test_youtube_title_is_the_first_line() -> None:
    assert title_and_description("  My video \n\nLine one\nLine two ") == (
        "My video",
        "Line one\nLine two",
    )
    assert title_and_description(None) == ("", "")
    text = "t" * 100 + "\n" + "d" * 4000
    assert RULES["youtube"].check(video_post(text)) == []


@pytest.mark.parametrize("text", [None, "", "   ", "\nA description only"])
def test_youtube_requires_a_title(text: str | None) -> None:
    violation = only_violation("youtube", video_post(text))
    assert violation.reason == "text_required"


def test_youtube_description_limit_is_in_bytes() -> None:
    assert RULES["youtube"].check(video_post("Title\n" + "é" * 2500)) == []
    violation = only_violation("youtube", video_post("Title\n" + "é" * 2500 + "a"))
    assert violation.reason == "text_too_long"
    assert "at most 5,000 bytes" in violation.message
    assert "this text counts 5,001" in violation.message


@pytest.mark.parametrize("text", ["A <b>bold</b> title", "Title\nSee -> here"])
def test_youtube_refuses_angle_brackets(text: str) -> None:
    assert reasons("youtube", video_post(text)) == ["invalid_characters"]


def test_snapchat_image_text_is_not_checked() -> None:
    assert RULES["snapchat"].check(image_post("a" * 1000)) == []


def test_several_violations_are_all_reported() -> None:
    draft = ContentDraft(
        text="a" * 2201,
        media_type="image",
        image_urls=tuple(f"https://cdn.example.com/{n}.jpg" for n in range(11)),
    )
    assert reasons("instagram", draft) == ["too_many_images", "text_too_long"]
    assert reasons("youtube", text_post("<" + "a" * 100)) == [
        "text_only_not_supported",
        "text_too_long",
        "invalid_characters",
    ]


def test_missing_text_is_not_a_length_problem() -> None:
    draft = ContentDraft(text=None, media_type="image", image_urls=("https://cdn/1.jpg",))
    for platform in PLATFORM_NAMES:
        if platform != "youtube":
            assert RULES[platform].check(draft) == []


# --- check_all ----------------------------------------------------------------------------


def test_check_all_follows_the_given_order() -> None:
    draft = text_post("a" * 600)
    found = check_all(draft, ["x", "instagram", "threads", "facebook"])
    assert [(v.platform, v.reason) for v in found] == [
        ("x", "text_too_long"),
        ("instagram", "text_only_not_supported"),
        ("threads", "text_too_long"),
    ]


def test_check_all_checks_each_platform_once_and_skips_unknown_names() -> None:
    draft = text_post("a" * 600)
    found = check_all(draft, iter(["x", "myspace", "x", "snapchat", "snapchat"]))
    assert [(v.platform, v.reason) for v in found] == [
        ("x", "text_too_long"),
        ("snapchat", "text_only_not_supported"),
    ]


def test_check_all_with_nothing_to_check() -> None:
    assert check_all(text_post(), []) == []
    assert check_all(video_post("Fine"), PLATFORM_NAMES) == []


def test_plain_text_rules_check_the_media_and_the_text_in_plain_characters() -> None:
    rules = PlainTextRules("demo", "Demo", MediaRules(text_only=True, max_images=2), 5)
    assert rules.check(text_post("héllo")) == []
    too_much = [violation.reason for violation in rules.check(image_post("hello!", count=3))]
    assert too_much == ["too_many_images", "text_too_long"]
    assert "Demo allows at most 5 characters" in rules.check(text_post("hello!"))[0].message
