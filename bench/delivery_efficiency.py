"""Delivery efficiency: the engine's deliveries/s versus a bare httpx client making the same calls.

Run: .venv/bin/python bench/delivery_efficiency.py [--deliveries 4000] [--rounds 3] [--json]
     [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]
See bench/README.md for how to read the output.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import secrets
import statistics
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import common
import httpx
from sqlalchemy import select, update

from soku.context import AppContext
from soku.db import utcnow
from soku.delivery.models import Delivery
from soku.integrations.models import Account
from soku.platforms import PLATFORM_NAMES
from soku.platforms.transport import platform_client
from soku.posts.models import Post
from soku.runtime import settle_heap

TARGET = 0.5
EMAIL = "bench-efficiency@soku.local"
WARMUP = 500  # calls by the bare client, and about as many deliveries by a worker, not counted


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
        **({"database_cpu_ms_each": used["database"] * 1000 / count} if "database" in used else {}),
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
    """One in-process Worker delivers every due row (a fresh Worker each round); timed until
    the last one finished."""
    before = Counter(await common.attempt_outcomes(ctx))  # earlier rounds'
    run = common.WorkerRun(ctx, args.concurrency, total, args.timeout)
    begin = common.cpu_marks(fake.pid, "bench")
    run.start()
    await run.until_finished(every=0.05)
    end = common.cpu_marks(fake.pid, "bench")
    await run.stop()
    outcomes = Counter(await common.attempt_outcomes(ctx)) - before
    return {**_usage(begin, end, total), "outcomes": dict(outcomes)}


async def _due_round(ctx: AppContext, post_ids: list[uuid.UUID]) -> None:
    """One round's posts due now (they were scheduled a day ahead), as a schedule coming due."""
    due = utcnow() - dt.timedelta(seconds=1)
    async with ctx.db.transaction() as s:
        await s.execute(update(Delivery).where(Delivery.post_id.in_(post_ids)).values(run_at=due))
        await s.execute(update(Post).where(Post.id.in_(post_ids)).values(scheduled_time=due))


async def _rounds(
    ctx: AppContext,
    args: argparse.Namespace,
    fake: common.Proc,
    accounts: list[Account],
    warm_posts: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Warm-ups (the bare client's calls, then a worker's round of `warm_posts` posts), then
    bare, then (engine, bare) once per round: every engine round between two bare ones."""
    sandbox = ctx.settings.sandbox_base_url
    async with ctx.db.read() as s:
        posts = sorted((await s.execute(select(Post.id))).scalars())
    warm, posts = posts[:warm_posts], posts[warm_posts:]
    rounds = [posts[r :: args.rounds] for r in range(args.rounds)]
    count = len(rounds[0]) * len(PLATFORM_NAMES)
    settle_heap()  # as `soku worker` does at start-up; the same for every phase here
    calls, deliveries = min(count, WARMUP), len(warm) * len(PLATFORM_NAMES)
    await _bare(args, sandbox, accounts, calls, fake)  # the warm-ups, not counted
    await _due_round(ctx, warm)
    warmup = {"calls": calls, "deliveries": deliveries}
    warmup |= await _engine(ctx, args, fake, deliveries)
    phases = {"bare1": await _bare(args, sandbox, accounts, count, fake)}
    for r, post_ids in enumerate(rounds, start=1):
        await _due_round(ctx, post_ids)
        phases[f"engine{r}"] = await _engine(ctx, args, fake, count)
        phases[f"bare{r + 1}"] = await _bare(args, sandbox, accounts, count, fake)
    phases["stock"] = await _bare(args, sandbox, accounts, count, fake, stock_client)
    return phases, warmup


def _ratios(phases: dict[str, Any], rounds: int) -> list[float]:
    """Each engine round's rate over the mean of the bare rounds just before and after it."""
    return [
        phases[f"engine{r}"]["rate"]
        / ((phases[f"bare{r}"]["rate"] + phases[f"bare{r + 1}"]["rate"]) / 2)
        for r in range(1, rounds + 1)
    ]


async def _run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    if args.rounds < 1:
        raise SystemExit("--rounds must be at least 1")
    async with common.delivery_context(args, tmp, latency_ms=0) as (ctx, fake):
        settings = ctx.settings
        args.concurrency = args.concurrency or settings.worker_concurrency
        args.http_timeout = settings.http_timeout_seconds
        per_round = math.ceil(args.deliveries / len(PLATFORM_NAMES))
        warm_posts = min(per_round, math.ceil(WARMUP / len(PLATFORM_NAMES)))
        posts = per_round * args.rounds + warm_posts
        needed = common.accounts_needed(posts, args.accounts)  # no cap reached over all rounds
        accounts = await common.populate(ctx, EMAIL, posts, needed, "efficiency", due=False)
        count = per_round * len(PLATFORM_NAMES)
        if not args.json:
            print(f"  {count:,} deliveries per round x {args.rounds}", flush=True)
        phases, warmup = await _rounds(ctx, args, fake, accounts, warm_posts)
    ratios = _ratios(phases, args.rounds)
    ratio = statistics.median(ratios)
    problems = [
        f"{_label(name)}: {outcome} x{n}"
        for name, phase in [*phases.items(), ("warmup", warmup)]
        for outcome, n in phase["outcomes"].items()
        if outcome not in ("201", "published")
    ]
    return {
        "database": common.database_kind(settings.database_url),
        "deliveries": count, "rounds": args.rounds, "concurrency": args.concurrency,
        "accounts": len(accounts), "log_level": args.log_level,
        "inherited_env": common.inherited(), "warmup": warmup, "phases": phases, "ratios": ratios,
        "ratio": ratio, "target": TARGET, "passed": ratio >= TARGET, "ok": not problems,
        "problems": problems,
    }  # fmt: skip


def _label(name: str) -> str:
    """A phase's title: `bare2` is "bare httpx 2", `engine1` "engine (Worker) 1"."""
    if name == "stock":
        return "stock httpx (ref.)"
    if name == "warmup":
        return "engine warm-up"
    if name.startswith("bare"):
        return f"bare httpx {name.removeprefix('bare')}"
    return f"engine (Worker) {name.removeprefix('engine')}"


def _report(s: dict[str, Any]) -> None:
    print(
        f"Soku delivery-efficiency benchmark: {s['database']}, {s['deliveries']:,} text "
        f"deliveries (one publish POST each) per round, {s['rounds']} rounds, over 8 platforms "
        f"and {s['accounts']} accounts; concurrency {s['concurrency']}; generic fake in its own "
        f"process, latency 0; log level {s['log_level']}"
    )
    common.print_inherited(s)
    cols = ["per s", "seconds", "bench CPU", "bench wait", "ms CPU each", "fake CPU"]
    cols += ["fake ms each", "machine"]
    server = "database_cores" in next(iter(s["phases"].values()))
    cols += ["database", "db ms each"] if server else []
    print(f"{'phase':<22}" + "".join(f"{c:>13}" for c in cols))
    for name, p in s["phases"].items():
        values = [
            p["rate"], p["seconds"], p["bench_cores"], p["bench_wait_cores"],
            p["bench_cpu_ms_each"], p["fake_cores"], p["fake_cpu_ms_each"], p["machine_cores"],
        ]  # fmt: skip
        values += [p["database_cores"], p["database_cpu_ms_each"]] if server else []
        print(f"{_label(name):<22}" + "".join(f"{v:>13.2f}" for v in values))
    for name, phase in s["phases"].items():
        again = f"; sent again after {phase['retried']}" if phase.get("retried") else ""
        print(f"{_label(name)}: outcomes {phase['outcomes']}{again}")
    w = s["warmup"]
    print(
        f"not counted: the bare client's warm-up ({w['calls']:,} calls), then a worker's "
        f"({w['deliveries']:,} deliveries at {w['rate']:.1f} per s): outcomes {w['outcomes']}"
    )
    each = ", ".join(f"{r:.3f}" for r in s["ratios"])
    print(f"ratio engine / bare httpx, each round (over the bare rounds around it): {each}")
    print(
        f"ratio, median of the rounds: {s['ratio']:.3f} (target >= {TARGET}): "
        f"{common.verdict(s['passed'])}"
    )
    engines = [p["rate"] for name, p in s["phases"].items() if name.startswith("engine")]
    stock = s["phases"]["stock"]["rate"]
    print(
        f"for reference, engine (median round) / stock httpx (httpcore's pool, not in the "
        f"verdict): {statistics.median(engines) / stock:.3f}"
    )
    common.print_problems(s)


def main() -> int:
    parser = common.new_parser(__doc__)
    parser.add_argument("--deliveries", type=int, default=4_000, help="deliveries (and calls)")
    common.add_worker_options(parser, "worker and bare-client concurrency", timeout=900.0)
    rounds_help = "engine rounds, each between two bare-client rounds; the verdict is the median"
    parser.add_argument("--rounds", type=int, default=3, help=rounds_help)
    return common.run_async(parser.parse_args(), _run, _report)


if __name__ == "__main__":
    sys.exit(main())
