"""`soku serve` as a user runs it: a real server subprocess on a free loopback port.

Every server is stopped in a `finally`, every subprocess and HTTP call has a timeout, and every
test has its own SOKU_DATA_DIR (or its own PostgreSQL database).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, make_url, text

from soku.platforms import INTEGRATIONS
from tests.asgi_server import free_port
from tests.conftest import PG_URL, unavailable

SOKU = Path(sys.executable).with_name("soku")
CLI_TIMEOUT = 60
START_TIMEOUT = 45
STOP_TIMEOUT = 15
HTTP_TIMEOUT = httpx.Timeout(10.0)
REQUEST_ID = re.compile(r"^req_[0-9a-f]{24}$")
SCHEMA_TABLES = {
    "alembic_version",
    "users",
    "api_keys",
    "accounts",
    "idempotency_keys",
    "posts",
    "deliveries",
    "delivery_attempts",
}
# The page's first example: a text post, published now, to three platforms.
FIRST_EXAMPLE = {
    "post": {
        "content": {
            "text": "Just shipped a new feature. Check it out!",
            "mediaType": "text",
            "platform": ["threads", "x", "linkedin"],
        }
    }
}


def soku_env(**values: str) -> dict[str, str]:
    """The caller's environment without any SOKU_* setting, plus these ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOKU_")}
    env.update(values)
    return env


def soku_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [str(SOKU), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"soku {' '.join(args)} did not finish within {CLI_TIMEOUT} s")


def quickstart_key(env: dict[str, str]) -> str:
    done = soku_cli(env, "quickstart", "--json")
    assert done.returncode == 0, done
    key = json.loads(done.stdout)["key"]
    assert key.startswith("sk_live_")
    return str(key)


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    stderr_path: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=HTTP_TIMEOUT)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


@contextmanager
def serving(env: dict[str, str], logs: Path, host: str = "127.0.0.1") -> Iterator[Server]:
    """`soku serve --host H --port P`, up and answering /healthz; always stopped on the way
    out. Without SOKU_PUBLIC_BASE_URL in `env`, the server's public URLs (media, the sandbox
    platforms) are its own address."""
    port = free_port()
    logs.mkdir(parents=True, exist_ok=True)
    stderr_path = logs / f"serve-{port}.stderr"
    with open(logs / f"serve-{port}.stdout", "wb") as out, open(stderr_path, "wb") as err:
        process = subprocess.Popen(
            [str(SOKU), "serve", "--host", host, "--port", str(port)],
            env=env,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    server = Server(f"http://127.0.0.1:{port}", process, stderr_path)
    try:
        _wait_until_up(server)
        yield server
    finally:
        _stop(process)


def _wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(base_url=server.base_url, timeout=httpx.Timeout(2.0)) as http:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                pytest.fail(
                    f"soku serve exited with {server.process.returncode}:\n{server.stderr()}"
                )
            try:
                if http.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    pytest.fail(f"soku serve did not answer /healthz within {START_TIMEOUT} s:\n{server.stderr()}")


def json_lines(stderr: str) -> list[dict[str, Any]]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"a stderr line of soku serve is not JSON: {line!r}")
        assert isinstance(record, dict), line
        parsed.append(record)
    return parsed


# --- SQLite (the embedded shape) --------------------------------------------------------


def test_quickstart_then_serve_publishes_the_first_example(tmp_path: Path) -> None:
    env = soku_env(SOKU_DATA_DIR=str(tmp_path / "data"))
    key = quickstart_key(env)
    headers = {"soku-api-key": key}

    with serving(env, tmp_path / "logs") as server, server.client() as http:
        health = http.get("/healthz")
        assert health.status_code == 200, health.text
        assert health.json() == {"status": "ok"}
        ready = http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "ready"}

        created = http.post("/v1/posts", json=FIRST_EXAMPLE, headers=headers)
        assert created.status_code == 201, created.text
        post_id = created.json()["postSubmissionId"]
        uuid.UUID(post_id)
        request_id = created.headers.get("X-Request-Id", "")
        assert REQUEST_ID.match(request_id), created.headers

        shown = http.get(f"/v1/posts/{post_id}", headers=headers)
        assert shown.status_code == 200, shown.text
        assert shown.headers.get("X-Request-Id")
        assert shown.headers["X-Request-Id"] != request_id
        post = shown.json()
        assert post["postSubmissionId"] == post_id
        deliveries = post["deliveries"]
        assert len(deliveries) == 3
        assert sorted((d["platform"], d["accountId"]) for d in deliveries) == [
            ("linkedin", "li_main"),
            ("threads", "threads_main"),
            ("x", "x_main"),
        ]
        published = wait_for_status(http, post_id, headers)
        for delivery in published["deliveries"]:
            platform = delivery["platform"]
            # a platform with a fake of its own is published to through its real connector
            fake = platform if platform in INTEGRATIONS else "generic"
            assert delivery["url"].startswith(f"{server.base_url}/sandbox/{fake}/"), delivery
            page = http.get(delivery["url"].removeprefix(server.base_url))
            assert page.status_code == 200, page.text
            assert "Just shipped a new feature." in page.text
            seen = http.get(f"/sandbox/{fake}/_inspect/posts").json()["posts"]
            if fake == "generic":
                seen = [p for p in seen if p["platform"] == platform]
            assert [p["id"] for p in seen] == [delivery["platformPostId"]], seen

    records = json_lines(server.stderr())  # read once the server has stopped (all flushed)
    assert records, "soku serve logged nothing"
    mine = [r for r in records if r.get("request_id") == request_id]
    assert mine, records
    assert any(r.get("path") == "/v1/posts" and r.get("status") == 201 for r in mine), mine
    # one line per delivery attempt, carrying the creating request's id and the other ids
    attempts = [r for r in mine if r.get("event") == "delivery_finished"]
    assert sorted(r["platform"] for r in attempts) == ["linkedin", "threads", "x"], mine
    assert {r["post_id"] for r in attempts} == {post_id}
    assert {r["delivery_id"] for r in attempts} == {d["id"] for d in published["deliveries"]}
    assert {r["outcome"] for r in attempts} == {"published"}
    assert key not in server.stderr()


def wait_for_status(
    http: httpx.Client, post_id: str, headers: dict[str, str], status: str = "published"
) -> dict[str, Any]:
    """The post once its status is `status` (published unless told), within 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        post: dict[str, Any] = http.get(f"/v1/posts/{post_id}", headers=headers).json()
        if post["status"] == status:
            return post
        time.sleep(0.1)
    pytest.fail(f"post {post_id} was not {status} within 30 s: {post}")


def test_serve_upgrades_a_fresh_sqlite_database_by_itself(tmp_path: Path) -> None:
    data_dir = tmp_path / "never-used"
    env = soku_env(SOKU_DATA_DIR=str(data_dir))
    assert not data_dir.exists()

    with serving(env, tmp_path / "logs") as server, server.client() as http:
        ready = http.get("/readyz")
        assert ready.status_code == 200, ready.text
        # The schema is there: an unknown key is looked up and refused, not a crash.
        refused = http.get("/v1/posts", headers={"soku-api-key": "sk_live_unknown"})
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["message"] == "Invalid API key"

        conn = sqlite3.connect(data_dir / "soku.db", timeout=10)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            versions = list(conn.execute("SELECT version_num FROM alembic_version"))
        finally:
            conn.close()
    assert tables >= SCHEMA_TABLES
    assert len(versions) == 1


def test_serve_says_where_it_listens_once_it_does(tmp_path: Path) -> None:
    env = soku_env(SOKU_DATA_DIR=str(tmp_path / "data"))
    with serving(env, tmp_path / "logs") as server:
        served = [r for r in json_lines(server.stderr()) if r.get("event") == "serving"]
    assert len(served) == 1, server.stderr()
    assert served[0]["url"] == server.base_url
    assert served[0]["docs"] == f"{server.base_url}/docs"
    assert served[0]["worker"] is True


def test_serve_on_a_port_that_is_taken_exits_3_without_saying_it_serves(tmp_path: Path) -> None:
    env = soku_env(SOKU_DATA_DIR=str(tmp_path / "data"), SOKU_LOG_FORMAT="json")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = soku_cli(env, "serve", "--port", port)  # with its worker, the default
    assert done.returncode == 3, done
    assert f"cannot_serve: Could not serve on http://127.0.0.1:{port}" in done.stderr
    assert "address already in use" in done.stderr.lower()
    assert "Traceback" not in done.stderr
    assert '"serving"' not in done.stderr
    assert "worker_started" not in done.stderr  # bound first: nothing was claimed


def test_two_servers_with_two_data_dirs_share_nothing(tmp_path: Path) -> None:
    env_a = soku_env(SOKU_DATA_DIR=str(tmp_path / "a"))
    env_b = soku_env(SOKU_DATA_DIR=str(tmp_path / "b"))
    key_a = quickstart_key(env_a)
    key_b = quickstart_key(env_b)
    assert key_a != key_b

    with (
        serving(env_a, tmp_path / "logs") as server_a,
        serving(env_b, tmp_path / "logs") as server_b,
        server_a.client() as http_a,
        server_b.client() as http_b,
    ):
        assert server_a.base_url != server_b.base_url
        created = http_a.post("/v1/posts", json=FIRST_EXAMPLE, headers={"soku-api-key": key_a})
        assert created.status_code == 201, created.text

        for http, key in ((http_a, key_a), (http_b, key_b)):
            own = http.get("/v1/posts", headers={"soku-api-key": key})
            assert own.status_code == 200, own.text
        assert len(http_a.get("/v1/posts", headers={"soku-api-key": key_a}).json()["data"]) == 1
        assert http_b.get("/v1/posts", headers={"soku-api-key": key_b}).json()["data"] == []

        for http, foreign in ((http_b, key_a), (http_a, key_b)):
            refused = http.get("/v1/posts", headers={"soku-api-key": foreign})
            assert refused.status_code == 401, refused.text
            error = refused.json()["error"]
            assert error["code"] == "unauthorized"
            assert error["message"] == "Invalid API key"
    assert (tmp_path / "a" / "secret_key").read_text() != (
        tmp_path / "b" / "secret_key"
    ).read_text()


# --- PostgreSQL -------------------------------------------------------------------------


def _admin(sql: str) -> None:
    url = make_url(PG_URL).set(drivername="postgresql+psycopg")
    engine = create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


@pytest.fixture
def pg_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a server on a fresh, empty PostgreSQL database (dropped afterwards)."""
    name = f"soku_serve_{secrets.token_hex(4)}"
    try:
        _admin(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        unavailable("PostgreSQL", exc)
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield soku_env(
            SOKU_DATA_DIR=str(tmp_path / "data"),
            SOKU_DATABASE_URL=url,
            SOKU_SECRET_KEY="serve-test-" + secrets.token_hex(8),
        )
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_serve_refuses_a_postgresql_database_that_was_not_upgraded(
    pg_env: dict[str, str],
) -> None:
    started = time.monotonic()
    done = soku_cli(pg_env, "serve", "--port", str(free_port()))
    assert done.returncode != 0, done
    assert "run `soku db upgrade`" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr
    assert time.monotonic() - started < CLI_TIMEOUT


def test_serve_on_an_upgraded_postgresql_database(pg_env: dict[str, str], tmp_path: Path) -> None:
    upgraded = soku_cli(pg_env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded
    key = quickstart_key(pg_env)

    with serving(pg_env, tmp_path / "logs") as server, server.client() as http:
        assert http.get("/readyz").status_code == 200
        headers = {"soku-api-key": key}
        created = http.post("/v1/posts", json=FIRST_EXAMPLE, headers=headers)
        assert created.status_code == 201, created.text
        post_id = created.json()["postSubmissionId"]
        shown = http.get(f"/v1/posts/{post_id}", headers=headers)
        assert shown.status_code == 200, shown.text
        assert len(shown.json()["deliveries"]) == 3
    assert not list((tmp_path / "data").glob("soku.db*"))
