"""Rendering a template into stored media: check the request, draw in a thread, store the PNG
as an upload is stored."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from pathlib import Path

from PIL import Image

from soku.context import AppContext
from soku.errors import ValidationFailed
from soku.media import service as media
from soku.media.pins import Pins
from soku.media.sniff import PNG
from soku.posts.validation import problem
from soku.templates.catalog import ASPECT_SIZES, TEMPLATES, Template, check_config, render
from soku.templates.pictures import load_picture
from soku.templates.schemas import ParameterView, Size, TemplateRender, TemplateView

Checked = tuple[Template, dict[str, str], tuple[int, int]]


def checked(body: TemplateRender) -> Checked:
    """The template, its config with defaults, and the canvas size; every problem at once."""
    template = TEMPLATES.get(body.templateSlug)
    if template is None:
        known = ", ".join(TEMPLATES)
        message = f"No template {body.templateSlug!r}; the templates are {known}."
        raise ValidationFailed.from_problems([problem("templateSlug", "invalid_value", message)])
    values, problems = check_config(template, body.config)
    if problems:
        raise ValidationFailed.from_problems(problems)
    size = ASPECT_SIZES[body.aspectRatio] if body.aspectRatio else template.size
    return template, values, size


async def render_to_media(
    ctx: AppContext, user_id: uuid.UUID, job: Checked, pins: Pins
) -> media.Incoming:
    """Draw what `checked` accepted and store the PNG."""
    template, values, size = job
    fonts = ctx.settings.template_font, ctx.settings.template_bold_font
    pictures = {
        p.name: await load_picture(ctx, user_id, values[p.name])
        for p in template.params
        if p.url and p.name in values
    }
    async with media.temporary_file(ctx) as path:
        digest, length = await asyncio.to_thread(
            _draw, template, values, size, fonts, pictures, path
        )
        return await media.store_file(ctx, path, PNG, length, digest, None, pins)


def _draw(
    template: Template,
    values: dict[str, str],
    size: tuple[int, int],
    fonts: tuple[str | None, str | None],
    pictures: dict[str, Image.Image],
    path: Path,
) -> tuple[str, int]:
    """Draw and write the PNG (off the event loop: a few to tens of milliseconds)."""
    render(template, values, size, *fonts, pictures).save(path, format="PNG", optimize=True)
    data = path.read_bytes()
    return hashlib.sha256(data).hexdigest(), len(data)


def view_of(template: Template) -> TemplateView:
    width, height = template.size
    return TemplateView(
        slug=template.slug,
        description=template.description,
        size=Size(width=width, height=height),
        aspectRatios=list(ASPECT_SIZES),
        parameters=[
            ParameterView(
                name=p.name,
                description=p.description,
                required=p.required,
                maxLength=p.max_length,
                choices=list(p.choices) or None,
                default=p.default,
            )
            for p in template.params
        ],
    )
