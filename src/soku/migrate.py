"""Schema migrations (Alembic), run on the service's own engine."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine


class SchemaTooNew(Exception):
    """The database is at a revision this code does not know: a newer Soku upgraded it."""


class ForeignKeysBroken(Exception):
    """A migration left rows whose foreign keys point at nothing (SQLite checks afterwards)."""


def migrations_path() -> Path:
    """The Alembic folder: inside the installed package, or at the repository's top."""
    packaged = Path(__file__).parent / "_migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_path()))
    return config


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The database's schema revision; None for an empty database."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def check_known(revision: str | None) -> None:
    """SchemaTooNew unless this code's migrations know `revision` (None: empty, known)."""
    script = ScriptDirectory.from_config(alembic_config())
    if revision is None or revision in {s.revision for s in script.walk_revisions()}:
        return
    raise SchemaTooNew(
        f"The database is at schema revision {revision}, which this version of Soku does not "
        f"know (its newest is {script.get_current_head()}): a newer Soku has upgraded it. "
        "Run that version, or restore a copy of the database taken before the upgrade."
    )


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    """PRAGMA foreign_keys, which SQLite ignores inside a transaction: sent on the driver's
    connection, before SQLAlchemy begins one."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    finally:
        cursor.close()


def _broken_references(connection: Connection) -> Counter[tuple[str, str]]:
    """How many rows of each table point at a missing row of each parent table."""
    rows = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    return Counter((str(row[0]), str(row[2])) for row in rows)


def _upgrade_sqlite(connection: Connection, revision: str) -> None:
    """Alembic's batch mode rebuilds a SQLite table (copy, DROP, rename) to alter it; with
    foreign keys on, that DROP deletes every row that refers to the table, through ON DELETE
    CASCADE (rebuilding `posts` emptied `deliveries`). So they are off while it runs, and
    checked before the transaction commits: references broken before it (rows whose parent
    was deleted with foreign keys off, the sqlite3 shell's default) are not its doing."""
    _sqlite_foreign_keys(connection, on=False)
    try:
        with connection.begin():
            before = _broken_references(connection)
            _upgrade(connection, revision)
            broken = _broken_references(connection) - before
            if broken:
                tables = ", ".join(sorted({table for table, _parent in broken}))
                raise ForeignKeysBroken(f"the migration left broken references in {tables}")
    finally:
        _sqlite_foreign_keys(connection, on=True)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            await connection.run_sync(_upgrade_sqlite, revision)
            return
        async with connection.begin():
            await connection.run_sync(_upgrade, revision)
