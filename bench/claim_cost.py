"""Claim cost at scale: `claim_due` with 1,000,000 future deliveries waiting versus 1,000.

Run: .venv/bin/python bench/claim_cost.py [--samples 300] [--budget 45] [--json]
     [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]
See bench/README.md for how to read the output.
"""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import common
from sqlalchemy import Connection, event, insert, make_url, select, text

from soku import migrate, operations
from soku.auth.models import SubscriptionStatus
from soku.config import Settings
from soku.db import Database, utcnow
from soku.delivery import claims
from soku.delivery import repository as repo
from soku.delivery.models import Delivery
from soku.integrations.models import Account
from soku.platforms import PLATFORM_NAMES
from soku.posts.models import Post

TARGET = 1.5
EMAIL = "bench-claim@soku.local"
OWNER = "bench-claim:0:000000"
LEASE = dt.timedelta(seconds=30)
ROUND_EACH = 4  # a worker's claim round here: reclaim + 4 rows from each of the 8 platforms
SQLITE_CHUNK = 50_000
QUERIES = {
    "claim": "claim_due (1 platform, batch)",
    "round": "claim round (reclaim + 8 x 4)",
    "wakeup": "next_wakeup (sleeping worker)",
}


class _Rollback(Exception):
    """Raised inside a transaction to undo a sample, so every sample claims the same rows."""


# ---- data -----------------------------------------------------------------------------------


async def _setup(db: Database, settings: Settings) -> dict[str, Any]:
    """A user, one sandbox account per platform, and one post that every delivery belongs to."""
    async with db.transaction() as s:
        user = await operations.create_user(
            s, settings, EMAIL, SubscriptionStatus.active, "unlimited"
        )
        for platform in PLATFORM_NAMES:
            await operations.connect_account(
                s, settings, EMAIL, platform, f"{platform}_claim", True, None, None
            )
        user_id = uuid.UUID(user["id"])
        rows = (await s.execute(select(Account).where(Account.user_id == user_id))).scalars()
        accounts = {a.platform: a for a in rows}
        post_id, now = uuid.uuid4(), utcnow()
        content = {"text": "claim cost", "platform": list(PLATFORM_NAMES)}
        await s.execute(
            insert(Post).values(
                id=post_id, user_id=user_id, content=content, status="scheduled",
                created_at=now, updated_at=now,
            )
        )  # fmt: skip
    return {"user_id": user_id, "post_id": post_id, "accounts": accounts}


def _row(base: dict[str, Any], platform: str, status: str, run_at: dt.datetime) -> dict[str, Any]:
    account = base["accounts"][platform]
    now = utcnow()
    return {
        "id": uuid.uuid4(), "post_id": base["post_id"], "user_id": base["user_id"],
        "account_ref": account.id, "position": 0, "platform": platform,
        "account_id": account.account_id, "status": status, "run_at": run_at, "attempts": 0,
        "checkpoint": {}, "created_at": now, "updated_at": now,
    }  # fmt: skip


async def _insert_due(db: Database, base: dict[str, Any], platform: str, batch: int) -> int:
    """`batch` due rows on the measured platform, ROUND_EACH on each other one (all queued)."""
    past = utcnow() - dt.timedelta(minutes=5)
    rows = [
        _row(base, platform, "queued", past + dt.timedelta(milliseconds=i)) for i in range(batch)
    ]
    for p in PLATFORM_NAMES:
        if p != platform:
            rows += [_row(base, p, "queued", past) for _ in range(ROUND_EACH)]
    async with db.transaction() as s:
        await s.execute(insert(Delivery), rows)
    return len(rows)


def _future_rows(base: dict[str, Any], start: int, stop: int) -> Iterator[dict[str, Any]]:
    first = base["future_from"]
    for i in range(start, stop):
        platform = PLATFORM_NAMES[i % len(PLATFORM_NAMES)]
        yield _row(base, platform, "scheduled", first + dt.timedelta(seconds=i))


PG_FUTURE = """
INSERT INTO deliveries (id, post_id, user_id, account_ref, position, platform, account_id,
                        status, run_at, attempts, checkpoint, created_at, updated_at)
SELECT gen_random_uuid(), CAST(:post AS uuid), CAST(:user AS uuid),
       CAST((CAST(:refs AS text[]))[i % :n + 1] AS uuid), 0,
       (CAST(:platforms AS text[]))[i % :n + 1],
       (CAST(:ids AS text[]))[i % :n + 1], 'scheduled',
       CAST(:first AS timestamptz) + i * interval '1 second', 0, '{}'::jsonb, now(), now()
FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint) - 1) AS i
"""


async def _insert_future(db: Database, base: dict[str, Any], start: int, stop: int) -> float:
    """Future deliveries number start..stop-1, spread over the 8 platforms; returns seconds."""
    t0 = time.perf_counter()
    if db.is_sqlite:  # Core executemany, 50k rows per chunk, one transaction
        async with db.transaction() as s:
            for lo in range(start, stop, SQLITE_CHUNK):
                chunk = list(_future_rows(base, lo, min(stop, lo + SQLITE_CHUNK)))
                await s.execute(insert(Delivery), chunk)
    else:
        accounts = [base["accounts"][p] for p in PLATFORM_NAMES]
        params = {
            "post": str(base["post_id"]), "user": str(base["user_id"]),
            "refs": [str(a.id) for a in accounts], "platforms": list(PLATFORM_NAMES),
            "ids": [a.account_id for a in accounts], "n": len(accounts),
            "first": base["future_from"], "start": start, "stop": stop,
        }  # fmt: skip
        async with db.transaction() as s:
            await s.execute(text(PG_FUTURE), params)
        async with db.engine.connect() as conn:  # what autovacuum would do after such a load
            await conn.execute(text("ANALYZE deliveries"))
            await conn.commit()
    return time.perf_counter() - t0


# ---- measuring ------------------------------------------------------------------------------


async def _timed(db: Database, work: Callable[[Any], Awaitable[int]], want: int) -> float:
    """Seconds `work` took inside a transaction that is then rolled back."""
    elapsed = 0.0
    try:
        async with db.transaction() as s:
            await s.connection()  # BEGIN (and, on PostgreSQL, the pool's ping) not counted
            t0 = time.perf_counter()
            got = await work(s)
            elapsed = time.perf_counter() - t0
            if got != want:
                raise RuntimeError(f"a sample claimed {got} rows, expected {want}")
            raise _Rollback
    except _Rollback:
        pass
    return elapsed


def _workloads(platform: str, batch: int) -> dict[str, tuple[Callable[[Any], Awaitable[int]], int]]:
    def claim_sync(connection: Connection) -> int:
        return len(claims.claim_due(connection, platform, OWNER, LEASE, batch, utcnow()))

    def claim_round_sync(connection: Connection) -> int:
        now = utcnow()
        got = len(claims.reclaim_expired(connection, OWNER, LEASE, batch, now))
        rooms = [(p, ROUND_EACH) for p in PLATFORM_NAMES]  # as the worker's round: one UPDATE
        total = ROUND_EACH * len(PLATFORM_NAMES)
        return got + len(claims.claim_due_platforms(connection, rooms, OWNER, LEASE, total, now))

    async def claim(s: Any) -> int:
        return int(await (await s.connection()).run_sync(claim_sync))

    async def claim_round(s: Any) -> int:
        return int(await (await s.connection()).run_sync(claim_round_sync))

    async def wakeup(s: Any) -> int:
        return 1 if await repo.next_wakeup(s) is not None else 0

    return {
        "claim": (claim, batch),
        "round": (claim_round, ROUND_EACH * len(PLATFORM_NAMES)),
        "wakeup": (wakeup, 1),
    }


async def _measure(dbs: dict[int, Database], args: argparse.Namespace) -> dict[int, Any]:
    """Samples of each query on each database in turn (which size goes first alternates),
    until --samples or --budget seconds, whichever first: a machine that slows down or speeds
    up while sampling moves both sizes alike, not the ratio."""
    loads = _workloads(args.platform, args.batch)
    times: dict[int, dict[str, list[float]]] = {n: {k: [] for k in loads} for n in dbs}
    for _ in range(args.warmup):
        for db in dbs.values():
            for work, want in loads.values():
                await _timed(db, work, want)
    sizes = list(dbs)
    deadline = time.monotonic() + args.budget
    rounds = 0
    while rounds < args.samples and (rounds < args.min_samples or time.monotonic() < deadline):
        for name, (work, want) in loads.items():
            for n in sizes if rounds % 2 == 0 else reversed(sizes):
                times[n][name].append(await _timed(dbs[n], work, want))
        rounds += 1
    return {
        n: {
            name: {
                "samples": len(v),
                "p50_ms": common.percentile(v, 0.5, 0.0) * 1000,
                "p99_ms": common.percentile(v, 0.99, 0.0) * 1000,
                "mean_ms": sum(v) / len(v) * 1000,
            }
            for name, v in by_query.items()
        }
        for n, by_query in times.items()
    }


async def _plan(db: Database, args: argparse.Namespace) -> list[str]:
    """The claim statement as the driver received it, explained on the same database."""
    seen: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("UPDATE DELIVERIES"):
            seen.append((statement, params))

    event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    try:
        await _timed(db, _workloads(args.platform, args.batch)["claim"][0], args.batch)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
    statement, params = seen[0]
    lines: list[str] = []
    try:
        async with db.transaction() as s:
            conn = await s.connection()
            if db.is_sqlite:
                sql = f"EXPLAIN QUERY PLAN {statement}"
                found: list[Any] = list(await conn.exec_driver_sql(sql, params))
                lines = [f"{'  ' * (row[1] > 0)}{row[3]}" for row in found]
            else:
                sql = f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {statement}"
                lines = [row[0] for row in await conn.exec_driver_sql(sql, params)]
            raise _Rollback
    except _Rollback:
        pass
    return lines


async def _prepared_plans(db: Database) -> list[dict[str, Any]]:
    """PostgreSQL: how the connection's prepared claim statement was planned (generic/custom)."""
    if db.is_sqlite:
        return []
    sql = (
        "SELECT generic_plans, custom_plans, left(regexp_replace(statement, '\\s+', ' ', 'g'), 70)"
        " FROM pg_prepared_statements WHERE statement LIKE 'UPDATE deliveries SET status%'"
    )
    async with db.engine.connect() as conn:
        rows: list[Any] = list(await conn.exec_driver_sql(sql))
    return [{"generic_plans": r[0], "custom_plans": r[1], "statement": r[2]} for r in rows]


# ---- the driver -----------------------------------------------------------------------------


async def _filled(url: str, tmp: Path, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """A migrated database at `url` with the due rows and `n` future ones; its Database open."""
    settings = Settings(
        data_dir=tmp, database_url=url, secret_key=secrets.token_urlsafe(32), log_level="warning"
    )
    db = Database(url, pool_size=1)
    await migrate.upgrade(db.engine)
    base = await _setup(db, settings)
    base["future_from"] = utcnow() + dt.timedelta(days=1)
    due = await _insert_due(db, base, args.platform, args.batch)
    load_s = await _insert_future(db, base, 0, n)
    if not args.json:
        print(f"  {n:,} future rows in place ({load_s:.1f} s to add)", flush=True)
    return {"db": db, "due": due, "insert_seconds": load_s}


def _small_url(url: str, tmp: Path) -> str:
    """The second database, for the small size: a file beside the first on SQLite, on
    PostgreSQL a database named after the benchmark's own fresh one."""
    if not common.is_postgres(url):
        return f"sqlite+aiosqlite:///{tmp / 'claim-small.db'}"
    u = make_url(url)
    return u.set(database=f"{u.database}_small").render_as_string(hide_password=False)


async def _run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Two databases, one per size, built the same way and sampled in turn."""
    url = common.database_url(args, tmp, "claim-large.db")
    small_url = _small_url(url, tmp)
    if common.is_postgres(url):
        await common.admin(url, f'CREATE DATABASE "{make_url(small_url).database}"')
    built: dict[int, dict[str, Any]] = {}
    try:
        for n, at in ((args.small, small_url), (args.large, url)):
            built[n] = await _filled(at, tmp, n, args)
        dbs = {n: b["db"] for n, b in built.items()}
        if not args.json:
            print("  measuring both sizes in turn", flush=True)
        queries = await _measure(dbs, args)
        stages = {
            str(n): {
                "future_rows": n,
                "insert_seconds": b["insert_seconds"],
                "queries": queries[n],
                "plan": await _plan(b["db"], args),
                "prepared": await _prepared_plans(b["db"]),
            }
            for n, b in built.items()
        }
        due = built[args.large]["due"]
    finally:
        for b in built.values():
            await b["db"].dispose()
        if common.is_postgres(url):
            drop = f'DROP DATABASE IF EXISTS "{make_url(small_url).database}" WITH (FORCE)'
            await common.admin(url, drop)
    small, large = (stages[str(n)]["queries"] for n in (args.small, args.large))
    ratios = {
        name: {q: large[name][f"{q}_ms"] / small[name][f"{q}_ms"] for q in ("p50", "p99")}
        for name in QUERIES
    }
    ratio = ratios["claim"]["p50"]
    return {
        "database": common.database_kind(url),
        "platform": args.platform, "batch": args.batch, "due_rows": due,
        "small": args.small, "large": args.large, "stages": stages, "ratios": ratios,
        "ratio": ratio, "target": TARGET, "passed": ratio <= TARGET,
    }  # fmt: skip


def _report(s: dict[str, Any]) -> None:
    small, large = s["stages"][str(s["small"])], s["stages"][str(s["large"])]
    print(
        f"Soku claim-cost benchmark: {s['database']}; {s['due_rows']} due rows "
        f"({s['batch']} on {s['platform']}, {ROUND_EACH} on each other platform), "
        f"future rows spread over 8 platforms; times inside a transaction, rolled back"
    )
    head = f"N={s['small']:,} p50/p99 ms"
    head2 = f"N={s['large']:,} p50/p99 ms"
    print(f"{'query':<32}{head:>26}{head2:>28}{'ratio p50':>11}{'ratio p99':>11}{'samples':>12}")
    for name, label in QUERIES.items():
        a, b = small["queries"][name], large["queries"][name]
        r = s["ratios"][name]
        print(
            f"{label:<32}{a['p50_ms']:>15.3f} / {a['p99_ms']:>8.3f}"
            f"{b['p50_ms']:>17.3f} / {b['p99_ms']:>8.3f}"
            f"{r['p50']:>11.2f}{r['p99']:>11.2f}{a['samples']:>6}/{b['samples']:<5}"
        )
    for stage in (small, large):
        print(f"plan of claim_due with {stage['future_rows']:,} future rows:")
        for line in stage["plan"]:
            print(f"    {line}")
        for p in stage["prepared"]:
            print(
                f"    prepared statement on the bench connection: {p['generic_plans']} generic "
                f"plans, {p['custom_plans']} custom plans"
            )
    print(
        f"ratio claim_due p50, {s['large']:,} vs {s['small']:,} future rows: {s['ratio']:.2f} "
        f"(target <= {TARGET}): {common.verdict(s['passed'])}"
    )


def main() -> int:
    parser = common.new_parser(__doc__)
    parser.add_argument("--small", type=int, default=1_000, help="future rows, small database")
    parser.add_argument("--large", type=int, default=1_000_000, help="future rows, large one")
    parser.add_argument("--batch", type=int, default=32, help="rows per claim_due (32)")
    parser.add_argument("--platform", default="x", choices=PLATFORM_NAMES)
    parser.add_argument("--samples", type=int, default=300, help="samples per query and size")
    parser.add_argument("--min-samples", type=int, default=20, help="even past --budget")
    parser.add_argument("--budget", type=float, default=45.0, help="sampling seconds in all")
    parser.add_argument("--warmup", type=int, default=5, help="unrecorded samples per size")
    args = parser.parse_args()
    if args.large <= args.small:
        parser.error("--large must be above --small")
    return common.run_async(args, _run, _report)


if __name__ == "__main__":
    sys.exit(main())
