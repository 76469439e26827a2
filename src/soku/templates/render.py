"""Drawing primitives of the templates: fonts, colours, and text fitted into a box.

Fonts: `SOKU_TEMPLATE_FONT` and `SOKU_TEMPLATE_BOLD_FONT` (paths to TrueType or OpenType
files) when set; else DejaVu Sans where the system has it (most Linux systems; it covers
Latin, Greek and Cyrillic); else the scalable font Pillow itself ships (Latin only). A
character the font lacks is drawn as a box: set a font that has it (e.g. Noto) for other
scripts. No font file is kept in this repository.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from PIL import ImageDraw, ImageFont

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
SYSTEM_FONTS = {False: "DejaVuSans.ttf", True: "DejaVuSans-Bold.ttf"}
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
_ELLIPSIS = "…"


@functools.cache
def font(size: int, bold: bool = False, path: str | None = None) -> Font:
    """The font at `size` pixels: the configured file, DejaVu from the system, or Pillow's."""
    candidates = [path] if path else []
    candidates.append(SYSTEM_FONTS[bold])  # found in the system's font folders by Pillow
    for candidate in candidates:
        try:
            return ImageFont.truetype(candidate, size)
        except OSError:
            continue
    return ImageFont.load_default(size)


def is_color(value: str) -> bool:
    return _COLOR.fullmatch(value) is not None


def rgb(value: str) -> tuple[int, int, int]:
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)


@dataclass(frozen=True)
class Fitted:
    font: Font
    lines: list[str]
    line_height: int

    @property
    def height(self) -> int:
        return self.line_height * len(self.lines)


@dataclass(frozen=True)
class Box:
    """A text box: its width and height in pixels, and the sizes to try, largest first."""

    width: int
    height: int
    largest: int
    smallest: int
    bold: bool = False
    spacing: float = 1.25  # line height over font size


def fit(text: str, box: Box, font_path: str | None = None) -> Fitted:
    """The largest size at which `text`, wrapped at word boundaries, fits the box; at the
    smallest size, the lines that fit, the last one ending in an ellipsis."""
    size = box.largest
    while True:
        face = font(size, box.bold, font_path)
        line_height = max(1, round(size * box.spacing))
        lines = wrap(text, face, box.width)
        if len(lines) * line_height <= box.height or size <= box.smallest:
            break
        size = max(box.smallest, int(size * 0.9))
    room = max(1, box.height // line_height)
    if len(lines) > room:
        lines = lines[:room]
        lines[-1] = shorten(lines[-1] + _ELLIPSIS, face, box.width)
    return Fitted(face, lines, line_height)


def wrap(text: str, face: Font, width: int) -> list[str]:
    """Greedy word wrap; a word wider than the line is broken between characters. The
    text's own line breaks are kept."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if face.getlength(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = _break_long(word, face, width, lines)
        lines.append(line)
    return lines


def _break_long(word: str, face: Font, width: int, lines: list[str]) -> str:
    """Append the full-width pieces of `word` to `lines`; return what is left of it."""
    piece = ""
    for char in word:
        if piece and face.getlength(piece + char) > width:
            lines.append(piece)
            piece = ""
        piece += char
    return piece


def shorten(line: str, face: Font, width: int) -> str:
    """`line` (ending in an ellipsis) cut until it fits."""
    while len(line) > 1 and face.getlength(line) > width:
        line = line[:-2].rstrip() + _ELLIPSIS
    return line


def draw_lines(
    draw: ImageDraw.ImageDraw, fitted: Fitted, x: int, y: int, fill: tuple[int, int, int]
) -> int:
    """Draw the lines from (x, y) down; the y below the last one."""
    for line in fitted.lines:
        draw.text((x, y), line, font=fitted.font, fill=fill)
        y += fitted.line_height
    return y


def initials(name: str) -> str:
    """Up to two letters for an avatar drawn in place of a picture."""
    words = [w for w in re.split(r"[\s@._-]+", name) if w]
    return "".join(w[0] for w in words[:2]).upper() or "?"
