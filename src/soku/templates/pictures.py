"""A template's pictures (`avatar`): the caller's own stored image, or an image URL fetched
as a media URL is (the same address checks and limits), opened and cut square. Nothing is
stored: only the rendered PNG is."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from pathlib import Path

from PIL import Image, ImageOps

from soku.context import AppContext
from soku.errors import UploadFailed
from soku.media import repository
from soku.media import service as media
from soku.media.fetcher import fetch_to_file
from soku.media.probe import IMAGE_FORMATS
from soku.media.types import FetchError

MAX_PICTURE_BYTES = 10 * 1024 * 1024
PICTURE_TIMEOUT_SECONDS = 20.0  # a picture is small: a host this slow is not waited for
SIDE = 512  # pixels: more than any template draws a picture at
# The most pixels decoded (a JPEG is first reduced towards SIDE by its decoder): a small
# file can claim a huge canvas, and each pixel costs memory and time while it is cut square.
MAX_PICTURE_PIXELS = 4096 * 4096


async def load_picture(ctx: AppContext, user_id: uuid.UUID, url: str) -> Image.Image:
    """The picture at `url`, square; UploadFailed (400) says why not."""
    async with media.temporary_file(ctx) as path:
        token = media.token_of(ctx, url)
        if token is not None:
            await _copy_stored(ctx, user_id, token, url, path)
        else:
            await _fetch(ctx, url, path)
        return await asyncio.to_thread(_square, path, url)


async def _copy_stored(
    ctx: AppContext, user_id: uuid.UUID, token: str, url: str, path: Path
) -> None:
    async with ctx.db.read() as session:
        found = (await repository.by_tokens(session, user_id, [token])).get(token)
    if found is None:
        raise _not_yours(url)
    if found.kind != "image":
        raise media.upload_failed(url, "unsupported_format", f"{url} is not an image.")
    if found.bytes > MAX_PICTURE_BYTES:
        message = f"{url} is larger than {MAX_PICTURE_BYTES} bytes, the most a picture may be."
        raise media.upload_failed(url, "too_large", message)
    try:
        with path.open("wb") as out:
            async for chunk in ctx.media_store.stream(found.storage_key):
                out.write(chunk)
    except FileNotFoundError:  # a DELETE of that media removed the object since our look
        raise _not_yours(url) from None


def _not_yours(url: str) -> UploadFailed:
    return media.upload_failed(url, "not_found", f"{url} is not one of your stored media.")


async def _fetch(ctx: AppContext, url: str, path: Path) -> None:
    limits = dataclasses.replace(
        media.fetch_limits(ctx),
        image_max_bytes=MAX_PICTURE_BYTES,
        video_max_bytes=MAX_PICTURE_BYTES,
        total_timeout=min(PICTURE_TIMEOUT_SECONDS, ctx.settings.media_fetch_timeout_seconds),
    )
    try:
        fetched = await fetch_to_file(url, path, limits)
    except FetchError as exc:
        message = f"{url} could not be fetched: {exc.message}"
        raise media.upload_failed(url, exc.reason, message) from exc
    if fetched.sniffed.kind != "image":
        raise media.upload_failed(url, "unsupported_format", f"{url} is not an image.")


def _square(path: Path, url: str) -> Image.Image:
    try:
        with Image.open(path, formats=IMAGE_FORMATS) as opened:
            opened.draft("RGB", (SIDE, SIDE))  # JPEG only: decode at a reduced scale
            width, height = opened.size
            if width * height > MAX_PICTURE_PIXELS:
                raise ValueError(
                    f"{width}x{height} pixels is more than {MAX_PICTURE_PIXELS:,} pixels"
                )
            upright = _rgb(ImageOps.exif_transpose(opened))
    except Exception as exc:  # Pillow raises many kinds on hostile input (as in probe)
        message = f"{url} could not be read as an image: {exc}"
        raise media.upload_failed(url, "unsupported_format", message) from exc
    return ImageOps.fit(upright, (SIDE, SIDE))


def _rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB. 16- and 32-bit greyscale is scaled down first: converted as it is, every
    value over 255 would turn white."""
    if image.mode.startswith("I"):
        top = 65535 if image.mode.startswith("I;16") else (image.getextrema()[1] or 1)
        image = image.convert("I").point(lambda value: value * 255 / top).convert("L")
    return image.convert("RGB")
