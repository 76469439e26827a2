"""Content-addressed media storage: one interface over a local folder or an S3 bucket.

Objects live at `sha256/<hex>.<ext>`, so the same bytes are stored once. Files go in and
come out in chunks: memory stays flat whatever the file size (see bench/media_memory.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import pathlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import IO, TYPE_CHECKING, Protocol
from urllib.parse import parse_qs, urlsplit
from urllib.request import url2pathname

import obstore
from obstore.store import LocalStore, S3Store

if TYPE_CHECKING:
    from obstore import Attributes, GetOptions
    from obstore.store import ClientConfig, ObjectStore, S3Config

CHUNK_SIZE = 1024 * 1024  # read from disk and yielded to callers in pieces of about this size
PART_SIZE = 5 * 1024 * 1024  # S3's smallest multipart part
PARTS_IN_FLIGHT = 4  # upload memory is bounded by about PART_SIZE * PARTS_IN_FLIGHT
S3_QUERY_KEYS = frozenset({"endpoint", "region", "key_id", "secret"})
# A relay of a 500 MB video to a slow platform can take long; a stalled connection cannot.
S3_CLIENT_OPTIONS: ClientConfig = {"timeout": "1h", "read_timeout": "60s"}

_SHA256 = re.compile(r"[0-9a-f]{64}")
_EXTENSION = re.compile(r"[a-z0-9]{1,10}")


@dataclass(frozen=True)
class StoredObject:
    key: str  # "sha256/<hex>.<ext>"
    size: int
    sha256: str
    content_type: str


class MediaStore(Protocol):
    async def put_file(
        self, path: pathlib.Path, sha256: str, extension: str, content_type: str
    ) -> StoredObject:
        """Stream the file in; content already stored under the same key is not sent again."""
        ...

    # Not `async def` here: an async generator is a plain function returning an iterator.
    def stream(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes [start, end) in chunks; FileNotFoundError when the key is missing."""
        ...

    async def size(self, key: str) -> int | None: ...

    async def delete(self, key: str) -> None: ...

    async def presigned_url(self, key: str, expires_seconds: int) -> str | None:
        """A URL anyone can GET for a while, or None when the API serves the file itself."""
        ...


def object_key(sha256: str, extension: str) -> str:
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a lowercase hex SHA-256: {sha256!r}")
    if not _EXTENSION.fullmatch(extension):
        raise ValueError(f"not a file extension: {extension!r}")
    return f"sha256/{sha256}.{extension}"


class _ObjectMediaStore:
    """MediaStore on any obstore store; the subclasses only build the store."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    async def put_file(
        self, path: pathlib.Path, sha256: str, extension: str, content_type: str
    ) -> StoredObject:
        key = object_key(sha256, extension)
        size = await self.size(key)
        if size is None:
            size = await self._upload(path, key, sha256, content_type)
        return StoredObject(key=key, size=size, sha256=sha256, content_type=content_type)

    async def _upload(self, path: pathlib.Path, key: str, sha256: str, content_type: str) -> int:
        digest = hashlib.sha256()
        size = 0

        async def chunks() -> AsyncIterator[bytes]:
            nonlocal size
            with path.open("rb") as file:
                while chunk := await asyncio.to_thread(_read, file, digest):
                    size += len(chunk)
                    yield chunk

        await obstore.put_async(
            self._store,
            key,
            chunks(),
            attributes=self._attributes(content_type),
            chunk_size=PART_SIZE,
            max_concurrency=PARTS_IN_FLIGHT,
        )
        if digest.hexdigest() != sha256:
            # The key would lie about its content: a caller's bug, never to be served.
            await self.delete(key)
            raise ValueError(f"{path} does not hash to {sha256}")
        return size

    def _attributes(self, content_type: str) -> Attributes | None:
        return None  # a local folder keeps no metadata; the media row has the content type

    async def stream(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"not a byte range: [{start}, {end})")
        if end == start:
            return  # an empty range is an error for the stores, and nothing to send
        options: GetOptions = {}
        if end is not None:
            options["range"] = (start, end)
        elif start > 0:
            options["range"] = {"offset": start}
        result = await obstore.get_async(self._store, key, options=options)
        async for chunk in result.stream(min_chunk_size=CHUNK_SIZE):
            yield chunk

    async def size(self, key: str) -> int | None:
        try:
            meta = await obstore.head_async(self._store, key)
        except FileNotFoundError:
            return None
        return meta["size"]

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):  # already gone is what was asked
            await obstore.delete_async(self._store, key)

    async def presigned_url(self, key: str, expires_seconds: int) -> str | None:
        return None


def _read(file: IO[bytes], digest: hashlib._Hash) -> bytes:
    """The next chunk, hashed here too: off the event loop like the read."""
    chunk = file.read(CHUNK_SIZE)
    digest.update(chunk)
    return chunk


class LocalMediaStore(_ObjectMediaStore):
    """A folder on this machine; the API serves its files itself."""

    def __init__(self, root: pathlib.Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        super().__init__(LocalStore(prefix=root))
        self.root = root


class S3MediaStore(_ObjectMediaStore):
    """An S3-compatible bucket; platforms fetch media through presigned URLs."""

    def __init__(self, store: S3Store) -> None:
        super().__init__(store)
        self._s3 = store

    def _attributes(self, content_type: str) -> Attributes | None:
        return {"Content-Type": content_type}  # what a presigned GET answers with

    async def presigned_url(self, key: str, expires_seconds: int) -> str | None:
        expires = timedelta(seconds=expires_seconds)
        return await obstore.sign_async(self._s3, "GET", key, expires)


def check_store_url(url: str) -> None:
    """ValueError saying what is wrong with a SOKU_MEDIA_STORE URL, without building the
    store (the settings check it at start-up). The URL itself is not echoed: it may carry a
    secret."""
    parts = urlsplit(url)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError("SOKU_MEDIA_STORE: an s3:// URL needs a bucket: s3://bucket/prefix")
        unknown = sorted(set(parse_qs(parts.query)) - S3_QUERY_KEYS)
        if unknown:
            raise ValueError(
                f"SOKU_MEDIA_STORE: unknown s3 parameter(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(S3_QUERY_KEYS))}"
            )
    elif parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError("SOKU_MEDIA_STORE: a file URL names no host (file:///abs/path)")
    elif parts.scheme != "":
        raise ValueError(
            f"SOKU_MEDIA_STORE: unsupported scheme {parts.scheme!r}; use file:///abs/path, "
            "a folder path, or s3://bucket/prefix?endpoint=…&region=…"
        )


def store_from_settings(url: str) -> MediaStore:
    """The store named by SOKU_MEDIA_STORE: a folder (`file:///abs/path` or a path) or S3."""
    check_store_url(url)
    parts = urlsplit(url)
    if parts.scheme == "s3":
        return S3MediaStore(_s3_store(url))
    if parts.scheme == "file":
        return LocalMediaStore(pathlib.Path(url2pathname(parts.path)))
    return LocalMediaStore(pathlib.Path(url).expanduser().resolve())


def _s3_store(url: str) -> S3Store:
    parts = urlsplit(url)
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    client_options: ClientConfig = {**S3_CLIENT_OPTIONS}
    config: S3Config = {}
    if "endpoint" in query:
        config["endpoint"] = query["endpoint"]
        client_options["allow_http"] = query["endpoint"].startswith("http://")
    if "region" in query:
        config["region"] = query["region"]
    if "key_id" in query:  # otherwise S3Store reads AWS_ACCESS_KEY_ID and friends itself
        config["access_key_id"] = query["key_id"]
    if "secret" in query:
        config["secret_access_key"] = query["secret"]
    return S3Store(
        parts.netloc,
        prefix=parts.path.strip("/") or None,
        config=config,
        client_options=client_options,
    )
