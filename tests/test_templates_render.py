"""The templates' text layout and fonts (`soku.templates.render`), without HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import ImageFont

from soku.config import Settings
from soku.templates import render
from soku.templates.catalog import TEMPLATES, check_config
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
