"""Taking media in: fetch (or receive) to a temporary file, probe, store, describe.

A file goes to a temporary file in the data folder first (hashed and size-capped while it
streams), so probing can read it and the store can take it in parts; memory never holds it.
The row is written by the caller's transaction, together with its idempotency key or post;
the request pins the object before it asks the store for it (soku.media.pins).
"""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from soku.context import AppContext
from soku.db import utcnow
from soku.errors import UploadFailed
from soku.media.fetcher import FetchLimits, fetch_to_file
from soku.media.models import Media
from soku.media.pins import Pins
from soku.media.probe import ProbeError, probe_async
from soku.media.storage import object_key
from soku.media.types import FetchError, Sniffed


@dataclass(frozen=True)
class Incoming:
    """A file in the store, not yet recorded."""

    source_url: str | None
    sniffed: Sniffed
    size: int
    sha256: str
    storage_key: str
    probe: dict[str, object]
    width: int | None
    height: int | None
    duration_seconds: float | None


def fetch_limits(ctx: AppContext) -> FetchLimits:
    settings = ctx.settings
    return FetchLimits(
        image_max_bytes=settings.media_image_max_bytes,
        video_max_bytes=settings.media_video_max_bytes,
        total_timeout=settings.media_fetch_timeout_seconds,
        allow_private=settings.media_allow_private,
    )


def upload_failed(url: str | None, reason: str, message: str) -> UploadFailed:
    return UploadFailed(message, {"url": url, "reason": reason})


@contextlib.asynccontextmanager
async def temporary_file(ctx: AppContext) -> AsyncIterator[Path]:
    folder = ctx.settings.data_dir / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"incoming-{uuid.uuid4().hex}"
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


async def fetch_url(ctx: AppContext, url: str, pins: Pins) -> Incoming:
    """Fetch, probe and store one URL; UploadFailed says why not."""
    async with temporary_file(ctx) as path:
        try:
            fetched = await fetch_to_file(url, path, fetch_limits(ctx))
        except FetchError as exc:
            raise upload_failed(
                url, exc.reason, f"{url} could not be fetched: {exc.message}"
            ) from exc
        return await store_file(ctx, path, fetched.sniffed, fetched.size, fetched.sha256, url, pins)


async def store_file(
    ctx: AppContext,
    path: Path,
    sniffed: Sniffed,
    size: int,
    sha256: str,
    source: str | None,
    pins: Pins,
) -> Incoming:
    """Probe the file and put it in the store, pinned first: a delete of the last media row
    on the same bytes must not remove the object between the store's look and our row."""
    try:
        probe = await probe_async(path, sniffed.kind)
    except ProbeError as exc:
        raise upload_failed(
            source, "unsupported_format", f"The {sniffed.kind} could not be read: {exc}"
        ) from exc
    await pins.add(object_key(sha256, sniffed.extension))
    stored = await ctx.media_store.put_file(path, sha256, sniffed.extension, sniffed.content_type)
    details = {k: v for k, v in vars(probe).items() if v is not None}
    return Incoming(
        source_url=source,
        sniffed=sniffed,
        size=size,
        sha256=sha256,
        storage_key=stored.key,
        probe=details,
        width=probe.width,
        height=probe.height,
        duration_seconds=probe.duration_seconds,
    )


def new_media(user_id: uuid.UUID, incoming: Incoming) -> Media:
    return Media(
        id=uuid.uuid4(),
        user_id=user_id,
        source_url=incoming.source_url,
        public_token=secrets.token_urlsafe(24),
        storage_key=incoming.storage_key,
        kind=incoming.sniffed.kind,
        content_type=incoming.sniffed.content_type,
        extension=incoming.sniffed.extension,
        bytes=incoming.size,
        sha256=incoming.sha256,
        width=incoming.width,
        height=incoming.height,
        duration_seconds=incoming.duration_seconds,
        probe=incoming.probe,
        created_at=utcnow(),
    )


def public_url(ctx: AppContext, media: Media) -> str:
    return f"{ctx.settings.public_base_url}/media/{media.public_token}.{media.extension}"


def token_of(ctx: AppContext, url: str) -> str | None:
    """The public token if `url` is one of our own media URLs, else None."""
    prefix = f"{ctx.settings.public_base_url}/media/"
    if not url.startswith(prefix):
        return None
    name = url[len(prefix) :]
    token, _, _ext = name.partition(".")
    return token or None
