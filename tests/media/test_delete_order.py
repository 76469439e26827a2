"""A media delete removes the stored object only after the row's removal has committed, and
only if nothing took the key in between (see soku.media.pins.leave and delete_unused)."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete, select

from soku.context import AppContext
from soku.db import utcnow
from soku.media.models import Media, MediaPin
from soku.media.pins import delete_unused, leave
from tests.conftest import Caller
from tests.media_files import write_image

pytestmark = pytest.mark.asyncio


class Abandoned(Exception):
    """Raised inside the transaction, as a failed commit would end it."""


async def uploaded(
    client: httpx.AsyncClient, backend: AppContext, caller: Caller, tmp_path: Path
) -> Media:
    write_image(tmp_path / "one.jpg", tuple(secrets.token_bytes(3)))  # type: ignore[arg-type]
    data = (tmp_path / "one.jpg").read_bytes()
    files = {"file": ("one.jpg", data, "application/octet-stream")}
    response = await client.post("/v1/media/upload", files=files, headers=caller.headers)
    assert response.status_code == 201, response.text
    found = await row(backend, uuid.UUID(response.json()["id"]))
    assert found is not None
    return found


async def row(backend: AppContext, media_id: uuid.UUID) -> Media | None:
    async with backend.db.read() as session:
        return await session.scalar(select(Media).where(Media.id == media_id))


async def test_a_delete_that_does_not_commit_keeps_the_row_and_its_file(
    client: httpx.AsyncClient, backend: AppContext, caller: Caller, tmp_path: Path
) -> None:
    media = await uploaded(client, backend, caller, tmp_path)

    async def abandon() -> None:
        async with backend.db.transaction() as session:
            assert await leave(session, media.storage_key, media_id=media.id)
            raise Abandoned

    with pytest.raises(Abandoned):
        await abandon()
    assert await row(backend, media.id) is not None  # rolled back
    assert await backend.media_store.size(media.storage_key) == media.bytes
    served = await client.get(f"/media/{media.public_token}.{media.extension}")
    assert served.status_code == 200


async def test_a_key_pinned_between_the_commit_and_the_delete_is_kept(
    client: httpx.AsyncClient, backend: AppContext, caller: Caller, tmp_path: Path
) -> None:
    media = await uploaded(client, backend, caller, tmp_path)
    async with backend.db.transaction() as session:
        assert await leave(session, media.storage_key, media_id=media.id)
    pin_id = uuid.uuid4()
    async with backend.db.transaction() as session:  # an intake pins the key meanwhile
        session.add(MediaPin(id=pin_id, storage_key=media.storage_key, created_at=utcnow()))
    await delete_unused(backend.db, backend.media_store, media.storage_key)
    assert await backend.media_store.size(media.storage_key) == media.bytes
    async with backend.db.transaction() as session:
        await session.execute(delete(MediaPin).where(MediaPin.id == pin_id))
    await delete_unused(backend.db, backend.media_store, media.storage_key)
    assert await backend.media_store.size(media.storage_key) is None
