"""`POST /v1/media/upload`: a multipart file, copied to a temporary file and stored."""

from __future__ import annotations

import hashlib

from fastapi import UploadFile

from soku.context import AppContext
from soku.media import service
from soku.media.pins import Pins
from soku.media.sniff import SNIFF_BYTES, sniff
from soku.media.types import Sniffed

CHUNK = 1024 * 1024


async def receive_upload(ctx: AppContext, upload: UploadFile, pins: Pins) -> service.Incoming:
    """Starlette has spooled the part to disk; copy it in chunks, hashing and size-capping."""
    name = upload.filename or "upload"
    async with service.temporary_file(ctx) as path:
        digest, size, sniffed = hashlib.sha256(), 0, None
        with path.open("wb") as out:
            while chunk := await upload.read(CHUNK):
                if sniffed is None:
                    sniffed = _sniff_or_fail(chunk[:SNIFF_BYTES], name)
                size += len(chunk)
                _check_size(ctx, sniffed, size, name)
                digest.update(chunk)
                out.write(chunk)
        if sniffed is None:
            raise service.upload_failed(name, "unsupported_format", "The uploaded file is empty.")
        return await service.store_file(ctx, path, sniffed, size, digest.hexdigest(), None, pins)


def _sniff_or_fail(head: bytes, name: str) -> Sniffed:
    found = sniff(head)
    if found is None:
        raise service.upload_failed(
            name,
            "unsupported_format",
            "The file is not a supported image (JPEG, PNG, GIF, WebP) or video (MP4, MOV, "
            "WebM, MKV).",
        )
    return found


def _check_size(ctx: AppContext, sniffed: Sniffed, size: int, name: str) -> None:
    settings = ctx.settings
    cap = (
        settings.media_image_max_bytes
        if sniffed.kind == "image"
        else (settings.media_video_max_bytes)
    )
    if size > cap:
        raise service.upload_failed(
            name, "too_large", f"The {sniffed.kind} is larger than {cap} bytes."
        )
