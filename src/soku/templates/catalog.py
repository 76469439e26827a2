"""The templates: each a slug, its parameters, its default canvas and how it is drawn.

A template's `config` is checked against its parameters before anything is drawn, and every
problem is listed at once (field `config.<name>`), as a post's are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from PIL import Image, ImageDraw

from soku.posts.validation import check_urls
from soku.templates.render import (
    Box,
    Fitted,
    Font,
    draw_lines,
    fit,
    font,
    initials,
    is_color,
    rgb,
    shorten,
)

ASPECT_SIZES = {"1:1": (1080, 1080), "4:5": (1080, 1350), "9:16": (1080, 1920)}
THEMES = {  # background, text, muted text, card
    "light": ((248, 250, 252), (15, 23, 42), (100, 116, 139), (255, 255, 255)),
    "dark": ((15, 23, 42), (241, 245, 249), (148, 163, 184), (30, 41, 59)),
}
Problem = dict[str, str]


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    required: bool = False
    max_length: int = 100
    choices: tuple[str, ...] = ()
    color: bool = False
    url: bool = False  # an image URL (`pictures.load_picture`)
    default: str | None = None


@dataclass(frozen=True)
class Canvas:
    image: Image.Image
    draw: ImageDraw.ImageDraw
    width: int
    height: int
    config: dict[str, str]
    font_path: str | None
    bold_path: str | None
    pictures: dict[str, Image.Image]

    @property
    def colors(self) -> tuple[tuple[int, int, int], ...]:
        return THEMES[self.config["theme"]]

    @property
    def accent(self) -> tuple[int, int, int]:
        return rgb(self.config["accentColor"])

    def face(self, size: int, bold: bool = False) -> Font:
        """The configured font (bold or not) at `size` pixels."""
        return font(size, bold, self.bold_path if bold else self.font_path)

    def fit(self, text: str, box: Box) -> Fitted:
        """`fit` in the configured font of the box's weight."""
        return fit(text, box, self.bold_path if box.bold else self.font_path)

    def text(self, text: str, box: Box, x: int, y: int, fill: tuple[int, int, int]) -> int:
        """Fit `text` into `box` at (x, y); the y below it."""
        return draw_lines(self.draw, self.fit(text, box), x, y, fill)

    def line(self, text: str, width: int, size: int, bold: bool = False) -> tuple[Font, str]:
        """`text` on one line `width` wide: down to 3/4 of `size`, then cut with an ellipsis."""
        text = " ".join(text.split())  # its own line breaks become spaces
        for px in (size, size * 7 // 8, size * 3 // 4):
            face = self.face(px, bold)
            if face.getlength(text) <= width:
                return face, text
        return face, shorten(text + "…", face, width)


@dataclass(frozen=True)
class Template:
    slug: str
    description: str
    size: tuple[int, int]  # without aspectRatio
    params: tuple[Param, ...]
    draw: Callable[[Canvas], None] = field(repr=False)


AVATAR = Param(
    "avatar",
    "An image URL for the author's picture (one of your stored media URLs, or any public "
    "http(s) URL); the name's initials when omitted",
    max_length=2048,
    url=True,
)
STYLE = (
    Param("theme", "light or dark", choices=tuple(THEMES), default="light"),
    Param("accentColor", "#RRGGBB", color=True, default="#2563EB"),
)


def _og_blog_post(c: Canvas) -> None:
    """Site, title and subtitle from the top, above the byline (picture and author)."""
    _background, ink, muted, _card = c.colors
    margin, gap, byline = c.width // 15, c.height // 40, c.height // 22
    c.draw.rectangle((0, 0, c.width, gap), fill=c.accent)
    inner = c.width - 2 * margin
    y = margin + gap
    if site := c.config.get("siteName"):
        site_box = Box(inner, c.height // 10, c.height // 22, 14, True)
        y = c.text(site.upper(), site_box, margin, y, c.accent) + gap
    has_byline = "avatar" in c.pictures or "author" in c.config
    floor = c.height - margin - (2 * byline + gap if has_byline else 0)
    subtitle = c.config.get("subtitle")
    below = Box(inner, c.height // 5, c.height // 18, 16)
    reserve = gap + round(below.smallest * below.spacing) if subtitle else 0
    room = min(c.height * 45 // 100, floor - y - reserve)
    y = c.text(c.config["title"], Box(inner, room, c.height // 8, 24, True, 1.15), margin, y, ink)
    if subtitle:
        below = replace(below, height=min(below.height, floor - y - gap))
        c.text(subtitle, below, margin, y + gap, muted)
    _byline(c, margin, c.height - margin, byline, muted)


def _byline(c: Canvas, x: int, bottom: int, size: int, fill: tuple[int, int, int]) -> None:
    """The author's picture (when given) and name, on one line ending at `bottom`, between
    the margins (`x` on either side)."""
    author = c.config.get("author", "")
    right = c.width - x
    if "avatar" in c.pictures or author:
        _avatar(c, author, x, bottom - 2 * size, 2 * size)
        x += 2 * size + size // 2
    if author:
        face, line = c.line(author, right - x, size, True)
        c.draw.text((x, bottom - size), line, font=face, fill=fill, anchor="lm")


def _avatar(c: Canvas, name: str, x: int, y: int, size: int) -> None:
    """The `avatar` picture in a circle, or the name's initials on the accent colour."""
    if (picture := c.pictures.get("avatar")) is not None:
        mask = Image.new("L", (size, size), 0)
        ImageDraw.Draw(mask).ellipse((0, 0, size - 1, size - 1), fill=255)
        c.image.paste(picture.resize((size, size)), (x, y), mask)
        return
    c.draw.ellipse((x, y, x + size, y + size), fill=c.accent)
    face = c.face(size * 2 // 5, True)
    c.draw.text(
        (x + size / 2, y + size / 2), initials(name), font=face, fill=(255, 255, 255), anchor="mm"
    )


def _tweet_image(c: Canvas) -> None:
    _background, ink, muted, card = c.colors
    margin = c.width // 12
    pad = c.width // 18
    c.draw.rounded_rectangle(
        (margin, margin, c.width - margin, c.height - margin), c.width // 30, fill=card
    )
    left, top, inner = margin + pad, margin + pad, c.width - 2 * (margin + pad)
    name = c.config.get("name") or c.config.get("handle") or ""
    avatar = c.width // 9
    if name or "avatar" in c.pictures:
        _avatar(c, name, left, top, avatar)
        text_x = left + avatar + pad // 2
        face, line = c.line(name, left + inner - text_x, avatar // 3, True)
        c.draw.text((text_x, top + avatar // 8), line, font=face, fill=ink)
        if handle := c.config.get("handle"):
            face, line = c.line(f"@{handle.lstrip('@')}", left + inner - text_x, avatar // 4)
            c.draw.text((text_x, top + avatar // 2 + avatar // 16), line, font=face, fill=muted)
        top += avatar + pad // 2
    body = Box(inner, c.height - margin - pad - top, c.width // 14, 20)
    c.text(c.config["text"], body, left, top, ink)


def _quote(c: Canvas) -> None:
    """The quotation and its attribution as one block, centred in the space below the mark."""
    _background, ink, muted, _card = c.colors
    margin, inner, mark = c.width // 10, c.width - 2 * c.width // 10, c.width // 4
    c.draw.text((margin, margin - mark // 5), "\u201c", font=c.face(mark, True), fill=c.accent)
    top, bottom = margin + mark * 3 // 5, c.height - margin
    said = c.config.get("attribution")
    by = c.fit(f"\u2014 {said}", Box(inner, c.width // 12, c.width // 28, 16)) if said else None
    gap = c.width // 40 if by else 0
    room = bottom - top - gap - (by.height if by else 0)
    quote = c.fit(c.config["quote"], Box(inner, room, c.width // 13, 22, True, 1.2))
    y = top + max(0, (room - quote.height) // 2)
    y = draw_lines(c.draw, quote, margin, y, ink) + gap
    if by:
        draw_lines(c.draw, by, margin, y, muted)


TEMPLATES = {
    t.slug: t
    for t in (
        Template(
            "og-blog-post",
            "A blog post's title card (Open Graph: 1200x630 unless an aspectRatio is given).",
            (1200, 630),
            (
                Param("title", "The post's title", required=True, max_length=200),
                Param("subtitle", "A line under the title", max_length=300),
                Param("author", "Who wrote it", max_length=80),
                Param("siteName", "The site or blog", max_length=80),
                AVATAR,
                *STYLE,
            ),
            _og_blog_post,
        ),
        Template(
            "tweetImage",
            "A post shown as a card: avatar initials, name, @handle and the text.",
            (1080, 1080),
            (
                Param("text", "What the card says", required=True, max_length=1000),
                Param("name", "The author's display name", max_length=80),
                Param("handle", "The author's handle, with or without @", max_length=40),
                AVATAR,
                *STYLE,
            ),
            _tweet_image,
        ),
        Template(
            "quote",
            "A quotation in large type with its attribution.",
            (1080, 1080),
            (
                Param("quote", "The quotation", required=True, max_length=500),
                Param("attribution", "Who said it", max_length=120),
                *STYLE,
            ),
            _quote,
        ),
    )
}


def check_config(
    template: Template, config: dict[str, Any]
) -> tuple[dict[str, str], list[Problem]]:
    """The config with defaults filled in, and every problem with it."""
    known = {p.name: p for p in template.params}
    problems = [
        _problem(
            name,
            "unknown_field",
            f"{template.slug} has no parameter {name!r}; it takes {', '.join(known)}.",
        )
        for name in config
        if name not in known
    ]
    values: dict[str, str] = {}
    for param in template.params:
        value = config.get(param.name, param.default)
        problem = _check_value(param, value)
        if problem is not None:
            problems.append(problem)
        elif value is not None and value.strip():
            values[param.name] = value.strip()
    return values, problems


def _check_value(param: Param, value: Any) -> Problem | None:
    name = param.name
    if value is None or (isinstance(value, str) and not value.strip()):
        return _problem(name, "required", f"config.{name} is required.") if param.required else None
    if not isinstance(value, str):
        return _problem(name, "invalid_type", f"config.{name} must be a string.")
    if len(value) > param.max_length:
        return _problem(
            name, "too_long", f"config.{name} is longer than {param.max_length} characters."
        )
    if param.choices and value not in param.choices:
        return _problem(
            name, "invalid_value", f"config.{name} must be one of {', '.join(param.choices)}."
        )
    if param.url and check_urls(f"config.{name}", [value]):
        return _problem(name, "invalid_url", f"config.{name} must be an http(s) URL.")
    if param.color and not is_color(value):
        return _problem(name, "invalid_value", f"config.{name} must be a colour written #RRGGBB.")
    return None


def _problem(name: str, reason: str, message: str) -> Problem:
    return {"field": f"config.{name}", "reason": reason, "message": message}


def render(
    template: Template,
    config: dict[str, str],
    size: tuple[int, int],
    font_path: str | None = None,
    bold_path: str | None = None,
    pictures: dict[str, Image.Image] | None = None,
) -> Image.Image:
    """The template drawn on a canvas of `size` (width, height), on its theme's background."""
    width, height = size
    image = Image.new("RGB", size, THEMES[config["theme"]][0])
    draw = ImageDraw.Draw(image)
    canvas = Canvas(image, draw, width, height, config, font_path, bold_path, pictures or {})
    template.draw(canvas)
    return image
