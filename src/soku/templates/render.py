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
import unicodedata
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
    text = tidy(text)
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
    """Append the full-width pieces of `word` to `lines`; return what is left of it. Pieces
    end between characters as a reader sees them, never inside one (`clusters`)."""
    piece = ""
    for cluster in clusters(word):
        if piece and face.getlength(piece + cluster) > width:
            lines.append(piece)
            piece = ""
        piece += cluster
    return piece


_JOINER = "\u200d"
_MAX_MARKS = 4  # combining marks kept on one character: more only stack up out of the box


def _extends(char: str) -> bool:
    """Whether `char` belongs to the character before it: a combining mark, a variation
    selector, an emoji skin tone, or what follows a zero-width joiner."""
    return (
        unicodedata.combining(char) != 0
        or unicodedata.category(char) in ("Mn", "Me")
        or "\ufe00" <= char <= "\ufe0f"
        or "\U0001f3fb" <= char <= "\U0001f3ff"
        or char == _JOINER
    )


def clusters(text: str) -> list[str]:
    """`text` cut into the characters a reader sees (close to Unicode's grapheme clusters):
    a base with its marks, an emoji with its modifiers and ZWJ sequence. A base's marks past
    the fourth are dropped."""
    found: list[str] = []
    marks = 0
    for char in text:
        joined = bool(found) and found[-1].endswith(_JOINER)
        if found and (joined or _extends(char)):
            if joined or char == _JOINER or marks < _MAX_MARKS:
                found[-1] += char
            marks += 0 if joined or char == _JOINER else 1
            continue
        found.append(char)
        marks = 0
    return found


def tidy(text: str) -> str:
    """`text` with no character carrying more than four combining marks."""
    return "".join(clusters(text))


def shorten(line: str, face: Font, width: int) -> str:
    """`line` (ending in an ellipsis) cut, a whole character at a time, until it fits."""
    kept = clusters(line.removesuffix(_ELLIPSIS))
    while kept and face.getlength("".join(kept) + _ELLIPSIS) > width:
        kept.pop()
    return "".join(kept).rstrip() + _ELLIPSIS


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
