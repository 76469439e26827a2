"""Overlap: how many deliveries one worker process keeps in flight when every call takes 500 ms.

Run: .venv/bin/python bench/overlap.py [--deliveries 1000] [--latency-ms 500] [--json]
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

import httpx
from sqlalchemy import func, insert, select
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

TARGET = 200
EMAIL = "bench-overlap@soku.local"
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


def _marks(fake_pid: int) -> dict[str, float]:
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
    """Enough accounts per platform that no publishing cap defers a delivery."""
    needed = {}
    for p in PLATFORM_NAMES:
        caps = [cap.count for cap in LIMITS[p].publish_caps]
        needed[p] = max(minimum, math.ceil(per_platform / min(caps)) if caps else minimum)
    return needed


async def _populate(ctx: AppContext, posts: int, accounts: dict[str, int]) -> int:
    """`posts` posts, each to all 8 platforms (one delivery each), due now (queued)."""
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
    now = utcnow()
    due = now - dt.timedelta(seconds=1)
    post_rows, delivery_rows = [], []
    for n in range(posts):
        post_id = uuid.uuid4()
        content = {"text": f"overlap {n}: {secrets.token_hex(4)}", "platform": list(PLATFORM_NAMES)}
        post_rows.append(
            {"id": post_id, "user_id": user_id, "content": content, "status": "queued",
             "created_at": now, "updated_at": now}
        )  # fmt: skip
        for position, p in enumerate(PLATFORM_NAMES):
            account = by_platform[p][n % len(by_platform[p])]
            delivery_rows.append(
                {"id": uuid.uuid4(), "post_id": post_id, "user_id": user_id,
                 "account_ref": account.id, "position": position, "platform": p,
                 "account_id": account.account_id, "status": "queued", "run_at": due,
                 "attempts": 0, "checkpoint": {}, "created_at": now, "updated_at": now}
            )  # fmt: skip
    async with ctx.db.transaction() as s:
        for lo in range(0, len(post_rows), 5_000):
            await s.execute(insert(Post), post_rows[lo : lo + 5_000])
        for lo in range(0, len(delivery_rows), 5_000):
            await s.execute(insert(Delivery), delivery_rows[lo : lo + 5_000])
    return len(delivery_rows)


def _outcome(outcome: str, error: dict[str, Any] | None) -> str:
    """An attempt's outcome, with the error code when it did not publish."""
    return f"{outcome} ({error.get('code')})" if error else outcome


# ---- the run ------------------------------------------------------------------------------


class HttpInFlight:
    """Counts the worker client's requests between sending and the response's headers."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.now = 0
        self.errors = 0
        hooks = client.event_hooks
        hooks["request"].append(self._sent)
        hooks["response"].append(self._answered)
        client.event_hooks = hooks

    async def _sent(self, _request: httpx.Request) -> None:
        self.now += 1

    async def _answered(self, _response: httpx.Response) -> None:
        self.now -= 1


def _pct(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))]) if ordered else 0.0


def _stats(values: list[int]) -> dict[str, float]:
    return {
        "max": float(max(values, default=0)),
        "p50": _pct(values, 0.5),
        "p90": _pct(values, 0.9),
        "mean": sum(values) / len(values) if values else 0.0,
    }


async def _overlap(ctx: AppContext, args: argparse.Namespace, fake: Proc, total: int) -> Any:
    worker = Worker(ctx, args.concurrency)
    http = HttpInFlight(worker.engine.client)
    tasks: list[int] = []
    calls: list[int] = []
    lag: list[float] = []
    begin = _marks(fake.pid)
    running = asyncio.create_task(worker.run())
    deadline = time.monotonic() + args.timeout
    left = total
    while time.monotonic() < deadline and not running.done():
        asked = time.perf_counter()
        await asyncio.sleep(args.every_ms / 1000)
        lag.append(time.perf_counter() - asked - args.every_ms / 1000)
        tasks.append(len(worker.tasks))
        calls.append(http.now)
        if worker.tasks:
            continue  # ask the database only when the worker looks idle
        async with ctx.db.read() as s:
            stmt = select(func.count()).where(Delivery.status.not_in(FINISHED))
            left = int((await s.execute(stmt)).scalar_one())
        if left == 0:
            break
    end = _marks(fake.pid)
    worker.stop()
    await running
    if left != 0:
        raise RuntimeError(f"{left} deliveries were not finished after {args.timeout:g} s")
    async with ctx.db.read() as s:
        rows = (await s.execute(select(DeliveryAttempt.outcome, DeliveryAttempt.error))).all()
    outcomes = [_outcome(outcome, error) for outcome, error in rows]
    wall = end["wall"] - begin["wall"]
    return {
        "seconds": wall,
        "deliveries_per_s": total / wall,
        "cpu_cores": {
            k: (end[k] - begin[k]) / wall for k in ("worker", "worker_wait", "fake", "machine")
        },
        "tasks": _stats(tasks),
        "http": _stats(calls),
        "samples": len(tasks),
        "sampler_lag_ms": {"p50": sorted(lag)[len(lag) // 2] * 1000, "max": max(lag) * 1000},
        "outcomes": dict(Counter(outcomes)),
        "concurrency": worker.concurrency,
    }


async def _run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    fake, sandbox = _start_fake(args.latency_ms)
    try:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp / 'soku.db'}"
        settings = Settings(
            data_dir=tmp, database_url=url, secret_key=secrets.token_urlsafe(32),
            log_level=args.log_level, log_format="json", sandbox_base_url=sandbox,
        )  # fmt: skip
        configure_logging(settings.log_format, settings.log_level)
        ctx = AppContext.build(settings)
        try:
            await migrate.upgrade(ctx.db.engine)
            posts = math.ceil(args.deliveries / len(PLATFORM_NAMES))
            total = await _populate(ctx, posts, _accounts_needed(posts, args.accounts))
            if not args.json:
                print(f"  {total:,} deliveries due; fake latency {args.latency_ms} ms", flush=True)
            result = await _overlap(ctx, args, fake, total)
        finally:
            await ctx.aclose()
    finally:
        _stop(fake)
    best = result["tasks"]["max"]
    problems = [f"{k} x{n}" for k, n in result["outcomes"].items() if k != "published"]
    return {
        "database": "sqlite" if url.startswith("sqlite") else "postgresql",
        "deliveries": total, "latency_ms": args.latency_ms, "every_ms": args.every_ms,
        "log_level": args.log_level, "inherited_env": _inherited(), **result,
        "target": TARGET, "passed": best >= TARGET,
        "ok": not problems, "problems": problems,
    }  # fmt: skip


def _report(s: dict[str, Any]) -> None:
    print(
        f"Soku overlap benchmark: {s['database']}, {s['deliveries']:,} due deliveries over 8 "
        f"platforms; one in-process Worker (concurrency {s['concurrency']}); generic fake in its "
        f"own process, {s['latency_ms']} ms per call; sampled every {s['every_ms']} ms "
        f"({s['samples']} samples); log level {s['log_level']}"
    )
    if s["inherited_env"]:
        print(f"inherited settings: {s['inherited_env']}")
    print(f"{'in flight':<44}{'max':>8}{'p50':>8}{'p90':>8}{'mean':>8}")
    rows = {"worker tasks (Worker.tasks)": s["tasks"], "HTTP calls awaiting an answer": s["http"]}
    for label, v in rows.items():
        print(f"{label:<44}{v['max']:>8.0f}{v['p50']:>8.0f}{v['p90']:>8.0f}{v['mean']:>8.1f}")
    ideal = s["concurrency"] * 1000 / s["latency_ms"]
    c = s["cpu_cores"]
    print(
        f"throughput {s['deliveries_per_s']:.1f} deliveries/s over {s['seconds']:.1f} s "
        f"(at {s['concurrency']} in flight and {s['latency_ms']} ms per call: {ideal:.0f}/s)"
    )
    print(
        f"CPU in cores: worker process {c['worker']:.2f} (+ {c['worker_wait']:.2f} waiting for a "
        f"core), fake {c['fake']:.2f}, whole machine {c['machine']:.2f} of {os.cpu_count()}; "
        f"limited by {_limit(c['worker'], c['worker_wait'], c['machine'])}; sampler lag p50 "
        f"{s['sampler_lag_ms']['p50']:.1f} ms, max {s['sampler_lag_ms']['max']:.1f} ms"
    )
    print(f"attempt outcomes: {s['outcomes']}")
    verdict = "PASS" if s["passed"] else "BELOW TARGET"
    print(f"max worker tasks in flight {s['tasks']['max']:.0f} (target >= {TARGET}): {verdict}")
    calls = s["http"]
    print(
        f"max HTTP calls awaiting the fake at once {calls['max']:.0f}, p50 {calls['p50']:.0f} "
        f"(the platform-level overlap; by Little's law about deliveries/s x latency)"
    )
    if not s["ok"]:
        print("FAILED: " + "; ".join(s["problems"]))


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
    parser.add_argument("--deliveries", type=int, default=1_000, help="due deliveries (1,000)")
    parser.add_argument("--latency-ms", type=int, default=500, help="fake latency per call")
    parser.add_argument("--every-ms", type=int, default=50, help="sampling interval")
    parser.add_argument("--accounts", type=int, default=4, help="minimum accounts per platform")
    parser.add_argument("--concurrency", type=int, help="worker concurrency (default: setting)")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after (s)")
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
