"""A stored object shared by media rows of several users goes when its last holder leaves, and
only then: an intake that found the object keeps it through a concurrent delete, and a request
that fails after storing leaves nothing behind (see soku.media.pins)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete as delete_row
from sqlalchemy import func, select, text

from soku.context import AppContext
from soku.db import utcnow
from soku.media import pins as pins_module
from soku.media import repository
from soku.media.models import Media, MediaPin
from soku.media.pins import Pins
from tests.api.helpers import assert_error
from tests.conftest import Caller, make_caller
from tests.media_files import MediaServer, write_image

pytestmark = pytest.mark.asyncio
TAKE_INS = ("upload", "url", "post", "template")


class Served:
    """Files with bytes no other test has, over HTTP on loopback."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.server = MediaServer(folder)

    def unique_jpeg(self) -> bytes:
        name = f"{secrets.token_hex(6)}.jpg"
        write_image(self.folder / name, tuple(secrets.token_bytes(3)))  # type: ignore[arg-type]
        return (self.folder / name).read_bytes()

    def url_of(self, data: bytes) -> str:
        name = f"{hashlib.sha256(data).hexdigest()}.bin"
        (self.folder / name).write_bytes(data)
        return self.server.url(name)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    files = Served(tmp_path_factory.mktemp("pinned-media"))
    yield files
    files.server.close()


def jpeg_key(data: bytes) -> str:
    return f"sha256/{hashlib.sha256(data).hexdigest()}.jpg"


def image_post(urls: list[str]) -> dict[str, Any]:
    content = {"text": "pics", "mediaType": "image", "imageUrls": urls, "platform": ["x"]}
    return {"post": {"content": content}}


def video_post(url: str) -> dict[str, Any]:
    return {"post": {"content": {"text": "clip", "videoUrl": url, "platform": ["x"]}}}


async def upload(client: httpx.AsyncClient, caller: Caller, data: bytes) -> httpx.Response:
    files = {"file": ("f.jpg", data, "application/octet-stream")}
    return await client.post("/v1/media/upload", files=files, headers=caller.headers)


async def rows_of(ctx: AppContext, user_id: uuid.UUID) -> list[Media]:
    async with ctx.db.read() as session:
        found = await session.scalars(select(Media).where(Media.user_id == user_id))
        return list(found)


def served_path(media: Media) -> str:
    return f"/media/{media.public_token}.{media.extension}"


async def delete(client: httpx.AsyncClient, caller: Caller, media_id: object) -> None:
    response = await client.delete(f"/v1/media/{media_id}", headers=caller.headers)
    assert response.status_code == 204, response.text


async def pins_on(ctx: AppContext, key: str) -> int:
    async with ctx.db.read() as session:
        stmt = select(func.count()).select_from(MediaPin).where(MediaPin.storage_key == key)
        return int((await session.execute(stmt)).scalar_one())


@dataclass
class SameBytes:
    """User A's media, and how user B takes in the same bytes through one intake path."""

    owner: Caller
    media: Media
    again: Callable[[Caller], Awaitable[httpx.Response]]


async def same_bytes(
    how: str, client: httpx.AsyncClient, ctx: AppContext, served: Served
) -> SameBytes:
    owner = await make_caller(ctx)
    data = served.unique_jpeg()
    url = served.url_of(data)
    body = {"templateSlug": "og-blog-post", "config": {"title": f"Pinned {uuid.uuid4()}"}}

    async def again(caller: Caller) -> httpx.Response:
        headers = caller.headers
        if how == "upload":
            return await upload(client, caller, data)
        if how == "url":
            return await client.post("/v1/media", json={"url": url}, headers=headers)
        if how == "post":
            return await client.post("/v1/posts", json=image_post([url]), headers=headers)
        return await client.post("/v1/templates", json=body, headers=headers)  # same PNG

    first = await (again(owner) if how == "template" else upload(client, owner, data))
    assert first.status_code == 201, first.text
    (media,) = await rows_of(ctx, owner.user_id)
    return SameBytes(owner, media, again)


@pytest.fixture
def delete_after_lookup(
    monkeypatch: pytest.MonkeyPatch, backend: AppContext, client: httpx.AsyncClient
) -> Callable[[SameBytes], None]:
    """Once: after the store has been asked for the object (and found it), A deletes its
    media, before B's request writes its row."""

    def arm(same: SameBytes) -> None:
        store = backend.media_store
        put_file, done = store.put_file, []

        async def looked_then_deleted(*args: Any) -> Any:
            stored = await put_file(*args)
            if not done:
                done.append(True)
                assert stored.key == same.media.storage_key  # found there: not uploaded again
                await delete(client, same.owner, same.media.id)
            return stored

        monkeypatch.setattr(store, "put_file", looked_then_deleted)

    return arm


# --- the race: a delete between an intake's look at the store and its row ----------------


@pytest.mark.parametrize("how", TAKE_INS)
async def test_a_delete_while_an_intake_holds_the_object_keeps_it(
    how: str,
    client: httpx.AsyncClient,
    backend: AppContext,
    caller: Caller,
    served: Served,
    delete_after_lookup: Callable[[SameBytes], None],
) -> None:
    same = await same_bytes(how, client, backend, served)
    delete_after_lookup(same)
    response = await same.again(caller)
    assert response.status_code == 201, response.text
    assert await rows_of(backend, same.owner.user_id) == []  # A's delete went through
    (media,) = await rows_of(backend, caller.user_id)
    assert media.storage_key == same.media.storage_key
    served_file = await client.get(served_path(media))
    assert served_file.status_code == 200, served_file.text
    assert hashlib.sha256(served_file.content).hexdigest() == media.sha256


@pytest.mark.parametrize("how", TAKE_INS)
async def test_after_a_delete_the_intake_stores_the_object_again(
    how: str, client: httpx.AsyncClient, backend: AppContext, caller: Caller, served: Served
) -> None:
    same = await same_bytes(how, client, backend, served)
    key = same.media.storage_key
    await delete(client, same.owner, same.media.id)
    assert await backend.media_store.size(key) is None
    response = await same.again(caller)
    assert response.status_code == 201, response.text
    (media,) = await rows_of(backend, caller.user_id)
    assert await backend.media_store.size(key) == media.bytes
    assert (await client.get(served_path(media))).status_code == 200
    assert await pins_on(backend, key) == 0


# --- requests that fail after storing ------------------------------------------------------


async def test_a_post_refused_after_fetching_leaves_no_object(
    client: httpx.AsyncClient, backend: AppContext, caller: Caller, served: Served
) -> None:
    data = served.unique_jpeg()
    refused = await client.post(
        "/v1/posts", json=video_post(served.url_of(data)), headers=caller.headers
    )
    error = assert_error(refused, 400, "upload_failed")
    assert error["details"]["reason"] == "unsupported_format"
    assert await backend.media_store.size(jpeg_key(data)) is None
    assert await pins_on(backend, jpeg_key(data)) == 0
    assert await rows_of(backend, caller.user_id) == []


async def test_a_post_with_one_failing_url_removes_what_the_others_stored(
    client: httpx.AsyncClient, backend: AppContext, caller: Caller, served: Served
) -> None:
    data = served.unique_jpeg()
    urls = [served.url_of(data), served.server.url("missing.jpg")]
    refused = await client.post("/v1/posts", json=image_post(urls), headers=caller.headers)
    assert assert_error(refused, 400, "upload_failed")["details"]["reason"] == "bad_status"
    assert await backend.media_store.size(jpeg_key(data)) is None
    assert await pins_on(backend, jpeg_key(data)) == 0


async def test_a_refused_post_keeps_an_object_another_media_uses(
    client: httpx.AsyncClient, backend: AppContext, caller: Caller, served: Served
) -> None:
    owner = await make_caller(backend)
    data = served.unique_jpeg()
    assert (await upload(client, owner, data)).status_code == 201
    refused = await client.post(
        "/v1/posts", json=video_post(served.url_of(data)), headers=caller.headers
    )
    assert_error(refused, 400, "upload_failed")
    assert await backend.media_store.size(jpeg_key(data)) == len(data)
    (media,) = await rows_of(backend, owner.user_id)
    assert (await client.get(served_path(media))).content == data


async def test_a_cancelled_intake_releases_its_pin(backend: AppContext, tmp_path: Path) -> None:
    """The task is cancelled after it pinned and stored: the release still runs to its end."""
    path = tmp_path / "f.jpg"
    write_image(path, tuple(secrets.token_bytes(3)))  # type: ignore[arg-type]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    stored = asyncio.Event()

    async def intake() -> None:
        async with Pins.of(backend) as pins:
            await pins.add(f"sha256/{digest}.jpg")
            await backend.media_store.put_file(path, digest, "jpg", "image/jpeg")
            stored.set()
            await asyncio.Event().wait()  # the request never gets to its row

    task = asyncio.create_task(intake())
    await stored.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await backend.media_store.size(f"sha256/{digest}.jpg") is None
    assert await pins_on(backend, f"sha256/{digest}.jpg") == 0


# --- deletes ---------------------------------------------------------------------------------


async def test_the_last_delete_of_a_key_removes_the_object(
    client: httpx.AsyncClient, backend: AppContext, caller: Caller, served: Served
) -> None:
    other = await make_caller(backend)
    data = served.unique_jpeg()
    assert (await upload(client, caller, data)).status_code == 201
    assert (await upload(client, other, data)).status_code == 201
    (mine,) = await rows_of(backend, caller.user_id)
    (theirs,) = await rows_of(backend, other.user_id)
    await delete(client, caller, mine.id)
    assert await backend.media_store.size(jpeg_key(data)) == len(data)
    assert (await client.get(served_path(theirs))).content == data
    await delete(client, other, theirs.id)
    assert await backend.media_store.size(jpeg_key(data)) is None
    assert await pins_on(backend, jpeg_key(data)) == 0


async def test_a_pin_older_than_an_hour_holds_nothing(
    client: httpx.AsyncClient, backend: AppContext, caller: Caller, served: Served
) -> None:
    """A crashed request's pin: ignored, and dropped by the delete; a live one keeps it."""
    data = served.unique_jpeg()
    key = jpeg_key(data)
    for when in (utcnow() - dt.timedelta(hours=2), utcnow()):
        assert (await upload(client, caller, data)).status_code == 201
        async with backend.db.transaction() as session:
            session.add(MediaPin(id=uuid.uuid4(), storage_key=key, created_at=when))
        (media,) = await rows_of(backend, caller.user_id)
        await delete(client, caller, media.id)
    assert await backend.media_store.size(key) == len(data)  # the live pin holds it
    assert await pins_on(backend, key) == 1  # the stale one is gone


async def test_a_store_that_fails_to_delete_is_logged_not_raised(
    client: httpx.AsyncClient,
    backend: AppContext,
    caller: Caller,
    served: Served,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    warnings: list[tuple[str, dict[str, Any]]] = []

    class Recorder:
        def warning(self, event: str, **fields: Any) -> None:
            warnings.append((event, fields))

    async def refuse(key: str) -> None:
        raise OSError("the disk says no")

    data = served.unique_jpeg()
    assert (await upload(client, caller, data)).status_code == 201
    (media,) = await rows_of(backend, caller.user_id)
    monkeypatch.setattr(pins_module, "log", Recorder())
    monkeypatch.setattr(backend.media_store, "delete", refuse)
    await delete(client, caller, media.id)
    assert await rows_of(backend, caller.user_id) == []
    assert [(event, fields["storage_key"]) for event, fields in warnings] == [
        ("stored_media_not_deleted", media.storage_key)
    ]


# --- the success paths leave no pins; the key lock --------------------------------------------


@pytest.mark.parametrize("how", TAKE_INS)
async def test_every_intake_path_drops_its_pin_with_its_row(
    how: str, client: httpx.AsyncClient, backend: AppContext, caller: Caller, served: Served
) -> None:
    same = await same_bytes(how, client, backend, served)
    assert (await same.again(caller)).status_code == 201
    assert await pins_on(backend, same.media.storage_key) == 0
    assert len(await rows_of(backend, caller.user_id)) == 1


async def test_a_post_naming_equal_files_twice_writes_both_rows(
    client: httpx.AsyncClient, backend: AppContext, caller: Caller, served: Served
) -> None:
    data = served.unique_jpeg()
    urls = [served.url_of(data), served.url_of(data) + "?again=1"]  # fetched at once
    created = await client.post("/v1/posts", json=image_post(urls), headers=caller.headers)
    assert created.status_code == 201, created.text
    rows = await rows_of(backend, caller.user_id)
    assert len(rows) == 2 and {row.storage_key for row in rows} == {jpeg_key(data)}
    assert await pins_on(backend, jpeg_key(data)) == 0


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # SQLite: no lock of its own
async def test_the_key_lock_is_held_until_the_transaction_ends(backend: AppContext) -> None:
    """(SQLite's write transactions are exclusive: it needs no lock of its own.)"""
    key = f"sha256/{secrets.token_hex(32)}.jpg"
    probe = text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))")
    async with backend.db.transaction() as holder:
        await (await holder.connection()).run_sync(repository.lock_keys, [key])
        async with backend.db.transaction() as other:
            assert (await other.execute(probe, {"key": key})).scalar_one() is False
    async with backend.db.transaction() as other:
        assert (await other.execute(probe, {"key": key})).scalar_one() is True


# --- a template's picture: the caller's own stored image, deleted while it is read -----------


async def test_a_picture_deleted_while_a_template_reads_it_is_not_found(
    client: httpx.AsyncClient,
    backend: AppContext,
    caller: Caller,
    served: Served,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The template found the caller's media, then a DELETE of it removed the object before
    the picture was read: `upload_failed` (not_found), not a 500."""
    data = served.unique_jpeg()
    uploaded = await upload(client, caller, data)
    assert uploaded.status_code == 201, uploaded.text
    (media,) = await rows_of(backend, caller.user_id)
    by_tokens = repository.by_tokens

    async def found_then_deleted(*args: Any) -> dict[str, Media]:
        found = await by_tokens(*args)
        await delete(client, caller, media.id)
        return found

    monkeypatch.setattr(repository, "by_tokens", found_then_deleted)
    config = {"text": "hello", "avatar": uploaded.json()["url"]}
    body = {"templateSlug": "tweetImage", "config": config}
    response = await client.post("/v1/templates", json=body, headers=caller.headers)
    error = assert_error(response, 400, "upload_failed")
    assert error["details"]["reason"] == "not_found"
    assert await backend.media_store.size(media.storage_key) is None


# --- what a killed process leaves: swept once it is an hour old -------------------------------


async def test_the_sweep_drops_stale_pins_and_the_objects_only_they_held(
    client: httpx.AsyncClient, backend: AppContext, caller: Caller, served: Served
) -> None:
    """A process killed between its pin and its release: the pin, and the object only it
    held, go at the sweep once the pin is an hour old; a used object and a live pin stay."""
    orphan, used, live = served.unique_jpeg(), served.unique_jpeg(), served.unique_jpeg()
    for data in (orphan, used, live):
        assert (await upload(client, caller, data)).status_code == 201
    for media in await rows_of(backend, caller.user_id):
        if media.storage_key != jpeg_key(used):
            async with backend.db.transaction() as session:  # the row goes, not the object
                await session.execute(delete_row(Media).where(Media.id == media.id))
    old = utcnow() - dt.timedelta(hours=2)
    async with backend.db.transaction() as session:
        for data, when in ((orphan, old), (used, old), (live, utcnow())):
            session.add(MediaPin(id=uuid.uuid4(), storage_key=jpeg_key(data), created_at=when))
    assert await pins_module.sweep(backend.db, backend.media_store) >= 2
    assert await backend.media_store.size(jpeg_key(orphan)) is None
    assert await pins_on(backend, jpeg_key(orphan)) == 0
    assert await backend.media_store.size(jpeg_key(used)) == len(used)
    assert await pins_on(backend, jpeg_key(used)) == 0
    assert await backend.media_store.size(jpeg_key(live)) == len(live)  # its intake goes on
    assert await pins_on(backend, jpeg_key(live)) == 1


async def test_the_sweep_removes_intake_files_an_hour_old(tmp_path: Path) -> None:
    old, fresh, other = (tmp_path / n for n in ("incoming-a", "incoming-b", "keep-me"))
    for path in (old, fresh, other):
        path.write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    for path in (old, other):
        os.utime(path, (two_hours_ago, two_hours_ago))
    assert pins_module.sweep_temporary_files(tmp_path) == 1
    assert not old.exists() and fresh.exists() and other.exists()
