"""One suite, two stores: a local folder and an S3-compatible server (moto) on loopback."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from soku.media.storage import (
    LocalMediaStore,
    MediaStore,
    S3MediaStore,
    StoredObject,
    store_from_settings,
)

BUCKET = "soku-media-test"
FILE_SIZE = 6 * 1024 * 1024 + 12_345  # two multipart parts and a ragged end
S3_KEYS = "region=us-east-1&key_id=test&secret=test"


@dataclass(frozen=True)
class Sample:
    path: Path
    data: bytes
    sha256: str


def write_sample(folder: Path, size: int = FILE_SIZE) -> Sample:
    data = os.urandom(size)
    path = folder / f"{uuid.uuid4().hex}.bin"
    path.write_bytes(data)
    return Sample(path, data, hashlib.sha256(data).hexdigest())


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3_client(endpoint).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture(params=["local", "s3"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return (tmp_path / "media").as_uri()
    endpoint = request.getfixturevalue("s3_endpoint")
    return f"s3://{BUCKET}/{uuid.uuid4().hex}?endpoint={endpoint}&{S3_KEYS}"


@pytest.fixture
def store(store_url: str) -> MediaStore:
    return store_from_settings(store_url)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    return write_sample(tmp_path_factory.mktemp("samples"))


def stored_keys(store_url: str) -> list[str]:
    """Every object in the store, listed behind its back."""
    parts = urlsplit(store_url)
    if parts.scheme == "file":
        root = Path(parts.path)
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    endpoint = dict(q.split("=", 1) for q in parts.query.split("&"))["endpoint"]
    prefix = parts.path.strip("/") + "/"
    listed = s3_client(endpoint).list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"].removeprefix(prefix) for o in listed.get("Contents", []))


async def read_all(store: MediaStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.stream(key, start, end)])


async def test_put_file_stores_under_its_hash(store: MediaStore, sample: Sample) -> None:
    stored = await store.put_file(sample.path, sample.sha256, "mp4", "video/mp4")

    assert stored == StoredObject(
        key=f"sha256/{sample.sha256}.mp4",
        size=FILE_SIZE,
        sha256=sample.sha256,
        content_type="video/mp4",
    )
    assert await store.size(stored.key) == FILE_SIZE


async def test_stream_gives_the_bytes_back_in_chunks(store: MediaStore, sample: Sample) -> None:
    stored = await store.put_file(sample.path, sample.sha256, "mp4", "video/mp4")

    chunks = [chunk async for chunk in store.stream(stored.key)]

    assert len(chunks) > 1
    assert b"".join(chunks) == sample.data


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, 1),  # first byte
        (FILE_SIZE // 2 - 1000, FILE_SIZE // 2 + 1000),  # middle
        (FILE_SIZE - 10, FILE_SIZE),  # last bytes
        (FILE_SIZE - 10, None),  # open end
        (5_000_000, None),  # open end across a part boundary
        (0, None),
        (1234, 1234),  # empty
        (FILE_SIZE - 10, FILE_SIZE + 100),  # past the end: what there is
    ],
)
async def test_stream_a_range(
    store: MediaStore, sample: Sample, start: int, end: int | None
) -> None:
    stored = await store.put_file(sample.path, sample.sha256, "bin", "application/octet-stream")

    assert await read_all(store, stored.key, start, end) == sample.data[start:end]


async def test_same_content_is_stored_once(
    store: MediaStore, store_url: str, tmp_path: Path
) -> None:
    first = write_sample(tmp_path, 1000)
    copy = tmp_path / "copy.bin"
    copy.write_bytes(first.data)

    one = await store.put_file(first.path, first.sha256, "jpg", "image/jpeg")
    two = await store.put_file(copy, first.sha256, "jpg", "image/jpeg")

    assert one == two
    assert stored_keys(store_url) == [one.key]


async def test_delete(store: MediaStore, store_url: str, tmp_path: Path) -> None:
    sample = write_sample(tmp_path, 1000)
    stored = await store.put_file(sample.path, sample.sha256, "png", "image/png")

    await store.delete(stored.key)

    assert await store.size(stored.key) is None
    assert stored_keys(store_url) == []
    await store.delete(stored.key)  # deleting what is gone is fine
    with pytest.raises(FileNotFoundError):
        await read_all(store, stored.key)


async def test_a_wrong_hash_is_refused_and_not_kept(
    store: MediaStore, store_url: str, tmp_path: Path
) -> None:
    sample = write_sample(tmp_path, 1000)

    with pytest.raises(ValueError, match="does not hash to"):
        await store.put_file(sample.path, "0" * 64, "png", "image/png")

    assert stored_keys(store_url) == []


@pytest.mark.parametrize(("sha256", "extension"), [("../../etc", "png"), ("a" * 64, "p/ng")])
async def test_keys_are_checked(
    store: MediaStore, sample: Sample, sha256: str, extension: str
) -> None:
    with pytest.raises(ValueError, match="not a"):
        await store.put_file(sample.path, sha256, extension, "image/png")


async def test_presigned_url(store: MediaStore, sample: Sample) -> None:
    stored = await store.put_file(sample.path, sample.sha256, "mp4", "video/mp4")

    url = await store.presigned_url(stored.key, 60)

    if isinstance(store, LocalMediaStore):
        assert url is None
        return
    assert url is not None
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert response.content == sample.data


def test_settings_urls(tmp_path: Path) -> None:
    by_url = store_from_settings((tmp_path / "a" / "b").as_uri())
    by_path = store_from_settings(str(tmp_path / "c"))
    s3 = store_from_settings(f"s3://bucket/some/prefix?endpoint=http://127.0.0.1:9&{S3_KEYS}")

    assert isinstance(by_url, LocalMediaStore)
    assert by_url.root == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir()
    assert isinstance(by_path, LocalMediaStore)
    assert (tmp_path / "c").is_dir()
    assert isinstance(s3, S3MediaStore)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://host/media", "unsupported scheme 'ftp'"),
        ("s3:///prefix", "needs a bucket"),
        ("s3://bucket?endpoint=http://x&colour=blue", "unknown s3 parameter"),
        ("file://otherhost/media", "names no host"),
    ],
)
def test_bad_settings_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        store_from_settings(url)


def test_the_secret_is_not_echoed() -> None:
    with pytest.raises(ValueError, match="unsupported scheme") as raised:
        store_from_settings("gs://bucket?secret=hunter2")
    assert "hunter2" not in str(raised.value)
