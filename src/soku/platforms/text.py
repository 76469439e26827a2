"""How long a text is, as each platform counts it.

Every count runs on the NFC form of the text, so a letter typed as a base plus a combining
mark counts like its precomposed form.

X's count follows twitter-text v3 (config/v3.json in twitter/twitter-text): every code point
weighs 200 (two characters) except those in four ranges (U+0000-U+10FF, U+2000-U+200D,
U+2010-U+201F, U+2032-U+2037), which weigh 100 (one character); the scale is 100; each URL
weighs 23 characters however long it is; each emoji sequence (ZWJ sequence, skin tone, flag,
keycap, tag sequence) weighs 200 however many code points it holds.

Two simplifications, where this count can differ from X's:
- URLs are found only when they start with http:// or https://; twitter-text also counts bare
  domains ("example.com") as URLs (23 each); here a bare domain counts letter by letter.
- Emoji sequences are recognised by their shape (pictograph, optional skin tone or VS16,
  joined by ZWJ), not against twemoji's list of sequences that really exist; an invented
  sequence (two pictographs joined by ZWJ that no vendor draws) counts 2 here, more on X.
"""

from __future__ import annotations

import re
import unicodedata

X_MAX_WEIGHTED_LENGTH = 280
X_URL_LENGTH = 23

_SCALE = 100
_DEFAULT_WEIGHT = 200
_LIGHT_WEIGHT = 100
# Code point ranges weighing 100 in twitter-text v3; everything else weighs 200.
_LIGHT_RANGES = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))

_ZWJ = "\u200d"
_VS15 = "\ufe0e"  # text presentation: the character is not drawn as an emoji
_VS16 = "\ufe0f"  # emoji presentation
_KEYCAP = "\u20e3"
_KEYCAP_BASES = "#*0123456789"
_TAG_RANGE = (0xE0020, 0xE007E)
_TAG_END = 0xE007F
_BLACK_FLAG = 0x1F3F4
_REGIONAL_INDICATORS = (0x1F1E6, 0x1F1FF)
_SKIN_TONES = (0x1F3FB, 0x1F3FF)
# Emoji bases (Unicode's Extended_Pictographic, rounded to whole blocks above U+1F000).
_PICTOGRAPHIC = (
    (0x00A9, 0x00A9), (0x00AE, 0x00AE), (0x203C, 0x203C), (0x2049, 0x2049),
    (0x2122, 0x2122), (0x2139, 0x2139), (0x2194, 0x2199), (0x21A9, 0x21AA),
    (0x231A, 0x231B), (0x2328, 0x2328), (0x2388, 0x2388), (0x23CF, 0x23CF),
    (0x23E9, 0x23F3), (0x23F8, 0x23FA), (0x24C2, 0x24C2), (0x25AA, 0x25AB),
    (0x25B6, 0x25B6), (0x25C0, 0x25C0), (0x25FB, 0x25FE), (0x2600, 0x27BF),
    (0x2934, 0x2935), (0x2B05, 0x2B07), (0x2B1B, 0x2B1C), (0x2B50, 0x2B50),
    (0x2B55, 0x2B55), (0x3030, 0x3030), (0x303D, 0x303D), (0x3297, 0x3297),
    (0x3299, 0x3299), (0x1F000, 0x1FAFF), (0x1FC00, 0x1FFFD),
)  # fmt: skip

_URL = re.compile(
    r"""
    (?<![A-Za-z0-9@\uFF20$\#\uFF03])            # not glued to a word, @mention, $cashtag, #tag
    https?://
    (?:[^\s/?#@<>"]+@)?                           # user info
    (?:\[[0-9A-Fa-f:.]+\]                         # IPv6 literal
      |[^\s/?#:@<>".]+(?:\.[^\s/?#:@<>".]+)+)     # dotted host name or IPv4
    (?::[0-9]{1,5})?
    (?:[/?#][^\s<>"]*)?
    """,
    re.IGNORECASE | re.VERBOSE,
)
_TRAILING_PUNCTUATION = ".,:;!?'\"…"
_CLOSERS = {")": "(", "]": "["}
_HASHTAG = re.compile(r"(?<![\w&#\uFF03])[#\uFF03]\w*[^\W\d]\w*")
_MENTION = re.compile(r"(?<![\w@\uFF20])[@\uFF20]\w[\w.]*")


def nfc(text: str) -> str:
    """The text in Unicode normalization form C."""
    return unicodedata.normalize("NFC", text)


def plain_length(text: str) -> int:
    """Count of Unicode code points after NFC: what most platforms call characters."""
    return len(nfc(text))


def utf16_length(text: str) -> int:
    """Count of UTF-16 code units after NFC (an emoji outside the BMP counts 2)."""
    return len(nfc(text).encode("utf-16-le")) // 2


def utf8_length(text: str) -> int:
    """Count of UTF-8 bytes after NFC."""
    return len(nfc(text).encode("utf-8"))


def url_spans(text: str) -> list[tuple[int, int]]:
    """Start and end offsets of every http(s) URL in `text`, left to right.

    A URL needs a dotted host (or an IP literal); trailing sentence punctuation and an
    unbalanced closing bracket are left out, as twitter-text does. Bare domains without a
    scheme are not URLs here.
    """
    spans: list[tuple[int, int]] = []
    for match in _URL.finditer(text):
        url = _without_trailing_punctuation(match.group())
        if _URL.fullmatch(url):
            spans.append((match.start(), match.start() + len(url)))
    return spans


def find_urls(text: str) -> list[str]:
    """Every http(s) URL in the NFC form of `text`, in order, repeats included."""
    normalized = nfc(text)
    return [normalized[start:end] for start, end in url_spans(normalized)]


def count_hashtags(text: str) -> int:
    """Number of #hashtags (a # followed by a word that is not only digits)."""
    return len(_HASHTAG.findall(nfc(text)))


def count_mentions(text: str) -> int:
    """Number of @mentions (an @ not glued to a preceding word, so emails do not count)."""
    return len(_MENTION.findall(nfc(text)))


def x_weighted_length(text: str) -> int:
    """X's weighted length of `text` under twitter-text v3 (see the module docstring)."""
    normalized = nfc(text)
    spans = url_spans(normalized)
    if normalized.isascii():  # every character weighs one and none is an emoji: only URLs
        return len(normalized) + sum(X_URL_LENGTH - (end - start) for start, end in spans)
    return _x_walk(normalized, dict(spans))


def _x_walk(normalized: str, url_ends: dict[int, int]) -> int:
    """`x_weighted_length` code point by code point: URLs (start -> end), emoji sequences,
    then each code point's weight."""
    total = 0
    index = 0
    while index < len(normalized):
        url_end = url_ends.get(index)
        if url_end is not None:
            total += X_URL_LENGTH * _SCALE
            index = url_end
            continue
        emoji_end = emoji_sequence_end(normalized, index)
        if emoji_end > index:
            total += _DEFAULT_WEIGHT
            index = emoji_end
            continue
        total += _code_point_weight(ord(normalized[index]))
        index += 1
    return total // _SCALE


def threads_length(text: str) -> int:
    """Threads' length: one per code point, except that emoji count as their UTF-8 bytes."""
    normalized = nfc(text)
    if normalized.isascii():  # no emoji is made of ASCII alone (a keycap needs U+20E3)
        return len(normalized)
    return _threads_walk(normalized)


def _threads_walk(normalized: str) -> int:
    """`threads_length` code point by code point."""
    total = 0
    index = 0
    while index < len(normalized):
        emoji_end = emoji_sequence_end(normalized, index)
        if emoji_end > index:
            total += len(normalized[index:emoji_end].encode("utf-8"))
            index = emoji_end
        else:
            total += 1
            index += 1
    return total


def emoji_sequence_end(text: str, start: int) -> int:
    """Where the emoji sequence starting at `start` ends, or `start` if none starts there."""
    code_point = ord(text[start])
    if _within(code_point, _REGIONAL_INDICATORS):
        follows = start + 1 < len(text) and _within(ord(text[start + 1]), _REGIONAL_INDICATORS)
        return start + 2 if follows else start + 1
    if text[start] in _KEYCAP_BASES:
        return _keycap_end(text, start)
    end = _emoji_element_end(text, start)
    while end > start and end + 1 < len(text) and text[end] == _ZWJ:
        joined_end = _emoji_element_end(text, end + 1)
        if joined_end == end + 1:
            break
        end = joined_end
    return end


def _emoji_element_end(text: str, start: int) -> int:
    """End of one pictograph with its skin tone, VS16 or tag run; `start` if it is none."""
    if not _is_pictographic(ord(text[start])):
        return start
    end = start + 1
    if end < len(text) and text[end] == _VS15:
        return start
    if end < len(text) and _within(ord(text[end]), _SKIN_TONES):
        end += 1
    if end < len(text) and text[end] == _VS16:
        end += 1
    if ord(text[start]) == _BLACK_FLAG:
        end = _tag_run_end(text, end)
    return end


def _keycap_end(text: str, start: int) -> int:
    end = start + 1
    if end < len(text) and text[end] == _VS16:
        end += 1
    return end + 1 if end < len(text) and text[end] == _KEYCAP else start


def _tag_run_end(text: str, start: int) -> int:
    """End of a run of tag characters closed by CANCEL TAG (subdivision flags)."""
    end = start
    while end < len(text) and _within(ord(text[end]), _TAG_RANGE):
        end += 1
    if end > start and end < len(text) and ord(text[end]) == _TAG_END:
        return end + 1
    return start


def _without_trailing_punctuation(url: str) -> str:
    while url and (url[-1] in _TRAILING_PUNCTUATION or _closes_nothing(url)):
        url = url[:-1]
    return url


def _closes_nothing(url: str) -> bool:
    """Whether the URL ends in a closing bracket that no bracket inside it opened."""
    last = url[-1]
    return last in _CLOSERS and url.count(_CLOSERS[last]) < url.count(last)


def _code_point_weight(code_point: int) -> int:
    if code_point <= 0x10FF:  # the first light range: most text ends here at once
        return _LIGHT_WEIGHT
    if any(_within(code_point, bounds) for bounds in _LIGHT_RANGES):
        return _LIGHT_WEIGHT
    return _DEFAULT_WEIGHT


def _is_pictographic(code_point: int) -> bool:
    if code_point < 0xA9:  # below the first emoji base: plain ASCII and Latin-1 letters
        return False
    return any(_within(code_point, bounds) for bounds in _PICTOGRAPHIC)


def _within(code_point: int, bounds: tuple[int, int]) -> bool:
    return bounds[0] <= code_point <= bounds[1]
