"""Burst lateness: 10,000 deliveries due at the same instant, one worker, a fake with no latency.

Run: .venv/bin/python bench/burst.py [--deliveries 10000] [--lead 3] [--json]
     [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres [--processes N]]
See bench/README.md for how to read the output.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import math
import os
import re
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import common
from sqlalchemy import select, update
from worker_processes import WorkerProcesses

from soku.context import AppContext
from soku.db import utcnow
from soku.delivery.models import Delivery, DeliveryAttempt
from soku.platforms import PLATFORM_NAMES
from soku.posts.models import Post
from soku.runtime import settle_heap

TARGET_P99_S = 10.0
ERRORS_SHOWN = 5
EMAIL = "bench-burst@soku.local"
pct = common.percentile


async def _make_due(ctx: AppContext, lead: float) -> dt.datetime:
    """Every delivery (and post) due `lead` seconds from now, the workers woken as the API
    wakes them (NOTIFY in the transaction on PostgreSQL, the in-process event after it);
    returns once that instant has come."""
    due_at = utcnow() + dt.timedelta(seconds=lead)
    async with ctx.db.transaction() as s:
        await s.execute(update(Delivery).values(run_at=due_at))
        await s.execute(update(Post).values(scheduled_time=due_at))
        await ctx.wakeup.notify_sql(s)
    ctx.wakeup.wake()
    await asyncio.sleep(max(0.0, (due_at - utcnow()).total_seconds()))
    return due_at


def _thread_cpu() -> dict[str, float]:
    """CPU seconds so far of this process's threads, summed by name: a Python thread's own
    name (the event loop runs on MainThread; "Thread-N " dropped), any other thread's kernel
    name (reqwest's runtime: pyreqwest). A thread that ends between two readings drops out."""
    python_names = {t.native_id: re.sub(r"^Thread-\d+ ", "", t.name) for t in threading.enumerate()}
    totals: Counter[str] = Counter()
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        name = python_names.get(int(task.name), stat[stat.index("(") + 1 : stat.rindex(")")])
        totals[name] += common.stat_cpu(stat)
    return dict(totals)


def _thread_cores(start: dict[str, float], end: dict[str, float], wall: float) -> dict[str, float]:
    """Each thread name's CPU between two `_thread_cpu` readings, in cores, busiest first."""
    used = {name: (end[name] - start.get(name, 0.0)) / wall for name in end}
    return dict(sorted(used.items(), key=lambda item: -item[1]))


class _Collections:
    """The garbage collections of this process (the worker's) while the block runs, from
    `gc.callbacks`: how many, and their seconds, by generation."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()
        self._began = 0.0

    def __enter__(self) -> _Collections:
        gc.callbacks.append(self._seen)
        return self

    def __exit__(self, *_exc: object) -> None:
        gc.callbacks.remove(self._seen)

    def _seen(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        generation = str(info["generation"])
        self.count[generation] += 1
        self.seconds[generation] += time.perf_counter() - self._began

    def summary(self) -> dict[str, Any]:
        return {"collections": dict(self.count), "seconds": sum(self.seconds.values())}


async def _burst(
    ctx: AppContext, args: argparse.Namespace, fake: common.Proc, total: int
) -> dict[str, Any]:
    """One in-process Worker, the in-flight count sampled every 0.1 s."""
    run = common.WorkerRun(ctx, args.concurrency, total, args.timeout)
    settle_heap()  # as `soku worker` and `soku serve` do before they take work
    run.start()
    await asyncio.sleep(0.5)  # the worker is up and asleep: nothing is due yet
    due_at = await _make_due(ctx, args.lead)
    start, threads = common.cpu_marks(fake.pid), _thread_cpu()
    in_flight: list[int] = []
    with _Collections() as collections:
        await run.until_finished(
            every=0.1,
            sample=lambda _late: in_flight.append(len(run.worker.tasks)),
            count_every=5,  # a count(*) every 0.5 s, busy or not
            count_when_busy=True,
        )
    end, threads_end = common.cpu_marks(fake.pid), _thread_cpu()
    await run.stop()
    return {
        "due_at": due_at,
        "in_flight_samples": in_flight,
        "cpu": common.cpu_used(start, end),
        "thread_cores": _thread_cores(threads, threads_end, end["wall"] - start["wall"]),
        "gc": collections.summary(),
        "concurrency": run.worker.concurrency,
        "batch": ctx.settings.worker_batch,
        "processes": None,
    }


async def _burst_processes(
    ctx: AppContext, args: argparse.Namespace, fake: common.Proc, tmp: Path
) -> dict[str, Any]:
    """`--processes` `soku worker` processes; their CPU summed. This process only counts the
    unfinished deliveries, every 0.5 s."""
    workers = WorkerProcesses(ctx.settings, args.processes, args.concurrency, tmp)
    workers.spawn()
    try:
        await workers.listening(ctx)
        due_at = await _make_due(ctx, args.lead)
        start = common.cpu_marks(fake.pid, pids=workers.pids)
        deadline = time.monotonic() + args.timeout
        while (left := await common.unfinished(ctx)) and time.monotonic() < deadline:
            workers.check_alive()
            await asyncio.sleep(0.5)
        end = common.cpu_marks(fake.pid, pids=workers.pids)
    finally:
        statuses = workers.stop()
    if left:
        raise RuntimeError(f"{left} deliveries were not finished after {args.timeout:g} s")
    return {
        "due_at": due_at,
        "in_flight_samples": [],
        "cpu": common.cpu_used(start, end),
        "concurrency": workers.concurrency,
        "batch": ctx.settings.worker_batch,
        "thread_cores": None,  # other processes' threads: not read
        "gc": None,  # nor their garbage collections
        "processes": args.processes,
        "exit_statuses": statuses,
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
        "attempt_outcomes": dict(Counter(common.outcome_label(a[0], a[3]) for a in attempts)),
        "attempt_errors": _errors([a[3] for a in attempts if a[3]]),
        "published": len(published),
        "publish_lateness_s": {
            "p50": pct(published, 0.5), "p99": pct(published, 0.99),
            "max": last, "first": min(published) if published else None,
        },
        "start_lateness_s": {
            "p50": pct(started, 0.5), "p99": pct(started, 0.99),
            "max": max(started) if started else None,
        },
        "deliveries_per_s": len(published) / last if last else 0.0,
    }  # fmt: skip


def _errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The attempts' distinct errors (code and message), the most frequent first."""
    seen = Counter((str(e.get("code")), str(e.get("message"))) for e in errors)
    return [{"code": c, "message": m, "count": n} for (c, m), n in seen.most_common()]


async def _run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    async with common.delivery_context(args, tmp, latency_ms=0) as (ctx, fake):
        posts = math.ceil(args.deliveries / len(PLATFORM_NAMES))
        accounts = common.accounts_needed(posts, args.accounts)
        t0 = time.perf_counter()
        await common.populate(ctx, EMAIL, posts, accounts, "burst", due=False)
        total = posts * len(PLATFORM_NAMES)
        if not args.json:
            print(
                f"  {total:,} deliveries ({posts:,} posts x 8 platforms, "
                f"{sum(accounts.values())} accounts) inserted in "
                f"{time.perf_counter() - t0:.1f} s; due in {args.lead:g} s",
                flush=True,
            )
        if args.processes:
            run = await _burst_processes(ctx, args, fake, tmp)
        else:
            run = await _burst(ctx, args, fake, total)
        results = await _results(ctx, run["due_at"])
    cpu = run.pop("cpu")
    wall = cpu.pop("wall")
    flying = run.pop("in_flight_samples")
    p99 = results["publish_lateness_s"]["p99"]
    return {
        "database": common.database_kind(ctx.settings.database_url),
        "deliveries": total, "accounts": accounts, **run, **results,
        "cpu_cores": {k: v / wall for k, v in cpu.items()}, "cpu_wall_s": wall,
        "worker_cpu_ms_each": cpu["worker"] * 1000 / max(1, results["published"]),
        "in_flight": {"p50": pct(flying, 0.5), "max": max(flying, default=None)},
        "target_p99_s": TARGET_P99_S, "passed": p99 is not None and p99 < TARGET_P99_S,
        "ok": results["statuses"] == {"published": total},
        "log_level": args.log_level, "inherited_env": common.inherited(),
    }  # fmt: skip


def _f(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _workers(s: dict[str, Any]) -> str:
    shape = f"concurrency {s['concurrency']}, batch {s['batch']}"
    if s["processes"]:
        return f"{s['processes']} `soku worker` processes ({shape} each)"
    return f"one in-process Worker ({shape})"


def _report(s: dict[str, Any]) -> None:
    print(
        f"Soku burst benchmark: {s['database']}, {s['deliveries']:,} deliveries due at one "
        f"instant over 8 platforms; {_workers(s)}; generic fake in its own process, "
        f"latency 0; log level {s['log_level']}"
    )
    common.print_inherited(s)
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
    for error in s["attempt_errors"][:ERRORS_SHOWN]:  # what the attempts that did not publish met
        print(f"  {error['count']} x {error['code']}: {error['message']}")
    _report_cpu(s)

    verdict = common.verdict(s["passed"])
    print(f"p99 publish lateness {_f(pub['p99'])} s (target < {TARGET_P99_S:g} s): {verdict}")
    if not s["ok"]:
        print(f"FAILED: not every delivery was published: {s['statuses']}")


def _report_cpu(s: dict[str, Any]) -> None:
    c, n = s["cpu_cores"], s["processes"] or 1
    who = f"{n} worker processes together" if n > 1 else "worker process"
    server = f" PostgreSQL {c['database']:.2f}," if "database" in c else ""
    print(
        f"CPU in cores over the burst ({s['cpu_wall_s']:.1f} s): {who} "
        f"{c['worker']:.2f} (+ {c['worker_wait']:.2f} runnable, waiting for a core), fake "
        f"{c['fake']:.2f},{server} whole machine {c['machine']:.2f} of {os.cpu_count()}; "
        f"worker CPU {s['worker_cpu_ms_each']:.2f} ms per delivery"
    )
    limit = common.limited_by(c["worker"] / n, c["worker_wait"] / n, c["machine"])
    if s["processes"]:
        print(f"each worker process limited by {limit} (tasks in flight: not sampled)")
        return
    print(
        f"worker tasks in flight p50 {_f(s['in_flight']['p50'], 0)}, max {s['in_flight']['max']}; "
        f"limited by {limit}"
    )
    shown = [f"{name} {cores:.2f}" for name, cores in s["thread_cores"].items() if cores >= 0.01]
    print(f"worker process's threads, in cores: {', '.join(shown) or '-'}")
    collected = s["gc"]
    by_generation = ", ".join(f"gen {g}: {n}" for g, n in sorted(collected["collections"].items()))
    print(
        f"garbage collections in the worker process: {sum(collected['collections'].values())}"
        f" ({by_generation or 'none'}), {collected['seconds']:.3f} s"
    )


def main() -> int:
    parser = common.new_parser(__doc__)
    parser.add_argument("--deliveries", type=int, default=10_000, help="due together (10,000)")
    parser.add_argument("--lead", type=float, default=3.0, help="seconds until they fall due")
    parser.add_argument(
        "--processes",
        type=int,
        help="run this many `soku worker` processes instead of the in-process Worker "
        "(the scaled-out shape; needs a PostgreSQL --database-url)",
    )
    common.add_worker_options(parser, timeout=900.0)
    args = parser.parse_args()
    if args.processes is not None and args.processes < 1:
        parser.error("--processes must be at least 1")
    if args.processes and not common.is_postgres(args.database_url):
        parser.error(
            "--processes needs a PostgreSQL --database-url: on SQLite the service runs one "
            "worker process (a second one would wake only by its poll)"
        )
    return common.run_async(args, _run, _report)


if __name__ == "__main__":
    sys.exit(main())
