"""A database made by an older release, rows and all, upgraded to head: nothing is lost and
the service reads the old rows. Rows are written with plain SQL for the older revision."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import sqlite3
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from soku import migrate
from soku.app import create_app
from soku.context import AppContext
from soku.db import Database
from tests.conftest import make_settings
from tests.test_migrations import database_url

__all__ = ["database_url"]  # a fixture, used by name
pytestmark = pytest.mark.asyncio
KEY = "sk_live_OLDRELEASEoldreleaseOLDRELEASEold01234"
TABLES = ("users", "api_keys", "accounts", "posts", "deliveries", "delivery_attempts")
STATES = ("queued", "scheduled", "processing", "published", "failed")


class OldRows:
    """Values as the older revision stores them: UUIDs as 32 hex digits and times as text on
    SQLite, native types on PostgreSQL."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.native = conn.dialect.name == "postgresql"
        self.now = dt.datetime.now(dt.UTC)

    def id(self, value: uuid.UUID) -> object:
        return value if self.native else value.hex

    def at(self, hours: float = 0) -> object:
        stamp = self.now + dt.timedelta(hours=hours)
        return stamp if self.native else stamp.strftime("%Y-%m-%d %H:%M:%S.%f")

    async def insert(self, table: str, **values: object) -> None:
        names = ", ".join(values)
        marks = ", ".join(f":{name}" for name in values)
        await self.conn.execute(text(f"INSERT INTO {table} ({names}) VALUES ({marks})"), values)


async def _seed(conn: AsyncConnection) -> uuid.UUID:
    """A user with a key, an account and one post per delivery state; the published one has
    an attempt. Returns the published post's id."""
    rows, user, account = OldRows(conn), uuid.uuid4(), uuid.uuid4()
    await _seed_user(rows, user, account)
    return await _seed_posts(rows, user, account)


async def _seed_user(rows: OldRows, user: uuid.UUID, account: uuid.UUID) -> None:
    at = rows.at()
    await rows.insert(
        "users",
        id=rows.id(user),
        email="old@example.test",
        subscription_status="active",
        plan="standard",
        created_at=at,
    )
    key_hash = hashlib.sha256(KEY.encode()).hexdigest()
    await rows.insert(
        "api_keys",
        id=rows.id(uuid.uuid4()),
        user_id=rows.id(user),
        prefix=KEY[:16],
        key_hash=key_hash,
        name="old",
        created_at=at,
    )
    await rows.insert(
        "accounts",
        id=rows.id(account),
        user_id=rows.id(user),
        platform="x",
        account_id="x_old",
        status="connected",
        sandbox=True,
        created_at=at,
    )


async def _seed_posts(rows: OldRows, user: uuid.UUID, account: uuid.UUID) -> uuid.UUID:
    at, published = rows.at(), None
    for state in STATES:
        post, delivery = uuid.uuid4(), uuid.uuid4()
        await rows.insert(
            "posts",
            id=rows.id(post),
            user_id=rows.id(user),
            status=state,
            content='{"text":"old","mediaType":"text","platform":["x"]}',
            created_at=at,
            updated_at=at,
        )
        await rows.insert(
            "deliveries",
            id=rows.id(delivery),
            post_id=rows.id(post),
            user_id=rows.id(user),
            account_ref=rows.id(account),
            position=0,
            platform="x",
            account_id="x_old",
            status=state,
            run_at=rows.at(1),
            attempts=0,
            checkpoint="{}",
            created_at=at,
            updated_at=at,
        )
        if state == "published":
            published = post
            await rows.insert(
                "delivery_attempts",
                delivery_id=rows.id(delivery),
                started_at=at,
                outcome="published",
            )
    assert published is not None
    return published


async def _counts(db: Database) -> dict[str, int]:
    async with db.engine.connect() as conn:
        counts = [await conn.execute(text(f"SELECT count(*) FROM {t}")) for t in TABLES]
    return {table: count.scalar_one() for table, count in zip(TABLES, counts, strict=True)}


@pytest.mark.parametrize("revision", ["0001", "0002", "0003", "0004", "0008"])
async def test_upgrade_keeps_every_row(database_url: str, revision: str, tmp_path: Path) -> None:
    """On SQLite, rebuilding `posts` (migration 0003) once deleted every delivery and attempt
    through ON DELETE CASCADE."""
    db = Database(database_url, pool_size=1)  # the service's engine: foreign keys on
    try:
        await migrate.upgrade(db.engine, revision)
        async with db.engine.begin() as conn:
            post_id = await _seed(conn)
        before = await _counts(db)
        await migrate.upgrade(db.engine)
        assert await _counts(db) == before
    finally:
        await db.dispose()
    ctx = AppContext.build(make_settings(tmp_path, database_url))
    transport = httpx.ASGITransport(app=create_app(ctx=ctx))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://soku.test") as http:
            answer = await http.get(f"/v1/posts/{post_id}", headers={"soku-api-key": KEY})
    finally:
        await ctx.aclose()
    assert answer.status_code == 200
    assert [d["status"] for d in answer.json()["deliveries"]] == ["published"]


async def test_references_broken_before_the_upgrade_do_not_stop_it(tmp_path: Path) -> None:
    """A row whose parent was deleted with foreign keys off (the sqlite3 shell's default) was
    there before: the upgrade goes on and keeps it. Only references the migration breaks are
    refused."""
    path = tmp_path / "orphan.db"
    db = Database(f"sqlite+aiosqlite:///{path}", pool_size=1)
    try:
        await migrate.upgrade(db.engine, "0004")
        async with db.engine.begin() as conn:
            await _seed_user(OldRows(conn), uuid.uuid4(), uuid.uuid4())
        with contextlib.closing(sqlite3.connect(path)) as shell, shell:  # foreign keys off
            shell.execute("DELETE FROM users")  # its key and its account point at nothing
        before = await _counts(db)
        await migrate.upgrade(db.engine)
        assert await migrate.current_revision(db.engine) == migrate.head_revision()
        assert await _counts(db) == before
    finally:
        await db.dispose()


async def test_references_the_migration_breaks_are_refused(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'broken.db'}", pool_size=1)

    def breaks_a_reference(connection: Connection, revision: str) -> None:
        upgrade(connection, revision)
        connection.exec_driver_sql("DELETE FROM users")  # its api key now points at nothing

    try:
        await migrate.upgrade(db.engine, "0004")
        async with db.engine.begin() as conn:
            await _seed_user(OldRows(conn), uuid.uuid4(), uuid.uuid4())
        with pytest.MonkeyPatch.context() as patch:
            upgrade = migrate._upgrade
            patch.setattr(migrate, "_upgrade", breaks_a_reference)
            with pytest.raises(migrate.ForeignKeysBroken, match="api_keys"):
                await migrate.upgrade(db.engine)
        assert await migrate.current_revision(db.engine) == "0004"  # rolled back
    finally:
        await db.dispose()
