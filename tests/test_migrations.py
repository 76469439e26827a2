"""The migrations build the same schema as the models, on SQLite and PostgreSQL, and undo it."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from soku import migrate
from soku.models import Base
from tests.conftest import create_database, drop_database

pytestmark = pytest.mark.asyncio
TABLES = {
    "users",
    "media",
    "api_keys",
    "accounts",
    "posts",
    "deliveries",
    "delivery_attempts",
    "idempotency_keys",
    "webhook_endpoints",
    "webhook_events",
    "webhook_deliveries",
    "oauth_states",
    "dashboard_sessions",
    "media_pins",
    "alembic_version",
}


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _downgrade(connection: Connection) -> None:
    config = migrate.alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, "base")


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _indexes(connection: Connection, table: str) -> dict[str, object]:
    return {ix["name"]: ix for ix in inspect(connection).get_indexes(table)}


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
        return
    url = await create_database()
    yield url
    await drop_database(url)


async def test_upgrade_matches_models_and_downgrade_undoes_it(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        await migrate.upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == TABLES
            assert await conn.run_sync(_diff) == []
            indexes = await conn.run_sync(_indexes, "deliveries")
        assert "ix_deliveries_due_platform" in indexes
        assert "ix_deliveries_due" not in indexes
        async with engine.connect() as conn:
            assert "ix_media_pins_storage_key" in await conn.run_sync(_indexes, "media_pins")
            assert "ix_media_storage_key" in await conn.run_sync(_indexes, "media")
        async with engine.begin() as conn:
            await conn.run_sync(_downgrade)
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) <= {"alembic_version"}
        await migrate.upgrade(engine)
        await migrate.upgrade(engine)  # a second upgrade is a no-op
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == TABLES
    finally:
        await engine.dispose()
