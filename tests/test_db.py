"""`UTCDateTime` on SQLite: aware UTC datetimes in and out, stored as text in SQLAlchemy's
DATETIME format, so rows written either way read the same (PostgreSQL keeps timestamptz; the
API and delivery suites run on both). JSON columns' text (`dump_json`, `load_json`)."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    Table,
    bindparam,
    create_engine,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects import sqlite

from soku.context import AppContext
from soku.db import JSONType, UTCDateTime, dump_json, load_json

CET = dt.timezone(dt.timedelta(hours=1))
MOMENTS = [
    dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
    dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),  # no microseconds: still six digits
    dt.datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),  # a year under 1000
]


def _tables() -> tuple[Table, Table]:
    metadata = MetaData()
    ours = Table(
        "stamps", metadata, Column("id", Integer, primary_key=True), Column("at", UTCDateTime)
    )
    plain = Table(
        "stamps", MetaData(), Column("id", Integer, primary_key=True), Column("at", DateTime)
    )
    return ours, plain


def test_sqlite_keeps_sqlalchemys_datetime_text(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'd.db'}")
    ours, plain = _tables()
    ours.metadata.create_all(engine)
    with engine.begin() as connection:
        for n, moment in enumerate(MOMENTS):
            connection.execute(ours.insert(), {"id": n, "at": moment})
            # the same moment as SQLAlchemy's own DATETIME type writes it (naive UTC)
            naive = moment.replace(tzinfo=None)
            connection.execute(plain.insert(), {"id": 100 + n, "at": naive})
        stored = dict(connection.execute(text("SELECT id, at FROM stamps")).all())
        read = dict(connection.execute(select(ours.c.id, ours.c.at)).all())
        by_plain = dict(connection.execute(select(plain.c.id, plain.c.at)).all())
    assert str(ours.c.at.type.dialect_impl(engine.dialect)) == "DATETIME"  # the schema's type
    for n, moment in enumerate(MOMENTS):
        assert stored[n] == stored[100 + n]  # the same text either way
        assert read[n] == read[100 + n] == moment and read[n].tzinfo is dt.UTC
        assert by_plain[n] == moment.replace(tzinfo=None)  # SQLAlchemy reads ours back too
    engine.dispose()


def test_other_zones_are_stored_as_utc_and_naive_datetimes_are_refused(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'd.db'}")
    ours, _ = _tables()
    ours.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(ours.insert(), {"id": 1, "at": dt.datetime(2026, 5, 1, 12, tzinfo=CET)})
        [(stored,)] = connection.execute(text("SELECT at FROM stamps")).all()
        assert stored == "2026-05-01 11:00:00.000000"
        # ordering and comparison work on the text
        later = select(ours.c.id).where(ours.c.at > dt.datetime(2026, 5, 1, 10, 59, tzinfo=dt.UTC))
        assert connection.execute(later).scalars().all() == [1]
        with pytest.raises(Exception, match="naive datetime"):
            connection.execute(ours.insert(), {"id": 2, "at": dt.datetime(2026, 5, 1)})
    engine.dispose()


def test_sql_with_the_time_inline_renders_it_as_stored(tmp_path: Path) -> None:
    ours, _ = _tables()
    moment = dt.datetime(2026, 5, 1, 12, 30, tzinfo=CET)
    query = select(ours.c.id).where(ours.c.at == moment)
    sql = str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    assert "stamps.at = '2026-05-01 11:30:00.000000'" in sql
    engine = create_engine(f"sqlite:///{tmp_path / 'd.db'}")
    ours.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(ours.insert(), {"id": 7, "at": moment})
        assert connection.execute(text(sql)).scalars().all() == [7]
    engine.dispose()


def test_text_written_by_others_reads_as_aware_utc(tmp_path: Path) -> None:
    """SQLite's own CURRENT_TIMESTAMP (no fraction), SQLAlchemy's text, and text with an
    offset (not ours, but valid ISO 8601) all read back as aware UTC datetimes."""
    engine = create_engine(f"sqlite:///{tmp_path / 'd.db'}")
    ours, _ = _tables()
    ours.metadata.create_all(engine)
    texts = {
        1: "2026-01-02 03:04:05",
        2: "2026-01-02 03:04:05.000006",
        3: "2026-01-02T04:04:05+01:00",
    }
    with engine.begin() as connection:
        for n, stamp in texts.items():
            connection.execute(
                text("INSERT INTO stamps (id, at) VALUES (:n, :at)"), {"n": n, "at": stamp}
            )
        connection.execute(text("INSERT INTO stamps (id, at) VALUES (4, CURRENT_TIMESTAMP)"))
        read = dict(connection.execute(select(ours.c.id, ours.c.at)).all())
    assert read[1] == read[3] == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert read[2] == dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    assert all(moment.tzinfo is dt.UTC for moment in read.values())
    assert abs(read[4] - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    engine.dispose()


JSON_VALUES = [
    {"steps": {}, "publish_started": "2026-01-02T03:04:05.000006+00:00"},
    {"big": 2**70 + 1, "small": -(2**63), "unsigned": 2**64 - 1, "digits": "123456789012345678901"},
    {"float": 0.1, "many": 1.2345678901234567, "nothing": None, "text": 'é \u2028 "q"'},
    [1, [2, [3, {}]]],
    None,
]


@pytest.mark.parametrize("value", JSON_VALUES)
def test_json_columns_read_back_what_they_wrote(value: object) -> None:
    """orjson writes and reads JSON columns; what it would refuse or round (integers beyond
    64 bits) goes through `json`, so every value comes back exactly."""
    assert load_json(dump_json(value)) == value
    assert json.loads(dump_json(value)) == value  # plain JSON text
    assert load_json(dump_json(value).encode()) == value


def test_json_columns_take_what_json_takes() -> None:
    """Keys that are not strings become strings, as `json` writes them; NaN, which orjson
    will not read, is read by `json`."""
    assert load_json(dump_json({1: "a", 2.5: "b"})) == {"1": "a", "2.5": "b"}
    assert math.isnan(load_json('{"x": NaN}')["x"])


async def test_json_columns_round_trip_on_the_database(backend: AppContext) -> None:
    """Through the engine's own codec on SQLite and PostgreSQL (JSONB there): a value with
    an integer beyond 64 bits comes back unrounded."""
    value = {"big": 2**70 + 1, "nested": {"list": [0.1, None, "é"]}}

    def echo(connection: Connection) -> object:
        bound = bindparam("value", value, type_=JSONType)
        return connection.execute(select(type_coerce(bound, JSONType))).scalar_one()

    assert await backend.db.run_read(echo) == value
    assert await backend.db.run_write(echo) == value
