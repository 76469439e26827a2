"""`soku worker --metrics-port`: a worker process's own /metrics, /healthz and /readyz."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.test_serve import SOKU, START_TIMEOUT, STOP_TIMEOUT, json_lines, soku_cli, soku_env


def _metrics_url(stderr: Path, process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        text = stderr.read_text(errors="replace")
        for line in (line for line in text.splitlines() if line.startswith("{")):
            record = json.loads(line)
            if record.get("event") == "worker_probes":
                return str(record["metrics"])
        time.sleep(0.1)
    pytest.fail(f"soku worker did not log worker_probes:\n{stderr.read_text()}")


def test_a_worker_serves_metrics_and_probes_on_its_own_port(tmp_path: Path) -> None:
    env = soku_env(SOKU_DATA_DIR=str(tmp_path / "data"), SOKU_LOG_FORMAT="json")
    stderr = tmp_path / "worker.stderr"
    with open(stderr, "wb") as err:
        process = subprocess.Popen(
            [str(SOKU), "worker", "--metrics-port", "0"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    try:
        url = _metrics_url(stderr, process)
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics"), url
        metrics = httpx.get(url, timeout=10)
        assert metrics.status_code == 200
        assert "soku_queue_due 0.0" in metrics.text
        assert "# TYPE soku_deliveries_total counter" in metrics.text
        base = url.removesuffix("/metrics")
        assert httpx.get(f"{base}/readyz", timeout=10).json() == {"status": "ready"}
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")  # uvicorn logs a warning: JSON too
            raw.recv(1024)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STOP_TIMEOUT) == 0
    records = json_lines(stderr.read_text())  # every line JSON, uvicorn's own included
    events = [r["event"] for r in records]
    assert events.index("worker_probes") < events.index("worker_stopped")
    assert any("Invalid HTTP request" in event for event in events), events


def test_a_taken_metrics_port_stops_the_worker_before_it_starts(tmp_path: Path) -> None:
    env = soku_env(SOKU_DATA_DIR=str(tmp_path / "data"), SOKU_LOG_FORMAT="json")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = soku_cli(env, "worker", "--metrics-port", str(port), "--json")
    assert done.returncode == 3, done
    error = json.loads(done.stdout)["error"]
    assert error["code"] == "cannot_serve"
    assert f"127.0.0.1:{port}" in error["message"]
    assert "worker_started" not in done.stderr  # nothing was claimed
