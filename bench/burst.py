"""Burst lateness: 10,000 deliveries due at the same instant, one worker, a fake with no latency.

Run: .venv/bin/python bench/burst.py [--deliveries 10000] [--lead 3] [--json]
     [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]
See bench/README.md for how to read the output.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import make_url

from soku import migrate, operations
from soku.auth.models import SubscriptionStatus
from soku.config import Settings
from soku.context import AppContext
from soku.db import utcnow
from soku.delivery.models import Delivery, DeliveryAttempt
from soku.delivery.worker import Worker
from soku.integrations.models import Account
from soku.logs import configure_logging
from soku.platforms import LIMITS, PLATFORM_NAMES
from soku.posts.models import Post

TARGET_P99_S = 10.0
EMAIL = "bench-burst@soku.local"
TICK = os.sysconf("SC_CLK_TCK")
FINISHED = ("published", "failed", "unknown", "cancelled")
Proc = subprocess.Popen[str]


# ---- the fake in its own process, and CPU readings ---------------------------------------


def _start_fake(latency_ms: int) -> tuple[Proc, str]:
    cmd = [sys.executable, "-m", "soku.sandbox", "--host", "127.0.0.1", "--port", "0"]
    fake = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert fake.stdout is not None
    line = fake.stdout.readline()
    if not line.startswith("sandbox ready on "):
        fake.kill()
        raise RuntimeError(f"the sandbox fake did not start: {line!r}")
    root = line.split(" on ", 1)[1].strip()
    config = {"latency_ms": latency_ms, "rate_limit": 1_000_000_000}  # no 429s in a benchmark
    request = urllib.request.Request(
        f"{root}/sandbox/generic/_config",
        data=json.dumps(config).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()
    return fake, f"{root}/sandbox/generic"


def _stop(proc: Proc) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _runqueue_wait(pid: int) -> float:
    """Seconds the process's threads were runnable but waiting for a CPU (all threads)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the thread ended meanwhile
    return total / 1e9


def _machine_busy() -> float:
    """CPU seconds the whole machine spent busy (all cores; idle and iowait excluded)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / TICK


def _cpu_marks(fake_pid: int) -> dict[str, float]:
    return {
        "worker": _proc_cpu(os.getpid()),
        "worker_wait": _runqueue_wait(os.getpid()),
        "fake": _proc_cpu(fake_pid),
        "machine": _machine_busy(),
        "wall": time.monotonic(),
    }


def _inherited() -> dict[str, str]:
    """SOKU_* variables of the environment: they reach the settings this run uses."""
    return {
        k: "***" if any(w in k for w in ("SECRET", "KEY", "URL", "TOKEN")) else v
        for k, v in os.environ.items()
        if k.startswith("SOKU_")
    }


# ---- data -------------------------------------------------------------------------------


def _accounts_needed(per_platform: int, minimum: int) -> dict[str, int]:
    """Enough accounts per platform that no publishing cap defers a delivery in the burst."""
    needed = {}
    for p in PLATFORM_NAMES:
        caps = [cap.count for cap in LIMITS[p].publish_caps]
        needed[p] = max(minimum, math.ceil(per_platform / min(caps)) if caps else minimum)
    return needed


async def _populate(ctx: AppContext, posts: int, accounts: dict[str, int]) -> int:
    """`posts` posts, each to all 8 platforms (one delivery each), waiting a day ahead."""
    settings = ctx.settings
    async with ctx.db.transaction() as s:
        user = await operations.create_user(
            s, settings, EMAIL, SubscriptionStatus.active, "unlimited"
        )
        for p, count in accounts.items():
            for i in range(count):
                await operations.connect_account(
                    s, settings, EMAIL, p, f"{p}_{i}", True, None, None
                )
    user_id = uuid.UUID(user["id"])
    async with ctx.db.read() as s:
        rows = (await s.execute(select(Account).where(Account.user_id == user_id))).scalars()
        by_platform: dict[str, list[Account]] = {p: [] for p in PLATFORM_NAMES}
        for a in rows:
            by_platform[a.platform].append(a)
    later, now = utcnow() + dt.timedelta(days=1), utcnow()
    post_rows, delivery_rows = [], []
    for n in range(posts):
        post_id = uuid.uuid4()
        content = {"text": f"burst {n}: {secrets.token_hex(4)}", "platform": list(PLATFORM_NAMES)}
        post_rows.append(
            {"id": post_id, "user_id": user_id, "content": content, "scheduled_time": later,
             "status": "scheduled", "created_at": now, "updated_at": now}
        )  # fmt: skip
        for position, p in enumerate(PLATFORM_NAMES):
            account = by_platform[p][n % len(by_platform[p])]
            delivery_rows.append(
                {"id": uuid.uuid4(), "post_id": post_id, "user_id": user_id,
                 "account_ref": account.id, "position": position, "platform": p,
                 "account_id": account.account_id, "status": "scheduled", "run_at": later,
                 "attempts": 0, "checkpoint": {}, "created_at": now, "updated_at": now}
            )  # fmt: skip
    async with ctx.db.transaction() as s:
        for lo in range(0, len(post_rows), 5_000):
            await s.execute(insert(Post), post_rows[lo : lo + 5_000])
        for lo in range(0, len(delivery_rows), 5_000):
            await s.execute(insert(Delivery), delivery_rows[lo : lo + 5_000])
    return len(delivery_rows)


async def _left(ctx: AppContext) -> int:
    async with ctx.db.read() as s:
        stmt = select(func.count()).where(Delivery.status.not_in(FINISHED))
        return int((await s.execute(stmt)).scalar_one())


# ---- the run ------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _burst(ctx: AppContext, args: argparse.Namespace, fake: Proc) -> dict[str, Any]:
    worker = Worker(ctx, args.concurrency)
    running = asyncio.create_task(worker.run())
    await asyncio.sleep(0.5)  # the worker is up and asleep: nothing is due yet
    due_at = utcnow() + dt.timedelta(seconds=args.lead)
    async with ctx.db.transaction() as s:
        await s.execute(update(Delivery).values(run_at=due_at))
        await s.execute(update(Post).values(scheduled_time=due_at))
    ctx.wakeup.wake()  # as the API does after committing new work
    await asyncio.sleep(max(0.0, (due_at - utcnow()).total_seconds()))
    start = _cpu_marks(fake.pid)
    in_flight: list[int] = []
    deadline = time.monotonic() + args.timeout
    left = -1
    while time.monotonic() < deadline:
        for _ in range(5):
            await asyncio.sleep(0.1)
            in_flight.append(len(worker.tasks))
        left = await _left(ctx)
        if left == 0:
            break
        if running.done():
            break
    end = _cpu_marks(fake.pid)
    worker.stop()
    await running
    if left != 0:
        raise RuntimeError(f"{left} deliveries were not finished after {args.timeout:g} s")
    return {
        "due_at": due_at,
        "in_flight_samples": in_flight,
        "cpu": {k: end[k] - start[k] for k in start},
        "concurrency": worker.concurrency,
        "batch": ctx.settings.worker_batch,
    }


async def _results(ctx: AppContext, due_at: dt.datetime) -> dict[str, Any]:
    async with ctx.db.read() as s:
        rows = (await s.execute(select(Delivery.status, Delivery.published_at))).all()
        attempts = (
            await s.execute(
                select(
                    DeliveryAttempt.outcome,
                    DeliveryAttempt.started_at,
                    DeliveryAttempt.scheduled_for,
                    DeliveryAttempt.error,
                )
            )
        ).all()
    statuses = Counter(r[0] for r in rows)
    published = [(r[1] - due_at).total_seconds() for r in rows if r[1] is not None]
    started = [(a[1] - a[2]).total_seconds() for a in attempts if a[2] is not None]
    last = max(published) if published else None
    return {
        "statuses": dict(statuses),
        "attempt_outcomes": dict(
            Counter(f"{a[0]} ({a[3].get('code')})" if a[3] else a[0] for a in attempts)
        ),
        "published": len(published),
        "publish_lateness_s": {
            "p50": _pct(published, 0.5), "p99": _pct(published, 0.99),
            "max": last, "first": min(published) if published else None,
        },
        "start_lateness_s": {
            "p50": _pct(started, 0.5), "p99": _pct(started, 0.99),
            "max": max(started) if started else None,
        },
        "deliveries_per_s": len(published) / last if last else 0.0,
    }  # fmt: skip


async def _run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    fake, sandbox_url = _start_fake(0)
    try:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp / 'soku.db'}"
        settings = Settings(
            data_dir=tmp, database_url=url, secret_key=secrets.token_urlsafe(32),
            log_level=args.log_level, log_format="json", sandbox_base_url=sandbox_url,
        )  # fmt: skip
        configure_logging(settings.log_format, settings.log_level)
        ctx = AppContext.build(settings)
        try:
            await migrate.upgrade(ctx.db.engine)
            posts = math.ceil(args.deliveries / len(PLATFORM_NAMES))
            accounts = _accounts_needed(posts, args.accounts)
            t0 = time.perf_counter()
            total = await _populate(ctx, posts, accounts)
            if not args.json:
                print(
                    f"  {total:,} deliveries ({posts:,} posts x 8 platforms, "
                    f"{sum(accounts.values())} accounts) inserted in "
                    f"{time.perf_counter() - t0:.1f} s; due in {args.lead:g} s",
                    flush=True,
                )
            run = await _burst(ctx, args, fake)
            results = await _results(ctx, run["due_at"])
        finally:
            await ctx.aclose()
    finally:
        _stop(fake)
    cpu = run.pop("cpu")
    wall = cpu.pop("wall")
    flying = run.pop("in_flight_samples")
    p99 = results["publish_lateness_s"]["p99"]
    return {
        "database": "sqlite" if url.startswith("sqlite") else "postgresql",
        "deliveries": total, "accounts": accounts, **run, **results,
        "cpu_cores": {k: v / wall for k, v in cpu.items()}, "cpu_wall_s": wall,
        "worker_cpu_ms_each": cpu["worker"] * 1000 / max(1, results["published"]),
        "in_flight": {"p50": _pct([float(v) for v in flying], 0.5), "max": max(flying)},
        "target_p99_s": TARGET_P99_S, "passed": p99 is not None and p99 < TARGET_P99_S,
        "ok": results["statuses"] == {"published": total},
        "log_level": args.log_level, "inherited_env": _inherited(),
    }  # fmt: skip


def _f(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _report(s: dict[str, Any]) -> None:
    print(
        f"Soku burst benchmark: {s['database']}, {s['deliveries']:,} deliveries due at one "
        f"instant over 8 platforms; one in-process Worker (concurrency {s['concurrency']}, "
        f"batch {s['batch']}); generic fake in its own process, latency 0; "
        f"log level {s['log_level']}"
    )
    if s["inherited_env"]:
        print(f"inherited settings: {s['inherited_env']}")
    pub, st = s["publish_lateness_s"], s["start_lateness_s"]
    print(f"{'lateness (s)':<42}{'p50':>8}{'p99':>8}{'max':>8}")
    print(f"{'published_at - run_at (deliveries)':<42}{_f(pub['p50']):>8}{_f(pub['p99']):>8}"
          f"{_f(pub['max']):>8}")  # fmt: skip
    print(f"{'started_at - scheduled_for (attempts)':<42}{_f(st['p50']):>8}{_f(st['p99']):>8}"
          f"{_f(st['max']):>8}")  # fmt: skip
    print(
        f"throughput: {s['deliveries_per_s']:.1f} deliveries/s ({s['published']:,} published; "
        f"first after {_f(pub['first'], 3)} s, last after {_f(pub['max'])} s)"
    )
    print(f"statuses: {s['statuses']}; attempt outcomes: {s['attempt_outcomes']}")
    c = s["cpu_cores"]
    print(
        f"CPU in cores over the burst ({s['cpu_wall_s']:.1f} s): worker process "
        f"{c['worker']:.2f} (+ {c['worker_wait']:.2f} runnable, waiting for a core), fake "
        f"{c['fake']:.2f}, whole machine {c['machine']:.2f} of {os.cpu_count()}; worker CPU "
        f"{s['worker_cpu_ms_each']:.1f} ms per delivery"
    )
    print(
        f"worker tasks in flight p50 {_f(s['in_flight']['p50'], 0)}, max {s['in_flight']['max']}; "
        f"limited by {_limit(c['worker'], c['worker_wait'], c['machine'])}"
    )
    verdict = "PASS" if s["passed"] else "BELOW TARGET"
    print(f"p99 publish lateness {_f(pub['p99'])} s (target < {TARGET_P99_S:g} s): {verdict}")
    if not s["ok"]:
        print(f"FAILED: not every delivery was published: {s['statuses']}")


def _limit(worker: float, wait: float, machine: float) -> str:
    """What held the worker back, from its CPU use, its run-queue wait and the machine's."""
    cpus = os.cpu_count() or 1
    if worker >= 0.85:
        return "the worker process's CPU (one Python process: about 1 core at most)"
    if worker + wait >= 0.85:
        return "the worker process's CPU, shared: it was runnable but waiting for a core"
    if machine >= 0.9 * cpus:
        return "the machine's CPU (every core busy; see the other processes)"
    return "neither CPU: waiting (database locks, I/O)"


async def _admin(url: str, sql: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    u = make_url(url)
    conn = await asyncpg.connect(
        user=u.username, password=u.password, host=u.host, port=u.port, database="test"
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    db_help = "postgresql+asyncpg://user@host:port/any: runs on a fresh soku_bench_* database"
    parser.add_argument("--database-url", help=db_help)
    parser.add_argument("--json", action="store_true", help="print a JSON summary only")
    parser.add_argument("--deliveries", type=int, default=10_000, help="due together (10,000)")
    parser.add_argument("--lead", type=float, default=3.0, help="seconds until they fall due")
    parser.add_argument("--accounts", type=int, default=4, help="minimum accounts per platform")
    parser.add_argument("--concurrency", type=int, help="worker concurrency (default: setting)")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after (s)")
    parser.add_argument("--log-level", default="warning", choices=["info", "warning", "error"])
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up on kill too
    created = None
    if args.database_url and not args.database_url.startswith("sqlite"):
        created = f"soku_bench_{secrets.token_hex(4)}"
        asyncio.run(_admin(args.database_url, f'CREATE DATABASE "{created}"'))
        url = make_url(args.database_url).set(database=created)
        args.database_url = url.render_as_string(hide_password=False)
    try:
        with tempfile.TemporaryDirectory(prefix="soku-bench-") as tmp:
            summary = asyncio.run(_run(args, Path(tmp)))
    except KeyboardInterrupt:
        return 130
    except RuntimeError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if created:
            drop = f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)'
            asyncio.run(_admin(args.database_url, drop))
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        _report(summary)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
