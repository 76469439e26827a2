"""Text measurement: X's weighted count (twitter-text v3) and the plain counts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soku.platforms import text as text_module
from soku.platforms.text import (
    count_hashtags,
    count_mentions,
    find_urls,
    plain_length,
    threads_length,
    url_spans,
    utf8_length,
    utf16_length,
    x_weighted_length,
)

ZWJ = "\u200d"
FAMILY = ZWJ.join(["\U0001f468", "\U0001f469", "\U0001f467", "\U0001f466"])  # 👨‍👩‍👧‍👦
ENGLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("This is a test.", 15),
        ("a" * 280, 280),
        ("é", 1),
        ("Привет", 6),  # Cyrillic is inside U+0000-U+10FF: weight 1
        ("故人西辞", 8),  # CJK weighs 2
        ("저찀쯿쿿", 8),  # Hangul weighs 2
        ("\u2013\u2014\u201c\u201d", 4),  # dashes and quotes in U+2010-U+201F weigh 1
        ("\u2032\u2037", 2),  # primes in U+2032-U+2037 weigh 1
        ("\u2038", 2),  # just past the last light range
        ("\u1100", 2),  # just past U+10FF
        ("\U00010000", 2),  # outside the BMP
    ],
)
def test_x_weights_code_points_by_range(text: str, expected: int) -> None:
    assert x_weighted_length(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\U0001f637", 2),  # 😷
        ("\U0001f637\U0001f47e\U0001f621\U0001f525\U0001f4a9", 10),  # conformance: 5 emoji
        (FAMILY, 2),  # four people joined by three ZWJ
        ("H\U0001f431\u263a" + FAMILY, 7),  # conformance: H🐱☺👨‍👩‍👧‍👦
        ("\U0001f64b\U0001f3fd\U0001f468\u200d\U0001f3a4", 4),  # conformance: 🙋🏽👨‍🎤
        ("\U0001f44d\U0001f3fd", 2),  # thumbs up with a skin tone
        ("\U0001f9d1\U0001f3fd\u200d\U0001f91d\u200d\U0001f9d1\U0001f3fb", 2),  # tones + ZWJ
        ("\U0001f3f3\ufe0f\u200d\U0001f308", 2),  # rainbow flag: VS16 inside a ZWJ sequence
        ("\U0001f1ef\U0001f1f5", 2),  # flag: two regional indicators
        ("\U0001f1ef\U0001f1f5\U0001f1fa\U0001f1f8", 4),  # two flags
        (ENGLAND, 2),  # subdivision flag: black flag + tags + cancel tag
        ("1\ufe0f\u20e3", 2),  # keycap
        ("#\u20e3", 2),  # keycap without VS16
        ("\u2764\ufe0f", 2),  # heart with VS16
        ("\u00a9", 2),  # © is an emoji for twemoji unless VS15 follows
        ("\u00a9\ufe0e", 3),  # © in text presentation: 1, plus VS15: 2
        ("1", 1),  # a digit alone is no keycap
        ("a" + ZWJ + "b", 3),  # a lone ZWJ weighs 1
    ],
)
def test_x_counts_each_emoji_sequence_as_two(text: str, expected: int) -> None:
    assert x_weighted_length(text) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://a.co",
        "https://example.com",
        "HTTPS://www.ExaMPLE.COM/index.html",
        "https://example.com/" + "x" * 500,
        "http://user:PASSW0RD@example.com:8080/login.php",
        "http://192.168.0.1/index.html?src=asdf",
        "https://example.com/path?q=1&lang=en#top",
    ],
)
def test_x_counts_every_url_as_23(url: str) -> None:
    assert x_weighted_length(url) == 23
    assert x_weighted_length(f"see {url} now") == 4 + 23 + 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Test https://test.com test https://test.com test", 5 + 23 + 6 + 23 + 5),
        ("https://www.twitter.com/aloha " * 10, 240),  # conformance: 10 URLs
        ("see https://example.com.", 4 + 23 + 1),  # the full stop is not part of the URL
        ("(https://example.com)", 1 + 23 + 1),  # nor an unbalanced closing parenthesis
        ("https://en.wikipedia.org/wiki/A_(b)", 23),  # a balanced one is
        ("xhttps://example.com", 20),  # glued to a word: not a URL
        ("ftp://example.com", 17),  # not http(s)
        ("example.com", 11),  # bare domains are not URLs here (documented simplification)
        ("http://localhost", 16),  # no dotted host
        ("故https://example.com", 2 + 23),  # CJK before a URL does not glue it
    ],
)
def test_x_finds_urls_like_twitter_text(text: str, expected: int) -> None:
    assert x_weighted_length(text) == expected


def test_x_normalizes_to_nfc_before_counting() -> None:
    assert x_weighted_length("A\u0301B") == 2  # A + combining acute is one Á
    assert x_weighted_length("A\ufb2c") == 4  # conformance: U+FB2C decomposes into 3 Hebrew
    assert x_weighted_length("e\u0301" * 280) == 280
    assert x_weighted_length("e\u0301" * 281) == 281


def test_x_limit_boundary_with_mixed_content() -> None:
    base = "https://example.com/a-very-long-path " + "故" * 100  # 23 + 1 + 200
    assert x_weighted_length(base + "a" * 56) == 280
    assert x_weighted_length(base + "a" * 57) == 281
    assert x_weighted_length("\U0001f600" * 140) == 280
    assert x_weighted_length("\U0001f600" * 140 + ".") == 281


def test_plain_length_counts_code_points_after_nfc() -> None:
    assert plain_length("") == 0
    assert plain_length("abc") == 3
    assert plain_length("e\u0301") == 1
    assert plain_length("\U0001f600") == 1
    assert plain_length(FAMILY) == 7


def test_utf16_and_utf8_lengths() -> None:
    assert utf16_length("a\U0001f600") == 3
    assert utf16_length("é") == 1
    assert utf16_length("e\u0301") == 1  # NFC first
    assert utf8_length("a") == 1
    assert utf8_length("é") == 2
    assert utf8_length("故") == 3
    assert utf8_length("\U0001f600") == 4


def test_threads_counts_emoji_as_their_utf8_bytes() -> None:
    assert threads_length("abc") == 3
    assert threads_length("é故") == 2  # only emoji are counted in bytes
    assert threads_length("\U0001f600") == 4
    assert threads_length("a\u2764\ufe0f") == 1 + 3 + 3
    assert threads_length(FAMILY) == 4 * 4 + 3 * 3


def test_find_urls_keeps_order_and_repeats() -> None:
    text = "a https://x.io/1, b http://y.io and https://x.io/1!"
    assert find_urls(text) == ["https://x.io/1", "http://y.io", "https://x.io/1"]
    assert find_urls("no links here, just example.com") == []


def test_hashtags_and_mentions() -> None:
    assert count_hashtags("#one #two2 #3 word#not \uff03wide #_") == 4
    assert count_mentions("@ann and @bob.smith, mail me at a@b.com") == 2
    assert count_hashtags("") == 0
    assert count_mentions("") == 0


# ASCII text takes a shortcut (no emoji, one weight per character); the walk it skips must
# give the same counts, URLs included.
_ASCII_PIECES = st.sampled_from(
    ["https://example.com/a", "http://t.co", "(https://x.com/p?q=1).", "#1", "*", " ", "\n"]
)
_ASCII_TEXT = st.lists(
    st.one_of(st.text(st.characters(min_codepoint=0, max_codepoint=127)), _ASCII_PIECES)
).map("".join)


@given(_ASCII_TEXT)
def test_ascii_shortcut_counts_as_the_walk_does(text: str) -> None:
    assert text.isascii()
    assert x_weighted_length(text) == text_module._x_walk(text, dict(url_spans(text)))
    assert threads_length(text) == text_module._threads_walk(text)


@pytest.mark.parametrize(
    ("text", "x", "threads"),
    [
        ("a" * 300, 300, 300),
        ("see https://example.com/a/very/long/path/that/is/long", 27, 53),
        ("#\u20e3 keycap", 9, 11),  # not ASCII: the walk (the keycap counts 2 on X, 4 bytes)
        ("https://a.io and https://b.io", 51, 29),
    ],
)
def test_counts_either_side_of_the_shortcut(text: str, x: int, threads: int) -> None:
    assert x_weighted_length(text) == x
    assert threads_length(text) == threads
