"""The templates' text layout and fonts (`soku.templates.render`), without HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw, ImageFont

from soku.config import Settings
from soku.templates import render
from soku.templates.catalog import ASPECT_SIZES, TEMPLATES, check_config
from soku.templates.catalog import render as draw_template
from soku.templates.render import Box, fit, wrap


def test_wraps_at_words_and_keeps_line_breaks() -> None:
    face = render.font(20)
    words = ["one", "two", "three", "four", "five", "six", "seven"]
    lines = wrap(" ".join(words), face, 150)
    assert len(lines) > 2 and " ".join(lines).split() == words
    assert all(face.getlength(line) <= 150 for line in lines)
    assert wrap("one two\nthree\n\nfour", face, 1000) == ["one two", "three", "", "four"]


def test_a_word_wider_than_the_line_is_broken() -> None:
    face = render.font(20)
    lines = wrap("x" * 200, face, 100)
    assert "".join(lines) == "x" * 200
    assert all(face.getlength(line) <= 100 for line in lines)


def test_shrinks_to_fit_then_ends_with_an_ellipsis() -> None:
    short = fit("Short title", Box(800, 200, 80, 20))
    assert short.font.size == 80 and short.lines == ["Short title"]
    longer = fit("word " * 60, Box(800, 200, 80, 20))
    assert 20 <= longer.font.size < 80 and longer.height <= 200
    assert not longer.lines[-1].endswith("…")
    endless = fit("word " * 2000, Box(800, 200, 80, 20))
    assert endless.font.size == 20 and endless.height <= 200
    assert endless.lines[-1].endswith("…")
    assert endless.font.getlength(endless.lines[-1]) <= 800


def test_falls_back_to_pillows_font_without_the_system_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    render.font.cache_clear()
    monkeypatch.setattr(render, "SYSTEM_FONTS", {False: "no-such-font.ttf", True: "nor.ttf"})
    try:
        face = render.font(30)
        assert isinstance(face, ImageFont.FreeTypeFont) and face.size == 30
        template = TEMPLATES["quote"]
        values, problems = check_config(template, {"quote": "Still drawn"})
        assert problems == []
        assert draw_template(template, values, (1080, 1080)).size == (1080, 1080)
    finally:
        render.font.cache_clear()


def test_a_configured_font_is_used() -> None:
    system = render.font(24)
    path = getattr(system, "path", None)
    if not isinstance(path, str):
        pytest.skip("no system font file to configure here")
    face = render.font(24, False, path)
    assert getattr(face, "path", None) == path


def test_a_font_setting_that_is_not_a_font_stops_start_up(tmp_path: Path) -> None:
    not_a_font = tmp_path / "font.ttf"
    not_a_font.write_text("hello")
    with pytest.raises(ValueError, match="SOKU_TEMPLATE_FONT is not a font file"):
        Settings(data_dir=tmp_path, template_font=str(not_a_font))
    with pytest.raises(ValueError, match="SOKU_TEMPLATE_BOLD_FONT"):
        Settings(data_dir=tmp_path, template_bold_font=str(tmp_path / "missing.otf"))


def test_initials() -> None:
    assert render.initials("Ada Lovelace") == "AL"
    assert render.initials("@soku_dev") == "SD"
    assert render.initials("   ") == "?"


LONGEST = {
    "og-blog-post": {
        "title": ("Lorem ipsum dolor sit amet consectetur adipiscing elit " * 4)[:200],
        "subtitle": ("Sed do eiusmod tempor incididunt ut labore et dolore " * 6)[:300],
        "author": ("Maximiliana Wolfeschlegelsteinhausenbergerdorff " * 2)[:80],
        "siteName": ("VERY LONG SITE NAME " * 4)[:80],
    },
    "tweetImage": {"text": "word " * 200, "name": "W" * 80, "handle": "h" * 40},
}
MARGIN = {"og-blog-post": 15, "tweetImage": 12}  # the right margin: 1/15, 1/12 of the width


def drawn_text(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float, float, float]]:
    """The ink box of every text the templates draw from now on."""
    boxes: list[tuple[float, float, float, float]] = []
    original = ImageDraw.ImageDraw.text

    def text(self: ImageDraw.ImageDraw, xy: Any, text: Any, *args: Any, **kwargs: Any) -> None:
        face, anchor = kwargs.get("font"), kwargs.get("anchor")
        if text.strip():
            boxes.append(self.textbbox(xy, text, font=face, anchor=anchor))
        original(self, xy, text, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", text)
    return boxes


@pytest.mark.parametrize("slug", list(LONGEST))
@pytest.mark.parametrize("size", [(1200, 630), *ASPECT_SIZES.values()])
def test_the_longest_texts_stay_inside_and_apart(
    monkeypatch: pytest.MonkeyPatch, slug: str, size: tuple[int, int]
) -> None:
    template = TEMPLATES[slug]
    values, problems = check_config(template, LONGEST[slug])
    assert problems == []
    boxes = drawn_text(monkeypatch)
    picture = {"avatar": Image.new("RGB", (512, 512), (200, 30, 40))}
    draw_template(template, values, size, pictures=picture)
    width, height = size
    assert all(left >= 0 and right <= width - width // MARGIN[slug] for left, _, right, _ in boxes)
    assert all(top >= 0 and bottom <= height for _, top, _, bottom in boxes)
    for index, (left, top, right, bottom) in enumerate(boxes):
        for other in boxes[index + 1 :]:  # lines of one text touch at most
            overlap = (
                min(right, other[2]) - max(left, other[0]),
                min(bottom, other[3]) - max(top, other[1]),
            )
            assert min(overlap) <= 1, (boxes, index)


def test_the_picture_or_the_initials_are_drawn_as_the_docs_say() -> None:
    og = TEMPLATES["og-blog-post"]
    values, _ = check_config(og, {"title": "Hello", "author": "Ada Lovelace"})
    side = 630 // 22 * 2  # the byline's circle, bottom left, without a picture: initials
    image = draw_template(og, values, (1200, 630))
    assert image.getpixel((80 + side // 2, 630 - 80 - side + 4)) == (37, 99, 235)
    tweet = TEMPLATES["tweetImage"]
    values, _ = check_config(tweet, {"text": "Hello"})  # a picture, and no name
    picture = {"avatar": Image.new("RGB", (512, 512), (200, 30, 40))}
    image = draw_template(tweet, values, (1080, 1080), pictures=picture)
    assert image.getpixel((210, 210)) == (200, 30, 40)


def test_characters_a_reader_sees_stay_whole() -> None:
    assert render.clusters("cafe\u0301") == ["c", "a", "f", "e\u0301"]
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    thumbs = "\U0001f44d\U0001f3fd"
    assert render.clusters(f"{family}{thumbs}!") == [family, thumbs, "!"]
    assert render.clusters("\u2764\ufe0f") == ["\u2764\ufe0f"]


def test_stacked_marks_are_cut_to_four() -> None:
    assert render.tidy("A" + "\u0300" * 250 + "b") == "A" + "\u0300" * 4 + "b"
    fitted = fit("Z" + "\u0301" * 300, Box(400, 400, 60, 20))
    assert fitted.lines == ["Z" + "\u0301" * 4]


def test_no_line_starts_inside_a_character() -> None:
    face = render.font(40)
    word = "e\u0301" * 40 + "\U0001f44d\U0001f3fd" * 10
    for line in wrap(word, face, 200):
        assert not render._extends(line[0]), repr(line[:3])
    cut = render.shorten("ab\U0001f468\u200d\U0001f469" + "…", face, 60)
    assert "\u200d…" not in cut and cut.endswith("…")
