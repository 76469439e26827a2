"""Idempotency (DESIGN.md section 7): replay, conflict, auto-derived keys, expiry, concurrency."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
import pytest
from sqlalchemy import func, select, update

from soku.context import AppContext
from soku.posts.models import IdempotencyKey, Post
from tests.api.helpers import assert_error, text_post
from tests.conftest import Caller, make_caller

pytestmark = pytest.mark.asyncio


async def count_posts(ctx: AppContext, caller: Caller) -> int:
    async with ctx.db.read() as session:
        stmt = select(func.count()).select_from(Post).where(Post.user_id == caller.user_id)
        return int((await session.execute(stmt)).scalar_one())


async def send(
    client: httpx.AsyncClient, caller: Caller, body: object, key: str | None
) -> httpx.Response:
    headers = dict(caller.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.post("/v1/posts", json=body, headers=headers)


async def test_same_key_same_body_replays_byte_for_byte(
    backend: AppContext, client: httpx.AsyncClient, caller: Caller
) -> None:
    first = await send(client, caller, text_post("x", text="one"), "key-1")
    again = await send(client, caller, text_post("x", text="one"), "key-1")
    assert first.status_code == again.status_code == 201
    assert first.content == again.content
    assert await count_posts(backend, caller) == 1


async def test_key_order_and_spacing_do_not_matter(
    backend: AppContext, client: httpx.AsyncClient, caller: Caller
) -> None:
    headers = {**caller.headers, "Idempotency-Key": "k-spacing", "content-type": "application/json"}
    a = b'{"post": {"content": {"text": "hi", "platform": ["x"]}}}'
    b = b'{"post":{"content":{"platform":["x"],"text":"hi"}}}'
    first = await client.post("/v1/posts", content=a, headers=headers)
    second = await client.post("/v1/posts", content=b, headers=headers)
    assert first.status_code == 201 and second.content == first.content


async def test_same_key_other_body_is_409(
    backend: AppContext, client: httpx.AsyncClient, caller: Caller
) -> None:
    assert (await send(client, caller, text_post("x", text="one"), "key-2")).status_code == 201
    error = assert_error(
        await send(client, caller, text_post("x", text="two"), "key-2"), 409, "idempotency_conflict"
    )
    assert error["details"]["idempotencyKey"] == "key-2"
    assert await count_posts(backend, caller) == 1


async def test_keys_are_scoped_to_the_user(backend: AppContext, client: httpx.AsyncClient) -> None:
    alice, bob = await make_caller(backend), await make_caller(backend)
    a = await send(client, alice, text_post("x", text="alice"), "shared-key")
    b = await send(client, bob, text_post("x", text="bob"), "shared-key")
    assert a.status_code == b.status_code == 201
    assert a.json() != b.json()


async def test_without_header_the_key_is_derived_from_user_and_body(
    backend: AppContext, client: httpx.AsyncClient, caller: Caller
) -> None:
    first = await send(client, caller, text_post("x", text="same"), None)
    again = await send(client, caller, text_post("x", text="same"), None)
    other = await send(client, caller, text_post("x", text="different"), None)
    assert first.content == again.content
    assert other.json() != first.json()
    assert await count_posts(backend, caller) == 2
    someone_else = await make_caller(backend)
    theirs = await send(client, someone_else, text_post("x", text="same"), None)
    assert theirs.json() != first.json()


async def test_errors_of_the_callers_making_are_not_stored(
    backend: AppContext, client: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[("x", "x_main")])
    bad = await send(client, caller, text_post("x", "threads", text="hi"), "fix-me")
    assert_error(bad, 400, "missing_integrations")
    fixed = await send(client, caller, text_post("x", text="hi"), "fix-me")
    assert fixed.status_code == 201, fixed.text
    invalid = await send(client, caller, text_post("x", text=""), "fix-me-2")
    assert_error(invalid, 400, "validation_error")
    assert (await send(client, caller, text_post("x", text="ok"), "fix-me-2")).status_code == 201


async def test_expired_key_can_be_reused(
    backend: AppContext, client: httpx.AsyncClient, caller: Caller
) -> None:
    first = await send(client, caller, text_post("x", text="old"), "expiring")
    async with backend.db.transaction() as session:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.user_id == caller.user_id)
            .values(expires_at=past)
        )
    reused = await send(client, caller, text_post("x", text="new body"), "expiring")
    assert reused.status_code == 201
    assert reused.json() != first.json()


async def test_keys_are_kept_24_hours(
    backend: AppContext, client: httpx.AsyncClient, caller: Caller
) -> None:
    await send(client, caller, text_post("x", text="ttl"), "ttl-key")
    async with backend.db.read() as session:
        row = (
            await session.execute(
                select(IdempotencyKey).where(IdempotencyKey.user_id == caller.user_id)
            )
        ).scalar_one()
    assert row.expires_at - row.created_at == dt.timedelta(hours=24)


async def test_purge_removes_only_expired(backend: AppContext, client: httpx.AsyncClient) -> None:
    from soku.posts.idempotency import purge_expired

    caller = await make_caller(backend)
    await send(client, caller, text_post("x", text="a"), "purge-a")
    await send(client, caller, text_post("x", text="b"), "purge-b")
    async with backend.db.transaction() as session:
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.user_id == caller.user_id, IdempotencyKey.key == "posts:purge-a")
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))
        )
    async with backend.db.transaction() as session:
        assert await purge_expired(session, dt.datetime.now(dt.UTC)) >= 1
    async with backend.db.read() as session:
        keys = (
            (
                await session.execute(
                    select(IdempotencyKey.key).where(IdempotencyKey.user_id == caller.user_id)
                )
            )
            .scalars()
            .all()
        )
    assert keys == ["posts:purge-b"]


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "tab\there"])
async def test_bad_keys_are_rejected(client: httpx.AsyncClient, caller: Caller, key: str) -> None:
    error = assert_error(await send(client, caller, text_post("x"), key), 400, "validation_error")
    assert error["details"]["field"] == "Idempotency-Key"


async def test_fifty_concurrent_requests_one_key_make_one_post(
    backend: AppContext, client: httpx.AsyncClient, caller: Caller
) -> None:
    body = text_post("x", "threads", "linkedin", text="concurrent")
    answers = await asyncio.gather(*(send(client, caller, body, "burst-key") for _ in range(50)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.content for a in answers}) == 1
    assert await count_posts(backend, caller) == 1


async def test_fifty_concurrent_requests_without_key_make_one_post(
    backend: AppContext, client: httpx.AsyncClient, caller: Caller
) -> None:
    body = text_post("x", text="double click")
    answers = await asyncio.gather(*(send(client, caller, body, None) for _ in range(50)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.content for a in answers}) == 1
    assert await count_posts(backend, caller) == 1


async def test_the_service_purges_expired_keys_by_itself(tmp_path: object) -> None:
    from pathlib import Path

    from soku import migrate
    from soku.app import create_app
    from tests.conftest import make_settings

    assert isinstance(tmp_path, Path)
    ctx = AppContext.build(make_settings(tmp_path, None, idempotency_purge_seconds=0.05))
    await migrate.upgrade(ctx.db.engine)
    caller = await make_caller(ctx)
    app = create_app(ctx=ctx)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (
            await send(c, caller, text_post("x", text="gone soon"), "old-key")
        ).status_code == 201
    async with ctx.db.transaction() as session:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        await session.execute(update(IdempotencyKey).values(expires_at=past))
    async with app.router.lifespan_context(app):
        for _ in range(100):
            async with ctx.db.read() as session:
                left = (
                    await session.execute(select(func.count()).select_from(IdempotencyKey))
                ).scalar_one()
            if left == 0:
                break
            await asyncio.sleep(0.05)
    assert left == 0
    await ctx.aclose()
