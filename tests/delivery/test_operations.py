"""/metrics, the claim's query plan (the partial index) and the reclaim's probe on both
databases, and a worker that outlives a database it cannot reach for a while."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

from soku import migrate
from soku.context import AppContext
from soku.db import utcnow
from soku.delivery import caps, claims
from soku.delivery import repository as repo
from soku.delivery.models import Delivery
from soku.platforms import LIMITS
from soku.posts import repository as posts
from soku.webhooks import repository as webhooks
from soku.webhooks.events import record_post_events
from tests.conftest import ALL_PLATFORMS, create_database, drop_database, make_settings
from tests.delivery.harness import Harness, sample, samples_of, text_post, unique

ROWS = 2000
FAR = "2099-01-01T00:00:00Z"


class Explain(Executable, ClauseElement):
    """EXPLAIN (PostgreSQL) or EXPLAIN QUERY PLAN (SQLite) of a statement, binds as sent."""

    inherit_cache = False

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement


@compiles(Explain)
def _explain(element: Explain, compiler: SQLCompiler, **kw: Any) -> str:
    prefix = "EXPLAIN QUERY PLAN " if compiler.dialect.name == "sqlite" else "EXPLAIN "
    sql = prefix + compiler.process(element.statement, **kw)
    compiler._result_columns = []  # the plan's rows, not the statement's columns
    return sql


async def test_metrics_count_deliveries_latency_queue_and_lateness(env: Harness) -> None:
    caller = await env.caller([("x", "x_main"), ("threads", "threads_main")])
    threads_user = await env.platform_user(caller, "threads")
    await env.fault(user_id=threads_user, on="publish", error_code="duplicate_content")
    env.start_worker()
    post_id = await env.create(caller, text_post("x", "threads"))
    await env.wait_status(caller, post_id, "partially_published")

    response = await env.api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    for name, kind in (
        ("soku_deliveries_total", "counter"),
        ("soku_delivery_attempt_seconds", "histogram"),
        ("soku_queue_due", "gauge"),
        ("soku_queue_oldest_due_seconds", "gauge"),
        ("soku_delivery_lateness_seconds", "histogram"),
    ):
        assert f"# TYPE {name} {kind}\n" in response.text, name
    assert 'soku_deliveries_total{outcome="published",platform="x"} 1.0' in response.text

    metrics = await env.metrics()
    assert samples_of(metrics, "soku_deliveries_total") == {
        (("outcome", "published"), ("platform", "x")): 1,
        (("outcome", "failed"), ("platform", "threads")): 1,
    }
    for platform in ("x", "threads"):
        assert sample(metrics, "soku_delivery_attempt_seconds_count", platform=platform) == 1
        spent = sample(metrics, "soku_delivery_attempt_seconds_sum", platform=platform)
        assert 0 < spent < 5
        every = sample(
            metrics, "soku_delivery_attempt_seconds_bucket", platform=platform, le="+Inf"
        )
        assert every == 1
        assert sample(metrics, "soku_delivery_lateness_seconds_count", platform=platform) == 1
    assert sample(metrics, "soku_deliveries_in_flight") == 0

    # Queue depth: due deliveries that no worker takes (it is stopped).
    await env.stop_workers()
    waiting = [await env.create(caller, text_post("x")) for _ in range(2)]
    metrics = await env.metrics()
    assert sample(metrics, "soku_queue_due") == 2
    assert sample(metrics, "soku_queue_oldest_due_seconds") > 0
    env.start_worker()
    for post_id in waiting:
        await env.wait_status(caller, post_id, "published")
    metrics = await env.metrics()
    assert sample(metrics, "soku_queue_due") == 0
    assert sample(metrics, "soku_queue_oldest_due_seconds") == 0
    assert sample(metrics, "soku_deliveries_total", outcome="published", platform="x") == 3


@pytest.fixture
async def fresh_env(database_url: str, fake_server: str, tmp_path: Path) -> AsyncIterator[Harness]:
    """A harness on a database of its own (the planner's choice depends on every row)."""
    postgres = database_url.startswith("postgresql")
    url = await create_database() if postgres else f"sqlite+aiosqlite:///{tmp_path / 'plan.db'}"
    ctx = AppContext.build(
        make_settings(tmp_path, url, sandbox_base_url=fake_server, sandbox_fakes="generic")
    )
    await migrate.upgrade(ctx.db.engine)
    harness = Harness(ctx, fake_server)
    await harness.open()
    yield harness
    await harness.close()
    if postgres:
        await drop_database(url)


async def _fill(env: Harness) -> None:
    """ROWS deliveries waiting in the future, over every platform, then fresh statistics."""
    caller = await env.caller()
    post_id = uuid.UUID(await env.create(caller, text_post("x", scheduledTime=FAR)))
    accounts = {p: await env.account(caller, p) for p in ALL_PLATFORMS}
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "id": uuid.uuid4(),
            "post_id": post_id,
            "user_id": caller.user_id,
            "account_ref": accounts[platform].id,
            "platform": platform,
            "account_id": accounts[platform].account_id,
            "status": "scheduled",
            "run_at": now + dt.timedelta(hours=1, seconds=n),
            "attempts": 0,
            "checkpoint": {},
            "created_at": now,
            "updated_at": now,
        }
        for n in range(ROWS)
        for platform in (ALL_PLATFORMS[n % len(ALL_PLATFORMS)],)
    ]
    async with env.ctx.db.transaction() as session:
        await session.execute(insert(Delivery), rows)
    async with env.ctx.db.transaction() as session:
        await _analyze(session)


def _is_pg(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def _analyze(session: AsyncSession) -> None:
    """Fresh planner statistics for the deliveries."""
    await session.execute(text("ANALYZE deliveries" if _is_pg(session) else "ANALYZE"))


async def _plan(session: AsyncSession, statement: Any) -> str:
    """The statement's plan as text, binds as sent; PostgreSQL gives one line per row,
    SQLite rows of (id, parent, notused, detail)."""
    found = (await session.execute(Explain(statement))).all()
    return "\n".join(str(row[0] if _is_pg(session) else row[-1]) for row in found)


async def test_claim_uses_the_partial_index(fresh_env: Harness) -> None:
    env = fresh_env
    await _fill(env)
    async with env.ctx.db.transaction() as session:
        connection = await session.connection()
        now = dt.datetime.now(dt.UTC)
        due = claims.claim_query(connection.sync_connection, [("x", 32)], 32, now)
        plan = await _plan(session, due)
        print(f"\nclaim plan ({session.get_bind().dialect.name}):\n{plan}")
        if _is_pg(session):
            assert "Index Scan using ix_deliveries_due_platform on deliveries" in plan, plan
            assert "Seq Scan" not in plan and "Sort" not in plan, plan
            generic = await _generic_plan(session, due)
            print(f"generic plan:\n{generic}")
            assert "Index Scan using ix_deliveries_due_platform on deliveries" in generic, generic
            assert "Seq Scan" not in generic, generic
        else:
            assert "USING INDEX ix_deliveries_due_platform (platform=? AND run_at<?)" in plan
            assert "SCAN deliveries" not in plan and "TEMP B-TREE" not in plan, plan
        claimed = await connection.run_sync(
            claims.claim_due, "x", "plan-test", dt.timedelta(seconds=5), 32, dt.datetime.now(dt.UTC)
        )
        assert claimed == []  # nothing of it is due


async def test_a_claim_round_is_one_statement_on_the_partial_index(fresh_env: Harness) -> None:
    """The round's SELECT, every platform's branch in it, reads `ix_deliveries_due_platform`
    only, as the one-platform claim does, in the plan PostgreSQL keeps as well."""
    env = fresh_env
    await _fill(env)
    rooms = [(platform, 16) for platform in ALL_PLATFORMS]
    async with env.ctx.db.transaction() as session:
        connection = await session.connection()
        now = dt.datetime.now(dt.UTC)
        query = claims.claim_query(connection.sync_connection, rooms, 64, now)
        plan = await _plan(session, query)
        print(f"\nclaim round plan ({session.get_bind().dialect.name}):\n{plan}")
        if _is_pg(session):
            scans = plan.count("Index Scan using ix_deliveries_due_platform on deliveries")
            assert scans == len(ALL_PLATFORMS), plan
            assert "Seq Scan" not in plan and "Sort" not in plan, plan
            generic = await _generic_plan(session, query)
            assert "Seq Scan" not in generic, generic
            assert generic.count("ix_deliveries_due_platform") == len(ALL_PLATFORMS), generic
        else:
            searches = plan.count(
                "USING INDEX ix_deliveries_due_platform (platform=? AND run_at<?)"
            )
            assert searches == len(ALL_PLATFORMS), plan
            assert "SCAN deliveries" not in plan and "TEMP B-TREE" not in plan, plan


async def test_a_claim_round_takes_each_platform_in_order_within_its_room(
    fresh_env: Harness,
) -> None:
    """Platform by platform in the order given, each its oldest first and at most its room,
    at most the round's limit in all; a platform with no room gives none."""
    env = fresh_env
    caller = await env.caller()
    due = {"x": 3, "threads": 3, "linkedin": 2, "facebook": 1}
    ids: dict[str, list[uuid.UUID]] = {}
    for platform, count in due.items():
        for _ in range(count):
            post_id = uuid.UUID(await env.create(caller, text_post(platform)))
            ids.setdefault(platform, []).append(await _delivery_of(env, post_id))
    owner, lease = "round-test", dt.timedelta(seconds=30)
    rooms = [("threads", 2), ("facebook", 0), ("x", 5), ("linkedin", 5)]

    def round_of(connection: Any) -> list[claims.Claimed]:
        now = dt.datetime.now(dt.UTC)
        return claims.claim_due_platforms(connection, rooms, owner, lease, 4, now)

    claimed = await env.ctx.db.run_write(round_of)
    assert {c.id for c in claimed} == set(ids["threads"][:2] + ids["x"][:2])  # any order
    assert {c.status for c in claimed} == {"processing"}
    assert {c.attempts for c in claimed} == {1}
    again = await env.ctx.db.run_write(round_of)  # what is left of them, room for linkedin's
    assert {c.id for c in again} == set(ids["threads"][2:] + ids["x"][2:] + ids["linkedin"])
    async with env.ctx.db.read() as session:
        waiting = await session.execute(select(Delivery.id).where(Delivery.status == "queued"))
        assert set(waiting.scalars()) == set(ids["facebook"])
    twice = [("x", 1), ("x", 1)]
    with pytest.raises(ValueError, match="at most one per platform"):
        await env.ctx.db.run_write(
            lambda c: claims.claim_due_platforms(c, twice, owner, lease, 2, utcnow())
        )


async def _delivery_of(env: Harness, post_id: uuid.UUID) -> uuid.UUID:
    async with env.ctx.db.read() as session:
        found = await session.execute(select(Delivery.id).where(Delivery.post_id == post_id))
        return found.scalar_one()


async def test_the_cap_count_reads_only_the_window_and_what_is_being_published(
    fresh_env: Harness,
) -> None:
    """An account with many posts published before the window: its cap count reads none of
    them (an index range from the window's start, and the partial index of the deliveries
    being published)."""
    env = fresh_env
    await _fill(env)
    now = dt.datetime.now(dt.UTC)
    async with env.ctx.db.transaction() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.platform == "x")
            .values(status="published", published_at=now - dt.timedelta(days=2))
        )
        await _analyze(session)
        account = (
            await session.execute(
                select(Delivery.account_ref).limit(1).where(Delivery.platform == "x")
            )
        ).scalar_one()
    async with env.ctx.db.transaction() as session:
        connection = await session.connection()
        since = now - dt.timedelta(minutes=15)
        query = caps.recent_query(connection.sync_connection, [account], [uuid.uuid4()], since)
        plan = await _plan(session, query)
        print(f"\ncap count plan ({session.get_bind().dialect.name}):\n{plan}")
        assert "ix_deliveries_account_published" in plan, plan
        assert "ix_deliveries_account_publishing" in plan, plan
        if _is_pg(session):
            assert "Seq Scan" not in plan, plan
            # and in the plan the worker's prepared statement keeps: `published_at >= $n`
            # still proves the partial index's `published_at IS NOT NULL`
            generic = await _generic_plan(session, query)
            assert "ix_deliveries_account_published" in generic, generic
            assert "Seq Scan" not in generic, generic
        else:
            assert "(account_ref=? AND published_at>?)" in plan, plan
            assert "SCAN deliveries" not in plan, plan
        assert (await session.execute(query)).all() == []  # 250 published, none inside


async def _generic_plan(session: AsyncSession, statement: Any) -> str:
    """The plan PostgreSQL keeps for a prepared statement once it stops re-planning it (as
    asyncpg's statement cache does): parameters unknown at planning time."""
    compiled = statement.compile(
        dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True}
    )
    values = [compiled.params[name] for name in compiled.positiontup]
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    await raw.execute("SET LOCAL plan_cache_mode = force_generic_plan")
    await raw.execute(f"PREPARE soku_claim AS {compiled}")
    try:
        args = ", ".join(_sql_literal(value) for value in values)
        rows = await raw.fetch(f"EXPLAIN EXECUTE soku_claim({args})")
    finally:
        await raw.execute("DEALLOCATE soku_claim")
    return "\n".join(r[0] for r in rows)


def _sql_literal(value: object) -> str:
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):  # an array of ids: its text form, typed by the statement
        return _sql_literal("{" + ",".join(str(item) for item in value) + "}")
    if isinstance(value, dt.datetime):
        return _sql_literal(value.isoformat())
    assert isinstance(value, str)
    return "'" + value.replace("'", "''") + "'"


async def test_the_worker_outlives_claims_that_fail(env: Harness) -> None:
    """The database refuses the worker's claims for a while (the queue's table is renamed
    away): the worker logs, pauses and claims again, and the post goes out once it is back."""
    caller = await env.caller([("x", "x_main")])
    post_id = await env.create(caller, text_post("x", text=unique("through an outage")))
    await _rename_deliveries(env, "deliveries", "deliveries_away")
    env.start_worker()
    await asyncio.sleep(1.0)  # its claims fail meanwhile (pauses of 0.2, 0.4, 0.8 s)
    assert not env.workers[-1][1].done()  # it did not end on the first failed claim
    await _rename_deliveries(env, "deliveries_away", "deliveries")

    view = await env.wait_status(caller, post_id, "published")

    assert view["deliveries"][0]["attempts"] == 1  # the failed claims took nothing


async def _rename_deliveries(env: Harness, name: str, to: str) -> None:
    async with env.ctx.db.transaction() as session:
        await session.execute(text(f"ALTER TABLE {name} RENAME TO {to}"))


async def _in_flight(env: Harness, owner: str, expires_in: float) -> uuid.UUID:
    """One waiting delivery taken by `owner`, its lease ending `expires_in` s from now."""
    async with env.ctx.db.transaction() as session:
        chosen = (
            await session.execute(select(Delivery.id).where(Delivery.status == "scheduled"))
        ).scalar()
        assert chosen is not None
        end = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=expires_in)
        await session.execute(
            update(Delivery)
            .where(Delivery.id == chosen)
            .values(status="processing", lease_owner=owner, lease_expires_at=end)
        )
    return chosen


async def _reclaim(env: Harness, running: list[uuid.UUID]) -> list[uuid.UUID]:
    async with env.ctx.db.transaction() as session:
        connection = await session.connection()
        taken = await connection.run_sync(
            claims.reclaim_expired,
            "me",
            dt.timedelta(seconds=30),
            32,
            dt.datetime.now(dt.UTC),
            running,
        )
    return [item.id for item in taken]


async def test_reclaim_probes_for_a_lapsed_lease_through_the_lease_index(
    fresh_env: Harness,
) -> None:
    """The probe before the reclaim's UPDATE reads the partial lease index, not the table;
    the reclaim takes lapsed leases but never one of the worker's own running deliveries."""
    env = fresh_env
    await _fill(env)
    dead = await _in_flight(env, "dead", -60)
    mine = await _in_flight(env, "me", -60)  # a late heartbeat: lapsed, still running here
    await _in_flight(env, "alive", 60)
    async with env.ctx.db.transaction() as session:
        await _analyze(session)
        connection = await session.connection()
        probe = claims.lapsed_query(connection.sync_connection, dt.datetime.now(dt.UTC))
        plan = await _plan(session, probe)
        print(f"\nlapsed lease probe ({session.get_bind().dialect.name}):\n{plan}")
        assert "ix_deliveries_lease" in plan, plan
        if _is_pg(session):
            assert "Seq Scan" not in plan, plan
            generic = await _generic_plan(session, probe)
            assert "ix_deliveries_lease" in generic and "Seq Scan" not in generic, generic
        else:
            assert "SCAN deliveries" not in plan, plan
    assert await _reclaim(env, running=[mine]) == [dead]
    assert await _reclaim(env, running=[mine]) == []  # the probe finds `mine`; still not taken
    assert await _reclaim(env, running=[]) == [mine]  # no longer running here: taken back
    assert await _reclaim(env, running=[]) == []  # nothing lapsed: the probe ends it


_PREPARED = text("SELECT statement FROM pg_prepared_statements")
_ONE_PARAMETER = re.compile(r"\$\d+(::\w+)?(, \$\d+(::\w+)?)*")  # a list of them: one


async def test_statements_of_id_lists_are_prepared_once_on_postgresql(env: Harness) -> None:
    """asyncpg prepares every distinct SQL text on each connection (a round trip and type
    introspection), so a statement that takes a list of ids must be one text whatever the
    list's length (`ids_in`: an array), or a busy worker prepares a new statement for most
    of its groups. Run with lists of 1 to 5 ids in one transaction, no statement is prepared
    twice in two lengths. (SQLite's driver prepares in process, without a round trip.)"""
    if not env.ctx.wakeup.is_postgres:
        pytest.skip("PostgreSQL's prepared statements")
    owner, lease = "nobody", dt.timedelta(seconds=5)

    def run(connection: Connection) -> list[str]:
        now = utcnow()
        for n in range(1, 6):
            ids = [uuid.uuid4() for _ in range(n)]
            record_post_events(connection, {post_id: "published" for post_id in ids}, now)
            repo.refresh_post_statuses(connection, ids, now)
            repo.lease_holders(connection, ids)
            repo.renew_leases(connection, ids, owner, lease, now)
            repo.lock_accounts(connection, ids)
            claims.load_targets(connection, ids)
            caps.over_caps(connection, [(i, i, LIMITS["x"].publish_caps) for i in ids], now)
            webhooks.taken(connection, ids)
            posts.attempts_by_delivery(connection, ids)
            with Session(bind=connection) as session:
                posts.deliveries_by_post(session, ids)
        return list(connection.execute(_PREPARED).scalars())

    async with env.ctx.db.transaction() as session:
        connection = await session.connection()
        prepared = await connection.run_sync(run)
    shapes = Counter(_ONE_PARAMETER.sub("$n", statement) for statement in prepared)
    for table in ("posts JOIN webhook_endpoints", "FROM delivery_attempts", "webhook_deliveries"):
        assert any(table in shape for shape in shapes), (table, prepared)
    assert [shape for shape, count in shapes.items() if count > 1] == []
