"""The CLI on a database whose schema this code does not know: one made by a newer Soku."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, make_url, text

from soku.migrate import head_revision
from tests.test_cli import Soku, data_dir, flat, pg_database, pg_soku, soku, sqlite_rows

__all__ = ["data_dir", "pg_database", "pg_soku", "soku"]  # fixtures, used by name
NEWER = "9999_from_a_newer_release"
COMMANDS = (
    ("users", "create", "--email", "ada@example.test"),
    ("db", "upgrade"),
    ("serve", "--port", "1"),  # refused before it binds anything
    ("worker",),
)


def _set_revision(url: str, revision: str) -> None:
    """As a newer release's `soku db upgrade` leaves it (`url`: the service's async URL)."""
    driver = "sqlite+pysqlite" if url.startswith("sqlite") else "postgresql+psycopg"
    engine = create_engine(make_url(url).set(drivername=driver))
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        engine.dispose()


def _refused_everywhere(soku: Soku) -> None:
    for args in COMMANDS:
        error = soku.fails(*args, code="schema_too_new")
        assert error["message"].startswith(f"The database is at schema revision {NEWER}, "), error
        assert f"(its newest is {head_revision()})" in error["message"]
        plain = soku.run(*args)
        assert plain.code == 2, plain
        assert "Traceback" not in plain.err, plain
        assert flat(plain.err).startswith("schema_too_new: The database is at schema"), plain


def test_a_sqlite_file_of_a_newer_release_is_refused_untouched(soku: Soku, data_dir: Path) -> None:
    soku.ok("users", "create", "--email", "first@example.test")
    _set_revision(f"sqlite+aiosqlite:///{data_dir / 'soku.db'}", NEWER)
    _refused_everywhere(soku)
    assert sqlite_rows(data_dir, "SELECT version_num FROM alembic_version") == [(NEWER,)]
    assert sqlite_rows(data_dir, "SELECT count(*) FROM users") == [(1,)]


def test_a_postgresql_database_of_a_newer_release_is_refused(
    pg_soku: Soku, pg_database: str
) -> None:
    pg_soku.ok("db", "upgrade")
    _set_revision(pg_database, NEWER)
    _refused_everywhere(pg_soku)
