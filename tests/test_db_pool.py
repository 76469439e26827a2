"""The PostgreSQL pool pings a connection only after it lay idle (`soku.db.ping_when_idle`):
one the server closed meanwhile is replaced before any work runs on it, and a busy pool
pays no ping per checkout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import soku.db
from soku.db import Database
from tests.conftest import PG_URL, unavailable


@pytest.fixture
async def admin() -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        await engine.dispose()
        unavailable("PostgreSQL", exc)
    yield engine
    await engine.dispose()


async def _backend(db: Database) -> int:
    async with db.engine.connect() as conn:
        pid: int = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    return pid


async def _terminate(admin: AsyncEngine, pid: int) -> None:
    """End that backend, as a server restart or an idle timeout would, and wait until it is
    gone."""
    async with admin.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        for _ in range(100):
            alive = await conn.execute(
                text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            )
            if alive.first() is None:
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"backend {pid} did not end")


def _count_pings(db: Database, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    dialect = db.engine.sync_engine.dialect
    ping, pings = dialect.do_ping, []

    def counted(dbapi_connection: Any) -> bool:
        pings.append(1)
        return ping(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counted)
    return pings


async def test_a_connection_closed_while_idle_is_replaced_before_use(
    admin: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(soku.db, "PING_AFTER_IDLE_SECONDS", 0.2)
    db = Database(PG_URL, pool_size=1)
    pings = _count_pings(db, monkeypatch)
    try:
        first = await _backend(db)
        await _terminate(admin, first)
        await asyncio.sleep(0.3)  # idle past the threshold
        second = await _backend(db)  # the ping finds it dead: a new connection
        assert second != first
        assert pings == [1]
    finally:
        await db.dispose()


async def test_a_busy_pool_is_not_pinged_and_recovers_from_a_dead_connection(
    admin: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(PG_URL, pool_size=1)  # the default threshold: a second
    pings = _count_pings(db, monkeypatch)
    try:
        first = await _backend(db)
        for _ in range(20):
            assert await _backend(db) == first  # the one pooled connection, again and again
        assert pings == []
        # Closed under a connection taken back moments ago (no ping): that use fails, and
        # SQLAlchemy drops the pool's connections, so the next use gets a new one.
        await _terminate(admin, first)
        with pytest.raises(DBAPIError):  # "connection is closed", or asyncpg caught mid-read
            await _backend(db)
        assert await _backend(db) != first
    finally:
        await db.dispose()
