"""Delivery efficiency: the engine's deliveries/s versus a bare httpx client making the same calls.

Run: .venv/bin/python bench/delivery_efficiency.py [--deliveries 4000] [--json]
     [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]
See bench/README.md for how to read the output.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import secrets
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import common
import httpx

from soku.context import AppContext
from soku.integrations.models import Account
from soku.platforms import PLATFORM_NAMES
from soku.platforms.transport import platform_client
from soku.runtime import settle_heap

TARGET = 0.5
EMAIL = "bench-efficiency@soku.local"
PHASES = {
    "bare1": "bare httpx (before)",
    "engine": "engine (Worker)",
    "bare2": "bare httpx (after)",
    "stock": "stock httpx (ref.)",
}


def stock_client(concurrency: int, timeout_seconds: float) -> httpx.AsyncClient:
    """httpx with its own transport (httpcore's pool), as the engine used before: a reference."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(timeout_seconds, connect=min(5.0, timeout_seconds))
    return httpx.AsyncClient(limits=limits, timeout=timeout, follow_redirects=False)


def _usage(start: dict[str, float], end: dict[str, float], count: int) -> dict[str, float]:
    used = common.cpu_used(start, end)
    wall = used.pop("wall")
    return {
        "seconds": wall,
        "rate": count / wall,
        **{f"{k}_cores": v / wall for k, v in used.items()},
        "bench_cpu_ms_each": used["bench"] * 1000 / count,
        "fake_cpu_ms_each": used["fake"] * 1000 / count,
    }


# ---- the phases -----------------------------------------------------------------------------


async def _bare(
    args: argparse.Namespace,
    sandbox: str,
    accounts: list[Account],
    count: int,
    fake: common.Proc,
    make_client: Callable[[int, float], httpx.AsyncClient] = platform_client,
) -> dict[str, Any]:
    """`count` publish calls, exactly as the connector makes them, `concurrency` at a time,
    through the engine's client (`platform_client`) unless told otherwise."""
    calls = [accounts[i % len(accounts)] for i in range(count)]
    client = make_client(args.concurrency, args.http_timeout)
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
        begin = common.cpu_marks(fake.pid, "bench")
        await asyncio.gather(*(lane(k) for k in range(min(args.concurrency, count))))
        end = common.cpu_marks(fake.pid, "bench")
    finally:
        await client.aclose()
    return {**_usage(begin, end, count), "outcomes": dict(statuses), "retried": dict(retried)}


async def _engine(
    ctx: AppContext, args: argparse.Namespace, fake: common.Proc, total: int
) -> dict[str, Any]:
    """One in-process Worker delivers every due row; timed until the last one finished."""
    run = common.WorkerRun(ctx, args.concurrency, total, args.timeout)
    begin = common.cpu_marks(fake.pid, "bench")
    run.start()
    await run.until_finished(every=0.05)
    end = common.cpu_marks(fake.pid, "bench")
    await run.stop()
    return {**_usage(begin, end, total), "outcomes": await common.attempt_outcomes(ctx)}


async def _run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    async with common.delivery_context(args, tmp, latency_ms=0) as (ctx, fake):
        settings = ctx.settings
        args.concurrency = args.concurrency or settings.worker_concurrency
        args.http_timeout = settings.http_timeout_seconds
        sandbox = settings.sandbox_base_url
        posts = math.ceil(args.deliveries / len(PLATFORM_NAMES))
        needed = common.accounts_needed(posts, args.accounts)
        accounts = await common.populate(ctx, EMAIL, posts, needed, "efficiency", due=True)
        count = posts * len(PLATFORM_NAMES)
        if not args.json:
            print(f"  {count:,} deliveries due, {len(accounts)} accounts", flush=True)
        settle_heap()  # as `soku worker` does at start-up; the same for every phase here
        await _bare(args, sandbox, accounts, min(count, 500), fake)  # warm-up, not counted
        phases = {"bare1": await _bare(args, sandbox, accounts, count, fake)}
        phases["engine"] = await _engine(ctx, args, fake, count)
        phases["bare2"] = await _bare(args, sandbox, accounts, count, fake)
        phases["stock"] = await _bare(args, sandbox, accounts, count, fake, stock_client)
    bare = (phases["bare1"]["rate"] + phases["bare2"]["rate"]) / 2
    ratio = phases["engine"]["rate"] / bare
    problems = [
        f"{PHASES[name]}: {outcome} x{n}"
        for name, phase in phases.items()
        for outcome, n in phase["outcomes"].items()
        if outcome not in ("201", "published")
    ]
    return {
        "database": common.database_kind(settings.database_url),
        "deliveries": count, "concurrency": args.concurrency, "accounts": len(accounts),
        "log_level": args.log_level, "inherited_env": common.inherited(), "phases": phases,
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
    common.print_inherited(s)
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
    print(
        f"ratio engine / bare httpx (mean of before and after): {s['ratio']:.3f} "
        f"(target >= {TARGET}): {common.verdict(s['passed'])}"
    )
    stock = s["phases"]["stock"]["rate"]
    print(
        f"for reference, engine / stock httpx (httpcore's pool, not in the verdict): "
        f"{s['phases']['engine']['rate'] / stock:.3f}"
    )
    common.print_problems(s)


def main() -> int:
    parser = common.new_parser(__doc__)
    parser.add_argument("--deliveries", type=int, default=4_000, help="deliveries (and calls)")
    common.add_worker_options(parser, "worker and bare-client concurrency", timeout=900.0)
    return common.run_async(parser.parse_args(), _run, _report)


if __name__ == "__main__":
    sys.exit(main())
