"""Delivery efficiency: the engine's deliveries/s versus a bare httpx client making the same calls.

Run: .venv/bin/python bench/delivery_efficiency.py [--deliveries 4000] [--json]
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
from urllib.parse import quote

import httpx
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

from soku import migrate, operations
from soku.auth.models import SubscriptionStatus
from soku.config import Settings
from soku.context import AppContext
from soku.db import utcnow
from soku.delivery.engine import http_client
from soku.delivery.models import Delivery, DeliveryAttempt
from soku.delivery.worker import Worker
from soku.integrations.models import Account
from soku.logs import configure_logging
from soku.platforms import LIMITS, PLATFORM_NAMES
from soku.posts.models import Post

TARGET = 0.5
EMAIL = "bench-efficiency@soku.local"
TICK = os.sysconf("SC_CLK_TCK")
FINISHED = ("published", "failed", "unknown", "cancelled")
PHASES = {
    "bare1": "bare httpx (before)",
    "engine": "engine (Worker)",
    "bare2": "bare httpx (after)",
}
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
        "bench": _proc_cpu(os.getpid()),
        "bench_wait": _runqueue_wait(os.getpid()),
        "fake": _proc_cpu(fake_pid),
        "machine": _machine_busy(),
        "wall": time.monotonic(),
    }


def _usage(start: dict[str, float], end: dict[str, float], count: int) -> dict[str, float]:
    wall = end["wall"] - start["wall"]
    used = {k: end[k] - start[k] for k in ("bench", "bench_wait", "fake", "machine")}
    return {
        "seconds": wall,
        "rate": count / wall,
        **{f"{k}_cores": v / wall for k, v in used.items()},
        "bench_cpu_ms_each": used["bench"] * 1000 / count,
        "fake_cpu_ms_each": used["fake"] * 1000 / count,
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


async def _populate(ctx: AppContext, posts: int, accounts: dict[str, int]) -> list[Account]:
    """`posts` posts, each to all 8 platforms, due now (queued); returns the accounts."""
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
        rows = list((await s.execute(select(Account).where(Account.user_id == user_id))).scalars())
    by_platform: dict[str, list[Account]] = {p: [] for p in PLATFORM_NAMES}
    for a in rows:
        by_platform[a.platform].append(a)
    now = utcnow()
    due = now - dt.timedelta(seconds=1)
    post_rows, delivery_rows = [], []
    for n in range(posts):
        post_id = uuid.uuid4()
        content = {
            "text": f"efficiency {n}: {secrets.token_hex(4)}",
            "platform": list(PLATFORM_NAMES),
        }
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
    return rows


def _outcome(outcome: str, error: dict[str, Any] | None) -> str:
    """An attempt's outcome, with the error code when it did not publish."""
    return f"{outcome} ({error.get('code')})" if error else outcome


# ---- the phases -----------------------------------------------------------------------------


async def _bare(
    args: argparse.Namespace, sandbox: str, accounts: list[Account], count: int, fake: Proc
) -> dict[str, Any]:
    """`count` publish calls, exactly as the connector makes them, `concurrency` at a time."""
    calls = [accounts[i % len(accounts)] for i in range(count)]
    client = http_client(args.concurrency, args.http_timeout)
    statuses: Counter[str] = Counter()
    retried: Counter[str] = Counter()
    tag = secrets.token_hex(3)

    async def one(i: int, account: Account) -> None:
        user = quote(account.platform_user_id or account.account_id, safe="")
        body = {"text": f"bare {tag} {i}", "media_ids": [], "platform": account.platform}
        headers = {"Authorization": f"Bearer sandbox-{tag}"}
        for _ in range(3):  # a pooled connection the fake closed meanwhile: send it again
            try:
                response = await client.request(
                    "POST", f"{sandbox}/v1/users/{user}/posts", headers=headers, json=body
                )
                break
            except httpx.TransportError as exc:
                retried[type(exc).__name__] += 1
        else:
            statuses["transport errors x3"] += 1
            return
        if response.is_success and isinstance(response.json(), dict):
            statuses[str(response.status_code)] += 1
        else:
            statuses[f"unexpected {response.status_code}"] += 1

    async def lane(start: int) -> None:
        for i in range(start, count, args.concurrency):
            await one(i, calls[i])

    try:
        begin = _marks(fake.pid)
        await asyncio.gather(*(lane(k) for k in range(min(args.concurrency, count))))
        end = _marks(fake.pid)
    finally:
        await client.aclose()
    return {**_usage(begin, end, count), "outcomes": dict(statuses), "retried": dict(retried)}


async def _engine(ctx: AppContext, args: argparse.Namespace, fake: Proc) -> dict[str, Any]:
    """One in-process Worker delivers every due row; timed until the last one finished."""
    async with ctx.db.read() as s:
        total = int((await s.execute(select(func.count()).select_from(Delivery))).scalar_one())
    worker = Worker(ctx, args.concurrency)
    begin = _marks(fake.pid)
    running = asyncio.create_task(worker.run())
    deadline = time.monotonic() + args.timeout
    left = total
    while time.monotonic() < deadline and not running.done():
        await asyncio.sleep(0.05)
        if worker.tasks:
            continue  # cheap: only ask the database when the worker looks idle
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
    return {**_usage(begin, end, total), "outcomes": dict(Counter(outcomes))}


async def _run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    fake, sandbox = _start_fake(0)
    try:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp / 'soku.db'}"
        settings = Settings(
            data_dir=tmp, database_url=url, secret_key=secrets.token_urlsafe(32),
            log_level=args.log_level, log_format="json", sandbox_base_url=sandbox,
        )  # fmt: skip
        args.concurrency = args.concurrency or settings.worker_concurrency
        args.http_timeout = settings.http_timeout_seconds
        configure_logging(settings.log_format, settings.log_level)
        ctx = AppContext.build(settings)
        try:
            await migrate.upgrade(ctx.db.engine)
            posts = math.ceil(args.deliveries / len(PLATFORM_NAMES))
            accounts = await _populate(ctx, posts, _accounts_needed(posts, args.accounts))
            count = posts * len(PLATFORM_NAMES)
            if not args.json:
                print(f"  {count:,} deliveries due, {len(accounts)} accounts", flush=True)
            await _bare(args, sandbox, accounts, min(count, 500), fake)  # warm-up, not counted
            phases = {"bare1": await _bare(args, sandbox, accounts, count, fake)}
            phases["engine"] = await _engine(ctx, args, fake)
            phases["bare2"] = await _bare(args, sandbox, accounts, count, fake)
        finally:
            await ctx.aclose()
    finally:
        _stop(fake)
    bare = (phases["bare1"]["rate"] + phases["bare2"]["rate"]) / 2
    ratio = phases["engine"]["rate"] / bare
    problems = [
        f"{PHASES[name]}: {outcome} x{n}"
        for name, phase in phases.items()
        for outcome, n in phase["outcomes"].items()
        if outcome not in ("201", "published")
    ]
    return {
        "database": "sqlite" if url.startswith("sqlite") else "postgresql",
        "deliveries": count, "concurrency": args.concurrency, "accounts": len(accounts),
        "log_level": args.log_level, "inherited_env": _inherited(), "phases": phases,
        "bare_rate": bare, "ratio": ratio,
        "target": TARGET, "passed": ratio >= TARGET, "ok": not problems, "problems": problems,
    }  # fmt: skip


def _report(s: dict[str, Any]) -> None:
    print(
        f"Soku delivery-efficiency benchmark: {s['database']}, {s['deliveries']:,} text "
        f"deliveries (one publish POST each) over 8 platforms and {s['accounts']} accounts; "
        f"concurrency {s['concurrency']}; generic fake in its own process, latency 0; "
        f"log level {s['log_level']}"
    )
    if s["inherited_env"]:
        print(f"inherited settings: {s['inherited_env']}")
    cols = [
        "per s",
        "seconds",
        "bench CPU",
        "bench wait",
        "ms CPU each",
        "fake CPU",
        "fake ms each",
    ]
    cols.append("machine")
    print(f"{'phase':<22}" + "".join(f"{c:>13}" for c in cols))
    for name, label in PHASES.items():
        p = s["phases"][name]
        values = [
            p["rate"], p["seconds"], p["bench_cores"], p["bench_wait_cores"],
            p["bench_cpu_ms_each"], p["fake_cores"], p["fake_cpu_ms_each"], p["machine_cores"],
        ]  # fmt: skip
        print(f"{label:<22}" + "".join(f"{v:>13.2f}" for v in values))
    for name, label in PHASES.items():
        phase = s["phases"][name]
        again = f"; sent again after {phase['retried']}" if phase.get("retried") else ""
        print(f"{label}: outcomes {phase['outcomes']}{again}")
    verdict = "PASS" if s["passed"] else "BELOW TARGET"
    print(
        f"ratio engine / bare httpx (mean of before and after): {s['ratio']:.3f} "
        f"(target >= {TARGET}): {verdict}"
    )
    if not s["ok"]:
        print("FAILED: " + "; ".join(s["problems"]))


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
    parser.add_argument("--deliveries", type=int, default=4_000, help="deliveries (and calls)")
    parser.add_argument("--accounts", type=int, default=4, help="minimum accounts per platform")
    parser.add_argument("--concurrency", type=int, help="worker and bare-client concurrency")
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
