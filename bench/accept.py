"""Accept throughput: POST /v1/posts versus the no-op GET /healthz, same load, same server.

Run: .venv/bin/python bench/accept.py [--duration 10] [--concurrency 32] [--json]
     [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]
See bench/README.md for how to read the output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import procstat  # no soku: the load generator runs this file too

PLATFORMS = ["threads", "x", "linkedin"]
EMAIL = "bench@soku.local"
TARGET = 0.5
PHASES = {
    "noop": "GET /healthz", "check": "POST .../validate", "post": "POST /v1/posts",
    "read": "GET /v1/posts/ID",
}  # fmt: skip
WANTED = {"noop": "200", "check": "200", "post": "201", "read": "200"}
COLUMNS = {  # result key: column title (CPU and wait in cores: 1.00 = one core busy)
    "rps": "req/s", "p50_ms": "p50 ms", "p99_ms": "p99 ms", "non_2xx": "non-2xx",
    "server_cpu_cores": "srv CPU", "server_cpu_ms_per_req": "CPU ms/req",
    "server_runqueue_wait_cores": "srv wait", "generator_cpu_cores": "gen CPU",
}  # fmt: skip
Server = subprocess.Popen[bytes]


# ---- load generator: its own process, asyncio streams, one keep-alive connection per worker --


def _cpu_marks(pid: int) -> tuple[float, float, float]:
    """(server CPU s from utime+stime, server run-queue wait s over all threads, our CPU s)."""
    return procstat.proc_cpu(pid), procstat.runqueue_wait(pid), time.process_time()


def _request(cfg: dict[str, Any], run: str, worker: int, n: int) -> bytes:
    host = f"Host: 127.0.0.1:{cfg['port']}\r\n"
    if cfg["phase"] == "noop":
        return f"GET /healthz HTTP/1.1\r\n{host}\r\n".encode()
    if cfg["phase"] == "read":
        path = f"/v1/posts/{cfg['post_id']}"
        return f"GET {path} HTTP/1.1\r\n{host}soku-api-key: {cfg['key']}\r\n\r\n".encode()
    text = f"bench {run} {worker}-{n}: accept throughput"
    body = json.dumps({"post": {"content": {"text": text, "platform": PLATFORMS}}}).encode()
    path = "/v1/posts/validate" if cfg["phase"] == "check" else "/v1/posts"
    head = (
        f"POST {path} HTTP/1.1\r\n{host}soku-api-key: {cfg['key']}\r\n"
        f"Content-Type: application/json\r\nIdempotency-Key: bench-{run}-{worker}-{n}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _response(reader: asyncio.StreamReader) -> str:
    lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
    status = lines[0].split(b" ", 2)[1].decode()
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        raise ValueError("response without Content-Length")
    await reader.readexactly(length)
    return status


async def _load(cfg: dict[str, Any]) -> dict[str, Any]:
    run = secrets.token_hex(4)
    window_start = time.perf_counter() + cfg["warmup"]
    end = window_start + cfg["duration"]
    latencies: list[float] = []
    window: Counter[str] = Counter()
    every: Counter[str] = Counter()  # warm-up and the tail included: no error hides
    marks: list[tuple[float, float, float]] = []

    async def worker(w: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", cfg["port"])
        n = 0
        try:
            while (t0 := time.perf_counter()) < end:
                try:
                    writer.write(_request(cfg, run, w, n))
                    status = await _response(reader)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    status = f"error:{type(exc).__name__}"
                    writer.close()
                    try:
                        reader, writer = await asyncio.open_connection("127.0.0.1", cfg["port"])
                    except OSError:
                        every[status] += 1
                        return  # the server is gone: the driver reports it
                n += 1
                t1 = time.perf_counter()
                every[status] += 1
                if window_start <= t1 <= end:
                    latencies.append(t1 - t0)
                    window[status] += 1
        finally:
            writer.close()

    async def marker() -> None:
        for at in (window_start, end):
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            marks.append(_cpu_marks(cfg["server_pid"]))

    await asyncio.gather(marker(), *(worker(i) for i in range(cfg["concurrency"])))
    latencies.sort()
    n, secs = len(latencies), cfg["duration"]
    cpu, wait, gen = (end_ - start for start, end_ in zip(*marks, strict=True))
    r: dict[str, Any] = {"rps": n / secs, "requests": n, "statuses": dict(window)}
    r["p50_ms"], r["p99_ms"] = ((latencies[int(q * n)] * 1000 if n else None) for q in (0.5, 0.99))
    r.update(all_statuses=dict(every), server_cpu_ms_per_req=cpu * 1000 / n if n else None)
    r["non_2xx"] = sum(v for k, v in every.items() if not k.startswith("2"))  # warm-up included
    r.update(server_cpu_cores=cpu / secs, server_runqueue_wait_cores=max(0.0, wait) / secs)
    return {**r, "generator_cpu_cores": gen / secs}


def _generate(cfg: dict[str, Any]) -> None:
    try:
        import uvloop

        result, loop = uvloop.run(_load(cfg)), "uvloop"
    except ImportError:
        result, loop = asyncio.run(_load(cfg)), "asyncio"
    print(json.dumps({**result, "loop": loop}))


# ---- the driver: data folder, user, server, phases, report ---------------------------------


async def _setup_user() -> str:
    """A user on the "unlimited" plan, its key, and sandbox accounts (settings from SOKU_*)."""
    from soku import operations
    from soku.auth.models import SubscriptionStatus
    from soku.config import Settings
    from soku.db import Database

    settings = Settings()
    db = Database(settings.database_url, pool_size=1)
    try:
        await operations.prepare_schema(db, settings)
        async with db.transaction() as s:
            await operations.create_user(s, settings, EMAIL, SubscriptionStatus.active, "unlimited")
            key = str((await operations.create_key(s, EMAIL, "bench"))["key"])
            for p in PLATFORMS:
                await operations.connect_account(
                    s, settings, EMAIL, p, f"{p}_bench", True, None, None
                )
        return key
    finally:
        await db.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(server: Server, port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not answer /healthz in time")


def _first_post(port: int, key: str) -> str:
    """One post (three deliveries) for the read phase to fetch again and again."""
    body = {"post": {"content": {"text": "bench: read back", "platform": PLATFORMS}}}
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/posts",
        data=json.dumps(body).encode(),
        headers={"soku-api-key": key, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return str(json.load(answer)["postSubmissionId"])


def _phase(args: argparse.Namespace, phase: str, port: int, key: str, server: Server) -> Any:
    cfg = {**vars(args), "phase": phase, "port": port, "key": key, "server_pid": server.pid}
    if phase == "read":
        cfg["post_id"] = _first_post(port, key)
    cmd = [sys.executable, __file__, "--_generate"]  # the config (with the key) goes on stdin
    limit = args.duration + args.warmup + 120
    out = subprocess.run(cmd, input=json.dumps(cfg), capture_output=True, text=True, timeout=limit)
    if server.poll() is not None:
        raise RuntimeError(f"the server exited with code {server.returncode} during {phase}")
    if out.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout)


def _limit(r: dict[str, Any]) -> str:
    if r["generator_cpu_cores"] >= 0.9:
        return "the load generator's CPU (figure understates the server)"
    if r["server_cpu_cores"] + r["server_runqueue_wait_cores"] >= 0.9:
        return "the server's CPU (one process: ~1 core at most)"
    return "neither CPU: waiting (database locks, I/O, too little concurrency)"


def _cell(v: float | None) -> str:
    return f"{'-' if v is None else f'{v:.0f}' if isinstance(v, int) else f'{v:.2f}':>11}"


def _report(s: dict[str, Any]) -> None:
    gen = f"1 process, asyncio streams + {s['noop']['loop']}, HTTP/1.1 keep-alive"
    serve = "serve --worker" if s["worker"] else "serve --no-worker"
    print(
        f"Soku accept benchmark: {s['database']}, soku {serve}, concurrency {s['concurrency']}, "
        f"{s['duration']:g} s per phase after {s['warmup']:g} s warm-up; generator: {gen}"
    )
    if s["inherited_env"]:
        print(f"inherited settings: {s['inherited_env']}")
    print(f"{'phase':<16}" + "".join(f"{c:>11}" for c in COLUMNS.values()))
    for phase, label in PHASES.items():
        print(f"{label:<16}" + "".join(_cell(s[phase][k]) for k in COLUMNS))
    for phase, label in PHASES.items():
        limit = _limit(s[phase])
        print(f"{label}: statuses {s[phase]['all_statuses']}; limited by {limit}")
    verdict = "PASS" if s["passed"] else "BELOW TARGET"
    print(
        f"ratio POST/no-op throughput: {s['ratio']:.3f} (target >= {TARGET} on SQLite): {verdict}"
    )
    print(
        f"for reference, not in the verdict: validate/no-op {s['check_ratio']:.3f} (the same "
        f"request and checks, nothing written), POST/validate {s['write_ratio']:.3f}, "
        f"GET post/no-op {s['read_ratio']:.3f} (a post and its three deliveries read back)"
    )
    if not s["ok"]:
        print("FAILED: " + "; ".join(s["problems"]))


def _run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import common  # not at the top: the load generator runs this file too, without soku

    os.environ.update(SOKU_DATA_DIR=str(tmp / "data"), SOKU_LOG_LEVEL="warning")
    mine = {"SOKU_DATA_DIR", "SOKU_LOG_LEVEL", "SOKU_DATABASE_URL", "SOKU_SECRET_KEY"}
    inherited = common.inherited(exclude=mine)
    os.environ.pop("SOKU_DATABASE_URL", None)
    if args.database_url:
        os.environ["SOKU_DATABASE_URL"] = args.database_url
        os.environ.setdefault("SOKU_SECRET_KEY", secrets.token_urlsafe(32))
    postgres = common.is_postgres(args.database_url)
    if postgres:
        upgrade = [*common.soku_command(), "db", "upgrade"]
        up = subprocess.run(upgrade, capture_output=True, text=True)
        if up.returncode != 0:
            raise RuntimeError(f"soku db upgrade failed:\n{up.stderr[-2000:]}")
    key = asyncio.run(_setup_user())
    port, log = _free_port(), (tmp / "server.log").open("wb")
    cmd = [*common.soku_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd.append("--worker" if args.worker else "--no-worker")
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(server, port)
        results = {p: _phase(args, p, port, key, server) for p in PHASES}
    except Exception:
        log.flush()
        sys.stderr.write((tmp / "server.log").read_text()[-3000:])
        raise
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    problems = [
        f"{PHASES[p]} answered {k} x{v}"
        for p, want in WANTED.items()
        for k, v in results[p]["all_statuses"].items()
        if k != want
    ]
    rps = {p: results[p]["rps"] for p in PHASES}
    ratio = rps["post"] / rps["noop"] if rps["noop"] else 0.0
    summary = {k: getattr(args, k) for k in ("concurrency", "duration", "warmup", "worker")}
    summary["database"] = "postgresql" if postgres else "sqlite"
    summary.update(inherited_env=inherited, ratio=ratio, target=TARGET, passed=ratio >= TARGET)
    summary["check_ratio"] = rps["check"] / rps["noop"] if rps["noop"] else 0.0
    summary["write_ratio"] = rps["post"] / rps["check"] if rps["check"] else 0.0
    summary["read_ratio"] = rps["read"] / rps["noop"] if rps["noop"] else 0.0
    return {**summary, **results, "ok": not problems, "problems": problems}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per phase")
    parser.add_argument("--concurrency", type=int, default=32, help="connections (one each)")
    db_help = "postgresql+asyncpg://user@host:port/any: runs on a fresh soku_bench_* database"
    parser.add_argument("--database-url", help=db_help)
    parser.add_argument("--json", action="store_true", help="print a JSON summary only")
    worker_help = "also run the delivery worker in the server (default: serve --no-worker)"
    parser.add_argument("--worker", action="store_true", help=worker_help)
    parser.add_argument("--_generate", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._generate:
        _generate(json.load(sys.stdin))
        return 0
    import common  # only here: the load generator (above) does not load soku

    return common.run(args, _run, _report)


if __name__ == "__main__":
    sys.exit(main())
