"""The benchmarks of bench/ still run: each script, small, as a user runs it (`--json`).

They measure on demand, not in the test command, so nothing else would notice when a change
breaks one. Each run here checks what the script itself calls a failure (exit status 1, "ok"
false: a delivery not published, a request answered with an error) and the summary's shape.
The targets are not checked: a run this small says nothing about them.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import PG_URL, unavailable

BENCH = Path(__file__).resolve().parent.parent / "bench"
RUN_SECONDS = 240


def bench(script: str, *args: str) -> dict[str, Any]:
    """`script` with `args` and --json, without this environment's SOKU_* settings; its
    summary. Fails with the script's output unless it exits with status 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOKU_")}
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=RUN_SECONDS,
        check=False,
    )
    output = f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert done.returncode == 0, f"{script} exited with {done.returncode}:\n{output}"
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


@pytest.fixture
async def postgres() -> str:
    """The test server's URL; the scripts make (and drop) a database of their own on it."""
    engine = create_async_engine(PG_URL)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        unavailable("PostgreSQL", exc)
    finally:
        await engine.dispose()
    return PG_URL


async def server_on_this_machine() -> bool:
    """Whether /proc shows the test server's processes (then the scripts read its CPU)."""
    engine = create_async_engine(PG_URL)
    try:
        async with engine.connect() as conn:
            backend = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            return await asyncio.to_thread(Path(f"/proc/{backend}/stat").exists)
    finally:
        await engine.dispose()


def assert_all_published(summary: dict[str, Any], deliveries: int) -> None:
    assert summary["ok"] is True
    assert summary["deliveries"] == deliveries
    assert summary["statuses"] == {"published": deliveries}
    assert summary["attempt_outcomes"] == {"published": deliveries}
    assert summary.get("attempt_errors", []) == []  # the burst's: the errors met, none here
    lateness = summary["publish_lateness_s"]
    assert 0 <= lateness["p50"] <= lateness["p99"] <= lateness["max"]


def test_burst_on_sqlite_publishes_every_delivery() -> None:
    summary = bench("burst.py", "--deliveries", "80", "--lead", "1")
    assert summary["database"] == "sqlite"
    assert summary["processes"] is None
    assert_all_published(summary, 80)
    # sampled every 0.1 s: 80 deliveries can all go out between two samples on a fast machine
    assert 0 <= summary["in_flight"]["max"] <= summary["concurrency"]
    threads = summary["thread_cores"]  # the worker's CPU by thread: the loop, which also writes
    assert threads["MainThread"] > 0  # (the writer thread only checkpoints: it may read 0)
    assert threads.get("soku-sqlite-writer", 0.0) < threads["MainThread"]
    assert "database" not in summary["cpu_cores"]  # SQLite: no server to read
    collected = summary["gc"]  # the worker's garbage collections during the burst
    assert set(collected["collections"]) <= {"0", "1", "2"}
    assert all(n > 0 for n in collected["collections"].values())
    assert (collected["seconds"] > 0) == bool(collected["collections"])


def test_burst_lists_the_errors_met_most_frequent_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))  # as the script runs: its neighbours importable
    burst = importlib.import_module("burst")
    timeout = {"code": "timeout", "message": "No answer within 20 s.", "retryable": True}
    limited = {"code": "rate_limited", "message": "Slow down.", "retryable": True}
    assert burst._errors([limited, timeout, timeout]) == [
        {"code": "timeout", "message": "No answer within 20 s.", "count": 2},
        {"code": "rate_limited", "message": "Slow down.", "count": 1},
    ]
    assert burst._errors([]) == []


def test_burst_by_two_worker_processes_on_postgresql(postgres: str) -> None:
    args = ("--deliveries", "80", "--lead", "1", "--processes", "2")
    summary = bench("burst.py", *args, "--database-url", postgres)
    assert summary["database"] == "postgresql"
    assert summary["processes"] == 2
    assert_all_published(summary, 80)
    assert summary["exit_statuses"] == [0, 0]  # both drained and stopped on SIGTERM
    assert summary["cpu_cores"]["worker"] > 0
    # a server on this machine: its processes' CPU is read too (/proc); the clock ticks in
    # 10 ms, so this short burst may show none, but the reading is there. Elsewhere: none.
    if asyncio.run(server_on_this_machine()):
        assert summary["cpu_cores"]["database"] >= 0
    else:
        assert "database" not in summary["cpu_cores"]


def test_burst_refuses_worker_processes_on_sqlite() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "burst.py"), "--processes", "2"],
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )
    assert done.returncode == 2
    assert "--processes needs a PostgreSQL --database-url" in done.stderr


def test_overlap_publishes_and_samples_what_is_in_flight() -> None:
    summary = bench("overlap.py", "--deliveries", "60", "--latency-ms", "200")
    assert summary["ok"] is True
    assert summary["outcomes"] == {"published": summary["deliveries"]}
    assert summary["samples"] >= 1
    assert 1 <= summary["http"]["max"] <= summary["deliveries"]


def test_delivery_efficiency_compares_with_the_bare_client() -> None:
    summary = bench("delivery_efficiency.py", "--deliveries", "80", "--rounds", "1")
    assert summary["ok"] is True
    assert summary["ratio"] > 0
    # the worker's warm-up round, not counted, delivered its own posts
    assert (
        summary["warmup"]["outcomes"]
        == {"published": summary["warmup"]["deliveries"]}
        == {"published": 80}
    )


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_claim_cost_reads_the_due_index(database: str, request: pytest.FixtureRequest) -> None:
    args = ["--small", "100", "--large", "1000", "--samples", "5", "--min-samples", "3"]
    args += ["--budget", "1", "--warmup", "1"]
    if database == "postgresql":
        args += ["--database-url", request.getfixturevalue("postgres")]
    summary = bench("claim_cost.py", *args)
    assert summary["database"] == database
    assert set(summary["stages"]) == {"100", "1000"}
    for stage in summary["stages"].values():
        assert stage["queries"]["claim"]["samples"] >= 3
        assert any("ix_deliveries_due_platform" in line for line in stage["plan"])


def test_accept_answers_every_request() -> None:
    summary = bench("accept.py", "--duration", "1", "--warmup", "0.5")
    assert summary["ok"] is True, summary["problems"]
    assert summary["post"]["statuses"] == {"201": summary["post"]["requests"]}
    assert summary["post"]["requests"] > 0
    assert summary["post"]["non_2xx"] == 0


def test_media_memory_relays_a_file() -> None:
    summary = bench("media_memory.py", "--size-mb", "8")
    local = [run for run in summary["runs"] if run["name"] == "local folder"]
    assert local and local[0]["passed"] is True
