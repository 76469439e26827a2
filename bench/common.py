"""What the benchmarks share; each script keeps only what its measurement needs.

A script of this folder imports it as `common` (Python puts the script's folder first on
`sys.path`). It imports soku, so accept.py imports it only outside its load generator.

- the run: options, a temporary folder, a fresh PostgreSQL database, exit status, summary;
- the delivery engine's setting: the fake platform in its own process, settings and context,
  users, accounts and deliveries written straight into the tables, the in-process Worker;
- figures: CPU readings from /proc, percentiles, what limited the worker.
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
from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, overload

# the /proc readers, here too for the scripts that read them through `common`
from procstat import CSTIME, CUTIME, PPID, TICK, proc_cpu, runqueue_wait, stat_cpu, stat_fields
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

from soku import migrate, operations, runtime
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

FINISHED = ("published", "failed", "unknown", "cancelled")
DB_HELP = "postgresql+asyncpg://user@host:port/any: runs on a fresh soku_bench_* database"
Proc = subprocess.Popen[str]
Summary = dict[str, Any]


# ---- the run: options, database, temporary folder, exit status, summary ----------------------


def new_parser(doc: str) -> argparse.ArgumentParser:
    """A parser described by the first line of `doc`, with --database-url and --json."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--database-url", help=DB_HELP)
    parser.add_argument("--json", action="store_true", help="print a JSON summary only")
    return parser


def add_worker_options(
    parser: argparse.ArgumentParser,
    concurrency_help: str = "worker concurrency (default: setting)",
    timeout: float = 900.0,
) -> None:
    """--accounts, --concurrency, --timeout and --log-level of the delivery benchmarks."""
    parser.add_argument("--accounts", type=int, default=4, help="minimum accounts per platform")
    parser.add_argument("--concurrency", type=int, help=concurrency_help)
    parser.add_argument("--timeout", type=float, default=timeout, help="give up after (s)")
    parser.add_argument("--log-level", default="warning", choices=["info", "warning", "error"])


def is_postgres(url: str | None) -> bool:
    return bool(url) and not str(url).startswith("sqlite")


def database_kind(url: str) -> str:
    return "postgresql" if is_postgres(url) else "sqlite"


def database_url(args: argparse.Namespace, tmp: Path, name: str = "soku.db") -> str:
    """--database-url, or SQLite in the temporary folder."""
    return str(args.database_url or f"sqlite+aiosqlite:///{tmp / name}")


async def admin(url: str, sql: str) -> None:
    """`sql` on the server of `url`, connected to its `test` database (not the one named)."""
    conn = await _connect_admin(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _connect_admin(url: str) -> Any:
    import asyncpg  # type: ignore[import-untyped]

    u = make_url(url)
    return await asyncpg.connect(
        user=u.username, password=u.password, host=u.host, port=u.port, database="test"
    )


SERVER_PID: int | None = None  # the PostgreSQL server's postmaster, when it runs on this machine


async def _find_server(url: str) -> int | None:
    """The postmaster's pid: the parent of our backend (read while it lives), if /proc shows
    it (a server on this machine)."""
    conn = await _connect_admin(url)
    try:
        backend = await conn.fetchval("SELECT pg_backend_pid()")
        stat = await asyncio.to_thread(Path(f"/proc/{backend}/stat").read_text)
    except OSError:
        return None  # another machine, or a container we cannot see into
    finally:
        await conn.close()
    return int(stat_fields(stat)[PPID])


def server_cpu(pid: int) -> float:
    """CPU seconds of a PostgreSQL server: the postmaster, its children that ended (reaped:
    cutime + cstime) and those alive (backends, background writers)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    reaped = stat_fields(stat)[CUTIME : CSTIME + 1]
    total = stat_cpu(stat) + sum(int(v) for v in reaped) / TICK
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        if int(stat_fields(stat)[PPID]) == pid:
            total += stat_cpu(stat)
    return total


@contextmanager
def fresh_database(args: argparse.Namespace) -> Iterator[None]:
    """With a PostgreSQL --database-url: a new soku_bench_* database on that server, which
    args.database_url then names, dropped at the end (also after an error or Ctrl-C)."""
    if not is_postgres(args.database_url):
        yield
        return
    global SERVER_PID
    created = f"soku_bench_{secrets.token_hex(4)}"
    asyncio.run(admin(args.database_url, f'CREATE DATABASE "{created}"'))
    SERVER_PID = asyncio.run(_find_server(args.database_url))
    url = make_url(args.database_url).set(database=created)
    args.database_url = url.render_as_string(hide_password=False)
    try:
        yield
    finally:
        drop = f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)'
        asyncio.run(admin(args.database_url, drop))


def run(
    args: argparse.Namespace,
    measure: Callable[[argparse.Namespace, Path], Summary],
    report: Callable[[Summary], None],
) -> int:
    """`measure` in a temporary folder (and a fresh database), then its summary: as JSON with
    --json, else through `report`. Exit status 0, or 1 when the run failed or the summary says
    "ok": false, or 130 when interrupted."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up on kill too
    try:
        with fresh_database(args), tempfile.TemporaryDirectory(prefix="soku-bench-") as tmp:
            summary = measure(args, Path(tmp))
    except KeyboardInterrupt:
        return 130
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        report(summary)
    return 0 if summary.get("ok", True) else 1


def run_async(
    args: argparse.Namespace,
    measure: Callable[[argparse.Namespace, Path], Coroutine[Any, Any, Summary]],
    report: Callable[[Summary], None],
) -> int:
    """`run` for a coroutine: `measure` runs in its own event loop, the one `soku worker`
    runs on (`soku.runtime.run`: uvloop where installed)."""
    return run(args, lambda a, tmp: runtime.run(measure(a, tmp)), report)


def soku_command() -> list[str]:
    """The venv's console script (`-m soku.cli` runs nothing: cli.py has no __main__ guard)."""
    script = Path(sys.executable).parent / "soku"
    fallback = [sys.executable, "-c", "from soku.cli import main; main()"]
    return [str(script)] if script.exists() else fallback


def inherited(exclude: Collection[str] = ()) -> dict[str, str]:
    """SOKU_* variables of the environment: they reach the settings this run uses."""
    return {
        k: "***" if any(w in k for w in ("SECRET", "KEY", "URL", "TOKEN")) else v
        for k, v in os.environ.items()
        if k.startswith("SOKU_") and k not in exclude
    }


def print_inherited(s: Summary) -> None:
    if s["inherited_env"]:
        print(f"inherited settings: {s['inherited_env']}")


def verdict(passed: bool) -> str:
    return "PASS" if passed else "BELOW TARGET"


def print_problems(s: Summary) -> None:
    if not s["ok"]:
        print("FAILED: " + "; ".join(s["problems"]))


# ---- the fake in its own process, and CPU readings -------------------------------------------


def start_fake(latency_ms: int) -> tuple[Proc, str]:
    """`python -m soku.sandbox` on a free port, answering after `latency_ms`, never with 429;
    returns the process and the generic fake's base URL."""
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


def stop(*procs: subprocess.Popen[Any], within: float = 10.0) -> list[int]:
    """SIGTERM to each process still running (all signalled before any is waited for), then
    their exit statuses; one still running `within` seconds later is killed (status -9)."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(within)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return [proc.returncode for proc in procs]


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy (all cores; idle and iowait excluded)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / TICK


def cpu_marks(fake_pid: int, me: str = "worker", pids: Sequence[int] = ()) -> dict[str, float]:
    """CPU seconds so far of this process or of the processes `pids` together (`me`, and their
    run-queue wait `me`_wait), of the fake and of the machine, and the monotonic clock
    (`wall`)."""
    mine = pids or [os.getpid()]
    return {
        me: sum(proc_cpu(pid) for pid in mine),
        f"{me}_wait": sum(runqueue_wait(pid) for pid in mine),
        "fake": proc_cpu(fake_pid),
        **({"database": server_cpu(SERVER_PID)} if SERVER_PID else {}),
        "machine": machine_busy(),
        "wall": time.monotonic(),
    }


def cpu_used(start: dict[str, float], end: dict[str, float]) -> dict[str, float]:
    """Seconds between two `cpu_marks`, per reading (`wall` included)."""
    return {k: end[k] - start[k] for k in start}


def limited_by(worker: float, wait: float, machine: float) -> str:
    """What held the worker back, from its CPU use, its run-queue wait and the machine's."""
    cpus = os.cpu_count() or 1
    if worker >= 0.85:
        return "the worker process's CPU (one Python process: about 1 core at most)"
    if worker + wait >= 0.85:
        return "the worker process's CPU, shared: it was runnable but waiting for a core"
    if machine >= 0.9 * cpus:
        return "the machine's CPU (every core busy; see the other processes)"
    return "neither CPU: waiting (database locks, I/O)"


@overload
def percentile(values: Sequence[float], q: float) -> float | None: ...
@overload
def percentile(values: Sequence[float], q: float, empty: float) -> float: ...
def percentile(values: Sequence[float], q: float, empty: float | None = None) -> float | None:
    """The value at quantile `q` (0 to 1) of `values`, rounding the rank down; `empty` if none."""
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))]) if ordered else empty


# ---- the delivery engine: settings, data, the worker -----------------------------------------


@asynccontextmanager
async def delivery_context(
    args: argparse.Namespace, tmp: Path, latency_ms: int
) -> AsyncIterator[tuple[AppContext, Proc]]:
    """The fake started, settings pointing at it (--log-level, JSON logs), the schema built;
    yields the context and the fake, and closes both at the end."""
    fake, sandbox = start_fake(latency_ms)
    try:
        settings = Settings(
            data_dir=tmp, database_url=database_url(args, tmp),
            secret_key=secrets.token_urlsafe(32), log_level=args.log_level, log_format="json",
            sandbox_base_url=sandbox, sandbox_fakes="generic",
        )  # fmt: skip
        configure_logging(settings.log_format, settings.log_level)
        ctx = AppContext.build(settings)
        try:
            await migrate.upgrade(ctx.db.engine)
            yield ctx, fake
        finally:
            await ctx.aclose()
    finally:
        stop(fake)


def accounts_needed(per_platform: int, minimum: int) -> dict[str, int]:
    """Enough accounts per platform that no publishing cap defers a delivery."""
    needed = {}
    for p in PLATFORM_NAMES:
        caps = [cap.count for cap in LIMITS[p].publish_caps]
        needed[p] = max(minimum, math.ceil(per_platform / min(caps)) if caps else minimum)
    return needed


async def populate(
    ctx: AppContext, email: str, posts: int, accounts: dict[str, int], label: str, due: bool
) -> list[Account]:
    """A user on the unlimited plan with `accounts` sandbox accounts per platform, and `posts`
    text posts (text "`label` n: ..."), each to all 8 platforms (one delivery each, accounts in
    turn): due now (queued) when `due`, else scheduled a day ahead. Returns the accounts."""
    settings = ctx.settings
    async with ctx.db.transaction() as s:
        user = await operations.create_user(
            s, settings, email, SubscriptionStatus.active, "unlimited"
        )
        for p, count in accounts.items():
            for i in range(count):
                await operations.connect_account(
                    s, settings, email, p, f"{p}_{i}", True, None, None
                )
    user_id = uuid.UUID(user["id"])
    async with ctx.db.read() as s:
        rows = list((await s.execute(select(Account).where(Account.user_id == user_id))).scalars())
    by_platform: dict[str, list[Account]] = {p: [] for p in PLATFORM_NAMES}
    for a in rows:
        by_platform[a.platform].append(a)
    now = utcnow()
    if due:
        status, run_at = "queued", now - dt.timedelta(seconds=1)
    else:
        status, run_at = "scheduled", now + dt.timedelta(days=1)
    post_rows, delivery_rows = [], []
    for n in range(posts):
        post_id = uuid.uuid4()
        content = {"text": f"{label} {n}: {secrets.token_hex(4)}", "platform": list(PLATFORM_NAMES)}
        post = {"id": post_id, "user_id": user_id, "content": content, "status": status,
                "created_at": now, "updated_at": now}  # fmt: skip
        if not due:
            post["scheduled_time"] = run_at
        post_rows.append(post)
        for position, p in enumerate(PLATFORM_NAMES):
            account = by_platform[p][n % len(by_platform[p])]
            delivery_rows.append(
                {"id": uuid.uuid4(), "post_id": post_id, "user_id": user_id,
                 "account_ref": account.id, "position": position, "platform": p,
                 "account_id": account.account_id, "status": status, "run_at": run_at,
                 "attempts": 0, "checkpoint": {}, "created_at": now, "updated_at": now}
            )  # fmt: skip
    async with ctx.db.transaction() as s:
        for lo in range(0, len(post_rows), 5_000):
            await s.execute(insert(Post), post_rows[lo : lo + 5_000])
        for lo in range(0, len(delivery_rows), 5_000):
            await s.execute(insert(Delivery), delivery_rows[lo : lo + 5_000])
    return rows


async def unfinished(ctx: AppContext) -> int:
    """Deliveries due by now and not yet published, failed, unknown or cancelled (those
    scheduled for later, such as a later round's, are not waited for)."""
    async with ctx.db.read() as s:
        stmt = select(func.count()).where(
            Delivery.status.not_in(FINISHED), Delivery.run_at <= utcnow()
        )
        return int((await s.execute(stmt)).scalar_one())


def outcome_label(outcome: str, error: dict[str, Any] | None) -> str:
    """An attempt's outcome, with the error code when it did not publish."""
    return f"{outcome} ({error.get('code')})" if error else outcome


async def attempt_outcomes(ctx: AppContext) -> dict[str, int]:
    """How many attempts ended in each outcome (see `outcome_label`)."""
    async with ctx.db.read() as s:
        rows = (await s.execute(select(DeliveryAttempt.outcome, DeliveryAttempt.error))).all()
    return dict(Counter(outcome_label(outcome, error) for outcome, error in rows))


class WorkerRun:
    """The real Worker of soku.delivery.worker in this process (the service's defaults unless
    `concurrency`), driven until the `total` deliveries are finished or `timeout` seconds
    have passed."""

    def __init__(
        self, ctx: AppContext, concurrency: int | None, total: int, timeout: float
    ) -> None:
        self.ctx = ctx
        self.worker = Worker(ctx, concurrency)
        self.timeout = timeout
        self.running: asyncio.Task[None] | None = None
        self.left = total  # unfinished, as last counted

    def start(self) -> None:
        self.running = asyncio.create_task(self.worker.run())

    async def until_finished(
        self,
        every: float,
        sample: Callable[[float], None] = lambda late: None,
        count_every: int = 1,
        count_when_busy: bool = False,
    ) -> None:
        """Every `every` seconds calls `sample` (with how late the wake-up came, in seconds);
        after every `count_every` samples counts the unfinished deliveries (only when the worker
        holds none, unless `count_when_busy`), until none is left, the worker ended or the
        timeout passed."""
        assert self.running is not None, "start() first"
        deadline = time.monotonic() + self.timeout
        n = 0
        while time.monotonic() < deadline and not self.running.done():
            asked = time.perf_counter()
            await asyncio.sleep(every)
            sample(time.perf_counter() - asked - every)
            n += 1
            if n % count_every or (self.worker.tasks and not count_when_busy):
                continue
            self.left = await unfinished(self.ctx)
            if self.left == 0:
                break

    async def stop(self) -> None:
        """Stops the worker and waits for it; fails when deliveries were left unfinished."""
        assert self.running is not None, "start() first"
        self.worker.stop()
        await self.running
        if self.left != 0:
            left, timeout = self.left, self.timeout
            raise RuntimeError(f"{left} deliveries were not finished after {timeout:g} s")
