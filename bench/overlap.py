"""Overlap: how many deliveries one worker process keeps in flight when every call takes 500 ms.

Run: .venv/bin/python bench/overlap.py [--deliveries 1000] [--latency-ms 500] [--json]
     [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]
See bench/README.md for how to read the output.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any

import common
import httpx

from soku.context import AppContext
from soku.platforms import PLATFORM_NAMES
from soku.runtime import settle_heap

TARGET = 200
EMAIL = "bench-overlap@soku.local"


class HttpInFlight:
    """Counts the worker's requests between sending and the response's headers."""

    def __init__(self, clients: list[httpx.AsyncClient]) -> None:
        self.now = 0
        self.errors = 0
        for client in clients:
            hooks = client.event_hooks
            hooks["request"].append(self._sent)
            hooks["response"].append(self._answered)
            client.event_hooks = hooks

    async def _sent(self, _request: httpx.Request) -> None:
        self.now += 1

    async def _answered(self, _response: httpx.Response) -> None:
        self.now -= 1


def _stats(values: list[int]) -> dict[str, float]:
    return {
        "max": float(max(values, default=0)),
        "p50": common.percentile(values, 0.5, 0.0),
        "p90": common.percentile(values, 0.9, 0.0),
        "mean": sum(values) / len(values) if values else 0.0,
    }


async def _overlap(
    ctx: AppContext, args: argparse.Namespace, fake: common.Proc, total: int
) -> dict[str, Any]:
    run = common.WorkerRun(ctx, args.concurrency, total, args.timeout)
    http = HttpInFlight(run.worker.engine.clients.all())
    tasks: list[int] = []
    calls: list[int] = []
    lag: list[float] = []

    def sample(late: float) -> None:
        lag.append(late)
        tasks.append(len(run.worker.tasks))
        calls.append(http.now)

    settle_heap()  # as `soku worker` and `soku serve` do before they take work
    begin = common.cpu_marks(fake.pid)
    run.start()
    await run.until_finished(args.every_ms / 1000, sample)
    end = common.cpu_marks(fake.pid)
    await run.stop()
    used = common.cpu_used(begin, end)
    wall = used.pop("wall")
    return {
        "seconds": wall,
        "deliveries_per_s": total / wall,
        "cpu_cores": {k: v / wall for k, v in used.items()},
        "tasks": _stats(tasks),
        "http": _stats(calls),
        "samples": len(tasks),
        "sampler_lag_ms": {
            "p50": common.percentile(lag, 0.5, 0.0) * 1000,
            "max": max(lag) * 1000,
        },
        "outcomes": await common.attempt_outcomes(ctx),
        "concurrency": run.worker.concurrency,
    }


async def _run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    async with common.delivery_context(args, tmp, args.latency_ms) as (ctx, fake):
        posts = math.ceil(args.deliveries / len(PLATFORM_NAMES))
        accounts = common.accounts_needed(posts, args.accounts)
        await common.populate(ctx, EMAIL, posts, accounts, "overlap", due=True)
        total = posts * len(PLATFORM_NAMES)
        if not args.json:
            print(f"  {total:,} deliveries due; fake latency {args.latency_ms} ms", flush=True)
        result = await _overlap(ctx, args, fake, total)
    best = result["tasks"]["max"]
    problems = [f"{k} x{n}" for k, n in result["outcomes"].items() if k != "published"]
    return {
        "database": common.database_kind(ctx.settings.database_url),
        "deliveries": total, "latency_ms": args.latency_ms, "every_ms": args.every_ms,
        "log_level": args.log_level, "inherited_env": common.inherited(), **result,
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
    common.print_inherited(s)
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
        f"limited by {common.limited_by(c['worker'], c['worker_wait'], c['machine'])}; "
        f"sampler lag p50 {s['sampler_lag_ms']['p50']:.1f} ms, "
        f"max {s['sampler_lag_ms']['max']:.1f} ms"
    )
    print(f"attempt outcomes: {s['outcomes']}")
    verdict = common.verdict(s["passed"])
    print(f"max worker tasks in flight {s['tasks']['max']:.0f} (target >= {TARGET}): {verdict}")
    calls = s["http"]
    print(
        f"max HTTP calls awaiting the fake at once {calls['max']:.0f}, p50 {calls['p50']:.0f} "
        f"(the platform-level overlap; by Little's law about deliveries/s x latency)"
    )
    common.print_problems(s)


def main() -> int:
    parser = common.new_parser(__doc__)
    parser.add_argument("--deliveries", type=int, default=1_000, help="due deliveries (1,000)")
    parser.add_argument("--latency-ms", type=int, default=500, help="fake latency per call")
    parser.add_argument("--every-ms", type=int, default=50, help="sampling interval")
    common.add_worker_options(parser, timeout=600.0)
    return common.run_async(parser.parse_args(), _run, _report)


if __name__ == "__main__":
    sys.exit(main())
