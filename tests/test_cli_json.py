"""`--json` on every command: usage errors as JSON too, and `serve`/`worker` in JSON."""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.asgi_server import free_port
from tests.test_cli import SOKU, Soku, soku_env

START_TIMEOUT = 45


@pytest.fixture
def soku(tmp_path: Path) -> Soku:
    return Soku(soku_env(SOKU_DATA_DIR=str(tmp_path / "data")))


USAGE_ERRORS = [
    (
        ("users", "create", "--email", "y@example.com", "--subscription", "bogus"),
        "soku users create",
        "Invalid value for '--subscription': 'bogus' is not one of 'active', 'trialing', "
        "'past_due', 'canceled', 'none'.",
    ),
    (("users", "create"), "soku users create", "Missing option '--email'."),
    (("accounts", "list", "--email", "a@b.c", "--nope"), "soku accounts list", "No such option"),
    (("bogus",), "soku", "No such command 'bogus'."),
    (("serve", "--port", "0"), "soku serve", "Invalid value for '--port'"),
    (("worker", "--concurrency", "0"), "soku worker", "Invalid value for '--concurrency'"),
]


@pytest.mark.parametrize(("args", "command", "message"), USAGE_ERRORS)
def test_a_usage_error_with_json_is_a_json_error(
    soku: Soku, args: tuple[str, ...], command: str, message: str
) -> None:
    result = soku.run(*args, "--json")
    assert result.code == 2, result
    assert result.err == ""
    assert result.json == {
        "error": {
            "code": "usage_error",
            "message": result.json["error"]["message"],
            "details": {"command": command},
        }
    }
    assert result.json["error"]["message"].startswith(message)


def test_a_usage_error_without_json_stays_as_typer_shows_it(soku: Soku) -> None:
    result = soku.run("users", "create", "--email", "y@example.com", "--subscription", "bogus")
    assert result.code == 2, result
    assert result.out == ""
    assert "Usage: soku users create" in result.err


@pytest.mark.parametrize(
    "args",
    [
        ("db", "upgrade"),
        ("serve", "--port", "1", "--no-worker"),
        ("worker", "--concurrency", "1"),
        ("users", "set-plan", "--email", "a@b.c", "--plan", "admin"),
        ("keys", "list", "--email", "a@b.c"),
    ],
)
def test_every_command_takes_json(soku: Soku, args: tuple[str, ...]) -> None:
    """No command answers `No such option: --json`: each one gets as far as its own check
    (here a configuration problem, so that the long-running ones stop at once)."""
    soku.env["SOKU_LOG_LEVEL"] = "loud"
    result = soku.run(*args, "--json")
    assert result.code == 2, result
    assert result.json["error"]["code"] == "invalid_configuration"
    assert result.json["error"]["details"]["problems"] == [
        "SOKU_LOG_LEVEL: Input should be 'debug', 'info', 'warning' or 'error'"
    ]


def test_serve_on_a_port_that_is_taken_with_json(soku: Soku) -> None:
    soku.env["SOKU_LOG_FORMAT"] = "console"  # --json wins over it
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = soku.run("serve", "--port", str(port), "--no-worker", "--json")
    assert result.code == 3, result
    assert result.json == {
        "error": {
            "code": "cannot_serve",
            "message": f"Could not serve on http://127.0.0.1:{port}: Address already in use.",
            "details": {},
        }
    }
    assert result.err == ""  # the port is bound before anything starts or logs


def _json_lines_until(process: subprocess.Popen[str], event: str) -> list[dict[str, object]]:
    """stderr's lines, each parsed as JSON, up to the first line of this event. A thread
    reads them, so a process that hangs without writing fails the test at the deadline."""
    stderr = process.stderr
    assert stderr is not None
    arriving: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stderr:
            arriving.put(line)
        arriving.put("")  # the end: the process closed its stderr

    threading.Thread(target=pump, daemon=True).start()
    lines: list[dict[str, object]] = []
    deadline = time.monotonic() + START_TIMEOUT
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = arriving.get(timeout=left)
        except queue.Empty:
            break
        if not line:
            pytest.fail(f"soku exited with {process.wait()} before logging {event}: {lines}")
        lines.append(json.loads(line))
        if lines[-1].get("event") == event:
            return lines
    pytest.fail(f"no {event} line within {START_TIMEOUT} s (exit {process.poll()}): {lines}")


@pytest.mark.parametrize(
    ("args", "event"),
    [(("serve",), "serving"), (("worker",), "worker_started")],
)
def test_serve_and_worker_log_json_lines_with_json(
    tmp_path: Path, args: tuple[str, ...], event: str
) -> None:
    if args == ("serve",):
        args = ("serve", "--port", str(free_port()))
    env = soku_env(SOKU_DATA_DIR=str(tmp_path), SOKU_LOG_FORMAT="console")
    process = subprocess.Popen(
        [str(SOKU), *args, "--json"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = _json_lines_until(process, event)
        assert all(line["timestamp"] for line in lines)
    finally:
        process.send_signal(signal.SIGTERM)
        out, _err = process.communicate(timeout=START_TIMEOUT)
    assert process.returncode in (0, -signal.SIGTERM)  # uvicorn passes SIGTERM on once stopped
    assert out == ""
