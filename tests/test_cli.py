"""The operator CLI, run as a user runs it: one real `soku` subprocess per command.

Every test has its own SOKU_DATA_DIR (and, on PostgreSQL, its own database), so nothing is
shared between tests. Rich wraps stderr at 80 columns when it is not a terminal, so messages
are compared with their whitespace collapsed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text

from soku.integrations.vault import TokenVault
from tests.conftest import ALL_PLATFORMS, PG_URL, unavailable

SOKU = Path(sys.executable).with_name("soku")
TIMEOUT = 60
KEY_RE = re.compile(r"sk_live_[A-Za-z0-9_-]+")


def soku_env(**values: str) -> dict[str, str]:
    """The caller's environment without any SOKU_* setting, plus these ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOKU_")}
    env.update(values)
    return env


def flat(text_: str) -> str:
    return " ".join(text_.split())


def connect(email: str, platform: str, account_id: str, *more: str) -> tuple[str, ...]:
    """The arguments of `accounts connect` for this account; `more`: `--sandbox`, or tokens."""
    account = ("--email", email, "--platform", platform, "--account-id", account_id)
    return ("accounts", "connect", *account, *more)


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.out)
        except json.JSONDecodeError as exc:
            raise AssertionError(
                f"stdout of soku {' '.join(self.args)} is not JSON: {self}"
            ) from exc

    @property
    def message(self) -> str:
        return flat(self.err)


class Soku:
    """Runs `soku` in a subprocess with one environment."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def run(self, *args: str) -> Result:
        try:
            proc = subprocess.run(
                [str(SOKU), *args],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"soku {' '.join(args)} did not finish within {TIMEOUT} s")
        return Result(args, proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *args: str) -> Any:
        """The command with --json: exit 0 and its stdout, parsed."""
        result = self.run(*args, "--json")
        assert result.code == 0, result
        return result.json

    def fails(self, *args: str, code: str) -> dict[str, Any]:
        """The command with --json: non-zero, and stdout is a JSON error with this code."""
        result = self.run(*args, "--json")
        assert result.code != 0, result
        body = result.json
        assert set(body) == {"error"}, body
        error = body["error"]
        assert error["code"] == code, body
        assert isinstance(error["message"], str)
        assert error["message"], body
        return dict(error)

    def refuses(self, *args: str, says: str) -> Result:
        """The command without --json: non-zero, and its message (on stderr) holds `says`."""
        result = self.run(*args)
        assert result.code != 0, result
        assert says in result.message, result
        return result

    def exits(self, *args: str, status: int) -> Result:
        """The command without --json: exit `status`, and the error said without a traceback."""
        result = self.run(*args)
        assert result.code == status, result
        assert "Traceback" not in result.err
        return result


def soku_on(folder: Path, url: str, **settings: str) -> Soku:
    """`soku` with its data in `folder`, on the database at `url`, with these other settings."""
    return Soku(soku_env(SOKU_DATA_DIR=str(folder), SOKU_DATABASE_URL=url, **settings))


def db_bytes(data_dir: Path) -> bytes:
    """Every byte SQLite keeps for the service (the database and any WAL left behind)."""
    files = sorted(data_dir.glob("soku.db*"))
    assert files, f"no SQLite file in {data_dir}"
    return b"".join(p.read_bytes() for p in files)


def sqlite_rows(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(data_dir / "soku.db")
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def soku(data_dir: Path) -> Soku:
    return Soku(soku_env(SOKU_DATA_DIR=str(data_dir)))


@pytest.fixture
def user(soku: Soku) -> str:
    email = "ada@example.test"
    soku.ok("users", "create", "--email", email)
    return email


# --- users ------------------------------------------------------------------------------


def test_users_create_json_fields(soku: Soku) -> None:
    created = soku.ok(
        "users",
        "create",
        "--email",
        "Ada@Example.test",
        "--subscription",
        "trialing",
        "--plan",
        "admin",
    )
    assert set(created) == {"id", "email", "subscription", "plan"}
    uuid.UUID(created["id"])
    assert created["email"] == "ada@example.test"
    assert created["subscription"] == "trialing"
    assert created["plan"] == "admin"


def test_users_create_defaults(soku: Soku) -> None:
    created = soku.ok("users", "create", "--email", "bob@example.test")
    assert created["subscription"] == "active"
    assert created["plan"] == "standard"


def test_users_create_without_json_prints_a_table(soku: Soku) -> None:
    result = soku.run("users", "create", "--email", "bob@example.test")
    assert result.code == 0, result
    assert "bob@example.test" in result.out
    assert "standard" in result.out


def test_users_create_duplicate_email(soku: Soku, user: str) -> None:
    error = soku.fails("users", "create", "--email", user.upper(), code="conflict")
    assert error["message"] == f"User {user} exists already."

    says = f"conflict: User {user} exists already."
    assert soku.refuses("users", "create", "--email", user, says=says).out == ""


def test_users_create_bad_email(soku: Soku) -> None:
    for email in ("not-an-email", "@example.test", "ada@", "a b@example.test"):
        error = soku.fails("users", "create", "--email", email, code="validation_error")
        assert error["details"]["field"] == "email"
        assert error["message"] == f"{email!r} is not an email address."

    says = "validation_error: 'not-an-email' is not an email address."
    assert soku.refuses("users", "create", "--email", "not-an-email", says=says).out == ""


def test_users_create_unknown_plan(soku: Soku) -> None:
    args = ("users", "create", "--email", "bob@example.test", "--plan", "gold")
    error = soku.fails(*args, code="validation_error")
    assert error["details"]["field"] == "plan"
    assert error["details"]["reason"] == "unknown_plan"
    assert "'gold'" in error["message"]
    assert "unlimited" in error["message"]
    soku.refuses(*args, says="Unknown plan 'gold'")
    # Nothing was created: the same email goes through with a known plan.
    assert soku.ok("users", "create", "--email", "bob@example.test")["plan"] == "standard"


def test_users_create_unknown_subscription_is_a_usage_error(soku: Soku) -> None:
    result = soku.run("users", "create", "--email", "bob@example.test", "--subscription", "gold")
    assert result.code == 2, result
    assert "--subscription" in result.message


def test_users_set_subscription(soku: Soku, user: str) -> None:
    for status in ("past_due", "none", "trialing"):
        updated = soku.ok("users", "set-subscription", "--email", user, "--status", status)
        assert updated["email"] == user
        assert updated["subscription"] == status
        assert updated["plan"] == "standard"
    soku.ok("users", "set-subscription", "--email", user, "--status", "canceled")
    # Stored: the next command sees it.
    assert soku.ok("users", "set-plan", "--email", user, "--plan", "admin")["subscription"] == (
        "canceled"
    )


def test_users_set_plan(soku: Soku, user: str) -> None:
    assert soku.ok("users", "set-plan", "--email", user, "--plan", "admin")["plan"] == "admin"
    updated = soku.ok("users", "set-plan", "--email", user, "--plan", "unlimited")
    assert updated["plan"] == "unlimited"
    assert updated["subscription"] == "active"

    error = soku.fails(
        "users", "set-plan", "--email", user, "--plan", "gold", code="validation_error"
    )
    assert error["details"]["field"] == "plan"
    # Unchanged by the refused update.
    after = soku.ok("users", "set-subscription", "--email", user, "--status", "active")
    assert after["plan"] == "unlimited"


def test_users_set_plan_unlimited_with_plans_that_do_not_name_it(data_dir: Path) -> None:
    # README: `unlimited` always exists, whether SOKU_RATE_LIMIT_PLANS names it or not.
    plans = json.dumps({"anonymous": ["35/minute"], "inactive": ["90/minute"], "standard": []})
    soku = Soku(soku_env(SOKU_DATA_DIR=str(data_dir), SOKU_RATE_LIMIT_PLANS=plans))
    email = "ada@example.test"
    assert soku.ok("users", "create", "--email", email, "--plan", "unlimited")["plan"] == (
        "unlimited"
    )
    assert soku.ok("users", "set-plan", "--email", email, "--plan", "unlimited")["plan"] == (
        "unlimited"
    )


def test_commands_on_a_missing_user(soku: Soku) -> None:
    ghost = "ghost@example.test"
    commands = [
        ("users", "set-subscription", "--status", "canceled"),
        ("users", "set-plan", "--plan", "unlimited"),
        ("keys", "create"),
        ("accounts", "connect", "--platform", "x", "--account-id", "x_main", "--sandbox"),
        ("accounts", "list"),
    ]
    for command in commands:
        error = soku.fails(*command, "--email", ghost, code="not_found")
        assert error["message"] == f"No user {ghost}."

    for command in commands[:2]:
        result = soku.refuses(*command, "--email", ghost, says=f"not_found: No user {ghost}.")
        assert result.out == ""


# --- keys -------------------------------------------------------------------------------


def test_keys_create_json(soku: Soku, user: str) -> None:
    issued = soku.ok("keys", "create", "--email", user, "--name", "ci")
    assert set(issued) >= {"key", "id", "prefix", "name", "createdAt", "revokedAt", "email"}
    assert issued["key"].startswith("sk_live_")
    assert len(issued["key"]) > len("sk_live_") + 30
    assert issued["key"].startswith(issued["prefix"])
    assert issued["prefix"].startswith("sk_live_")
    assert len(issued["prefix"]) < len(issued["key"])
    assert issued["name"] == "ci"
    assert issued["email"] == user
    assert issued["revokedAt"] is None
    uuid.UUID(issued["id"])
    # A fresh key every time.
    assert soku.ok("keys", "create", "--email", user)["key"] != issued["key"]


def test_keys_create_prints_the_key_once(soku: Soku, user: str) -> None:
    result = soku.run("keys", "create", "--email", user)
    assert result.code == 0, result
    key, prefix = KEY_RE.findall(result.out)  # the key, then its prefix
    assert key.startswith(prefix) and len(prefix) < len(key), result.out
    assert result.out.count(key) == 1
    assert prefix not in result.err
    assert "shown once" in flat(result.out)


def test_keys_are_stored_as_sha256_only(soku: Soku, data_dir: Path, user: str) -> None:
    from_json = soku.ok("keys", "create", "--email", user)["key"]
    plain = soku.run("keys", "create", "--email", user)
    assert plain.code == 0, plain
    from_text = KEY_RE.findall(plain.out)[0]
    from_quickstart = soku.ok("quickstart")["key"]

    stored = db_bytes(data_dir)
    hashes = {row[0] for row in sqlite_rows(data_dir, "SELECT key_hash FROM api_keys")}
    for key in (from_json, from_text, from_quickstart):
        digest = hashlib.sha256(key.encode()).hexdigest()
        assert key.encode() not in stored
        assert key[len("sk_live_") + 8 :].encode() not in stored  # not even the secret part
        assert digest.encode() in stored
        assert digest in hashes


def test_keys_revoke_by_whole_key(soku: Soku, user: str) -> None:
    issued = soku.ok("keys", "create", "--email", user)
    other = soku.ok("keys", "create", "--email", user)
    revoked = soku.ok("keys", "revoke", issued["key"])
    assert revoked["id"] == issued["id"]
    assert revoked["prefix"] == issued["prefix"]
    assert revoked["revokedAt"] is not None
    assert "key" not in revoked
    # Revoking again keeps the first revocation time.
    assert soku.ok("keys", "revoke", issued["key"])["revokedAt"] == revoked["revokedAt"]
    # The other key is untouched: revoking it now is its first revocation.
    assert soku.ok("keys", "revoke", other["prefix"])["id"] == other["id"]


def test_keys_revoke_by_prefix(soku: Soku, user: str) -> None:
    issued = soku.ok("keys", "create", "--email", user)
    result = soku.run("keys", "revoke", issued["prefix"])
    assert result.code == 0, result
    assert "Key revoked" in result.out
    revoked = soku.ok("keys", "revoke", issued["prefix"])
    assert revoked["id"] == issued["id"]
    assert revoked["revokedAt"] is not None


def test_keys_revoke_unknown(soku: Soku, user: str) -> None:
    soku.ok("keys", "create", "--email", user)
    # A key longer than a prefix is named by its prefix: the output may go to a log.
    for given, shown in (
        ("sk_live_doesnotexist0000", "sk_live_doesnote…"),
        ("sk_live_", "sk_live_"),
        ("nope", "nope"),
    ):
        error = soku.fails("keys", "revoke", given, code="not_found")
        assert error["message"] == f"No API key matches {shown!r}."
    says = "not_found: No API key matches 'sk_live_doesnote…'."
    soku.refuses("keys", "revoke", "sk_live_doesnotexist0000", says=says)


@pytest.mark.parametrize("given", ["[/red]", "[bold]abc"])
def test_error_messages_show_user_text_verbatim(soku: Soku, given: str) -> None:
    result = soku.exits("keys", "revoke", given, status=1)
    assert f"not_found: No API key matches {given!r}." in result.message


# --- accounts ---------------------------------------------------------------------------


def test_accounts_connect_sandbox_and_list(soku: Soku, user: str) -> None:
    account = soku.ok(*connect(user, "instagram", "ig_main", "--sandbox"))
    assert account.pop("platformUserId").startswith("sbx_")
    assert account == {
        "platform": "instagram",
        "accountId": "ig_main",
        "status": "connected",
        "sandbox": True,
        "username": "sandbox_ig_main",
        "warnings": [],
    }
    soku.ok(*connect(user, "x", "x_main", "--sandbox"))
    soku.ok(*connect(user, "x", "x_brand", "--sandbox"))
    listed = soku.ok("accounts", "list", "--email", user)
    assert [(a["platform"], a["accountId"]) for a in listed] == [
        ("instagram", "ig_main"),
        ("x", "x_brand"),
        ("x", "x_main"),
    ]
    assert all(a["sandbox"] and a["status"] == "connected" for a in listed)

    table = soku.run("accounts", "list", "--email", user)
    assert table.code == 0, table
    assert "ig_main" in table.out
    assert "x_brand" in table.out


def test_accounts_connect_a_real_account_with_its_platform_ids(soku: Soku, user: str) -> None:
    ids = ("--platform-user-id", "urn:li:organization:2414183", "--username", "acme")
    account = soku.ok(*connect(user, "linkedin", "li_brand", "--access-token", "AQX-token", *ids))
    assert account == {
        "platform": "linkedin",
        "accountId": "li_brand",
        "status": "connected",
        "sandbox": False,
        "username": "acme",
        "platformUserId": "urn:li:organization:2414183",
        "warnings": [],
    }
    [listed] = soku.ok("accounts", "list", "--email", user)
    assert {**listed, "warnings": []} == account


def test_accounts_list_empty(soku: Soku, user: str) -> None:
    assert soku.ok("accounts", "list", "--email", user) == []


def test_accounts_connect_unknown_platform(soku: Soku, user: str) -> None:
    args = connect(user, "myspace", "m", "--sandbox")
    error = soku.fails(*args, code="validation_error")
    assert error["details"]["field"] == "platform"
    assert "Unknown platform 'myspace'" in error["message"]
    for platform in ALL_PLATFORMS:
        assert platform in error["message"]
    soku.refuses(*args, says="Unknown platform 'myspace'")
    assert soku.ok("accounts", "list", "--email", user) == []


def test_accounts_connect_twice(soku: Soku, user: str) -> None:
    args = connect(user, "tiktok", "tt_brand", "--sandbox")
    soku.ok(*args)
    error = soku.fails(*args, code="conflict")
    assert error["message"] == "tiktok account tt_brand is connected already."
    soku.refuses(*args, says="tiktok account tt_brand is connected already.")
    assert len(soku.ok("accounts", "list", "--email", user)) == 1


def test_accounts_connect_real_account_needs_a_token(soku: Soku, user: str) -> None:
    args = connect(user, "youtube", "yt")
    error = soku.fails(*args, code="validation_error")
    assert error["details"]["field"] == "access-token"
    assert "--access-token" in error["message"]
    says = "A real account needs --access-token (or use --sandbox)."
    assert soku.refuses(*args, says=says).out == ""
    assert soku.ok("accounts", "list", "--email", user) == []


def test_accounts_connect_stores_tokens_encrypted(soku: Soku, data_dir: Path, user: str) -> None:
    access = "ya29-access-" + secrets.token_hex(16)
    refresh = "1//refresh-" + secrets.token_hex(16)
    account = soku.ok(
        *connect(user, "youtube", "yt_main", "--access-token", access, "--refresh-token", refresh)
    )
    assert account["sandbox"] is False
    assert account["status"] == "connected"
    assert access not in json.dumps(account)

    stored = db_bytes(data_dir)
    assert access.encode() not in stored
    assert refresh.encode() not in stored
    # Sealed with the data folder's own generated secret, and opened with it again.
    vault = TokenVault((data_dir / "secret_key").read_text().strip())
    [(sealed_access, sealed_refresh)] = sqlite_rows(
        data_dir, "SELECT access_token, refresh_token FROM accounts WHERE account_id = 'yt_main'"
    )
    assert vault.open(sealed_access) == access
    assert vault.open(sealed_refresh) == refresh


# --- quickstart -------------------------------------------------------------------------


def _check_quickstart(data: dict[str, Any], email: str = "demo@soku.local") -> None:
    assert data["email"] == email
    assert data["key"].startswith("sk_live_")
    accounts = data["accounts"]
    assert len(accounts) == 8
    assert sorted(a["platform"] for a in accounts) == sorted(ALL_PLATFORMS)
    assert all(a["sandbox"] is True and a["status"] == "connected" for a in accounts)
    assert data["dashboard"].endswith("/dashboard")


def test_quickstart(soku: Soku) -> None:
    first = soku.ok("quickstart")
    _check_quickstart(first)
    second = soku.ok("quickstart")
    _check_quickstart(second)
    assert second["key"] != first["key"]
    assert second["accounts"] == first["accounts"]
    assert len(soku.ok("accounts", "list", "--email", "demo@soku.local")) == 8


def test_quickstart_for_an_existing_user(soku: Soku, user: str) -> None:
    soku.ok(*connect(user, "x", "x_main", "--sandbox"))
    _check_quickstart(soku.ok("quickstart", "--email", user), user)


def test_quickstart_without_json(soku: Soku) -> None:
    result = soku.run("quickstart")
    assert result.code == 0, result
    keys = KEY_RE.findall(result.out)
    assert len(keys) == 1
    assert "demo@soku.local" in result.out
    for platform in ALL_PLATFORMS:
        assert f"{platform}=" in result.out


def test_quickstart_names_the_dashboard_serve_will_serve(soku: Soku) -> None:
    """`make run` with SOKU_PORT passes the port to quickstart as to serve: the printed
    dashboard is where the server listens (it said port 8000 whatever the port was)."""
    assert soku.ok("quickstart")["dashboard"] == "http://127.0.0.1:8000/dashboard"
    moved = soku.ok("quickstart", "--host", "0.0.0.0", "--port", "8765")
    assert moved["dashboard"] == "http://127.0.0.1:8765/dashboard"
    result = soku.run("quickstart", "--port", "8766")
    assert "Dashboard: http://127.0.0.1:8766/dashboard" in flat(result.out), result


def test_quickstart_names_a_disconnected_demo_account_apart(soku: Soku) -> None:
    """A demo account disconnected on purpose stays so, and is not printed as usable."""
    soku.ok("quickstart")
    account = ("--email", "demo@soku.local", "--platform", "x", "--account-id", "x_main")
    soku.ok("accounts", "disconnect", *account)
    result = soku.run("quickstart")
    assert result.code == 0, result
    usable, _, rest = flat(result.out).partition("Other accounts of this user:")
    assert "x=x_main" not in usable
    assert "x=x_main (sandbox, disconnected)" in rest
    assert "threads=threads_main" in usable


# --- --json everywhere ------------------------------------------------------------------


def test_every_command_prints_json(soku: Soku) -> None:
    """Each command's whole stdout is one JSON document (Soku.ok parses all of it)."""
    email = "eve@example.test"
    assert isinstance(soku.ok("users", "create", "--email", email), dict)
    assert isinstance(
        soku.ok("users", "set-subscription", "--email", email, "--status", "active"), dict
    )
    assert isinstance(soku.ok("users", "set-plan", "--email", email, "--plan", "unlimited"), dict)
    key = soku.ok("keys", "create", "--email", email)
    assert isinstance(soku.ok("keys", "revoke", key["prefix"]), dict)
    assert isinstance(soku.ok(*connect(email, "threads", "th", "--sandbox")), dict)
    assert isinstance(soku.ok("accounts", "list", "--email", email), list)
    assert isinstance(soku.ok("quickstart", "--email", email), dict)


JSON_ERRORS: list[tuple[tuple[str, ...], str]] = [
    (("users", "create", "--email", "ada@example.test"), "conflict"),
    (("users", "create", "--email", "nobody"), "validation_error"),
    (("users", "create", "--email", "x@example.test", "--plan", "gold"), "validation_error"),
    (("users", "set-subscription", "--email", "no@example.test", "--status", "none"), "not_found"),
    (("users", "set-plan", "--email", "ada@example.test", "--plan", "gold"), "validation_error"),
    (("keys", "create", "--email", "no@example.test"), "not_found"),
    (("keys", "revoke", "sk_live_nothing"), "not_found"),
    (connect("ada@example.test", "orkut", "o", "--sandbox"), "validation_error"),
    (connect("ada@example.test", "x", "x"), "validation_error"),
    (("accounts", "list", "--email", "no@example.test"), "not_found"),
    (("quickstart", "--email", "not an email"), "validation_error"),
]


def test_errors_with_json_print_a_json_error(soku: Soku, user: str) -> None:
    for command, code in JSON_ERRORS:
        error = soku.fails(*command, code=code)
        assert set(error) == {"code", "message", "details"}


# --- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["postgresql://postgres@127.0.0.1:5432/test", "postgres://postgres@127.0.0.1/test"]
)
def test_postgresql_url_without_async_driver_is_a_configuration_error(
    tmp_path: Path, url: str
) -> None:
    soku = soku_on(tmp_path, url, SOKU_SECRET_KEY="s")
    for args in (
        ("users", "create", "--email", "a@example.test"),
        ("db", "upgrade"),
        ("quickstart",),
    ):
        result = soku.exits(*args, status=2)
        assert "Invalid configuration" in result.message
        assert "SOKU_DATABASE_URL must name an async driver" in result.message
        assert "postgresql+asyncpg://" in result.message


def test_postgresql_without_secret_key_is_a_configuration_error(tmp_path: Path) -> None:
    soku = soku_on(tmp_path, "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    for args in (("users", "create", "--email", "a@example.test"), ("db", "upgrade")):
        result = soku.exits(*args, status=2)
        assert "Invalid configuration" in result.message
        assert "SOKU_SECRET_KEY is required when the database is not SQLite" in result.message


def test_configuration_error_with_json_prints_a_json_error(tmp_path: Path) -> None:
    soku = soku_on(tmp_path, "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    result = soku.run("users", "create", "--email", "a@example.test", "--json")
    assert result.code != 0
    assert "code" in result.json["error"]


@pytest.mark.parametrize("url", ["mysql://u:p@db.example/x", "sqlite:///tmp/soku.db", "x"])
def test_a_database_soku_does_not_run_on_is_a_configuration_error(tmp_path: Path, url: str) -> None:
    soku = soku_on(tmp_path, url, SOKU_SECRET_KEY="s")
    for args in (("users", "create", "--email", "a@example.test"), ("db", "upgrade")):
        result = soku.exits(*args, status=2)
        assert "SOKU_DATABASE_URL starts with" in result.message
        assert (
            "postgresql+asyncpg://" in result.message and "sqlite+aiosqlite:///" in result.message
        )
        assert ":p@" not in result.message  # not the URL itself: it may hold a password


def test_configuration_errors_name_each_setting_and_leave_values_out(tmp_path: Path) -> None:
    env = soku_env(
        SOKU_DATA_DIR=str(tmp_path),
        SOKU_MIN_SCHEDULE_LEAD_SECONDS="soon-ish",
        SOKU_WORKER_BATCH="0",
        SOKU_LOG_LEVEL="loudest",
    )
    result = Soku(env).exits("users", "create", "--email", "a@example.test", status=2)
    assert result.message.startswith("invalid_configuration: Invalid configuration: ")
    assert "SOKU_MIN_SCHEDULE_LEAD_SECONDS: Input should be a valid integer" in result.message
    assert "SOKU_WORKER_BATCH: Input should be greater than or equal to 1" in result.message
    assert "SOKU_LOG_LEVEL: Input should be 'debug', 'info', 'warning' or 'error'" in result.message
    assert "soon-ish" not in result.message and "loudest" not in result.message
    assert "pydantic" not in result.message  # no library links or type names

    error = Soku(env).fails(
        "accounts", "list", "--email", "a@example.test", code="invalid_configuration"
    )
    assert len(error["details"]["problems"]) == 3, error


@pytest.mark.parametrize(
    ("args", "option"),
    [
        *((("serve", "--port", port), "--port") for port in ("0", "65536", "99999", "-1")),
        *((("worker", "--concurrency", n), "--concurrency") for n in ("0", "-3")),
    ],
)
def test_serve_and_worker_refuse_numbers_out_of_range(
    soku: Soku, args: tuple[str, ...], option: str
) -> None:
    result = soku.exits(*args, status=2)  # a usage error, before anything starts
    assert f"Invalid value for '{option}'" in result.message


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_database_out_of_reach_is_reported_in_one_line(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://soku:hunter2@127.0.0.1:{_free_port()}/soku"  # nothing listens
    soku = soku_on(tmp_path, url, SOKU_SECRET_KEY="s")
    for args in (
        ("db", "upgrade"),
        ("users", "create", "--email", "a@example.test"),
        ("serve", "--port", str(_free_port())),
        ("worker",),
    ):
        result = soku.exits(*args, status=1)
        assert result.message.startswith("database_unreachable: Cannot reach the database "), result
        assert "soku:***@127.0.0.1" in result.message and "hunter2" not in result.message
    error = soku.fails("keys", "create", "--email", "a@example.test", code="database_unreachable")
    assert "Connect call failed" in error["message"]


def test_db_upgrade_on_sqlite(soku: Soku, data_dir: Path) -> None:
    first = soku.run("db", "upgrade")
    assert first.code == 0, first
    assert flat(first.out).startswith("Database schema is up to date: revision ")  # stdout
    assert flat(first.out).endswith(" (was empty).")
    again = soku.run("db", "upgrade")  # idempotent
    assert again.code == 0, again
    assert again.err == ""
    assert flat(again.out) == flat(first.out).removesuffix(" (was empty).") + "."

    done = soku.ok("db", "upgrade")
    assert done == {
        "revision": done["revision"],
        "previousRevision": done["revision"],
        "upgraded": False,
        "database": f"sqlite+aiosqlite:///{data_dir / 'soku.db'}",
    }
    assert done["revision"] in first.out
    tables = {row[0] for row in sqlite_rows(data_dir, "SELECT name FROM sqlite_master")}
    assert {"users", "api_keys", "accounts", "alembic_version"} <= tables


# --- PostgreSQL -------------------------------------------------------------------------


def _admin_url() -> Any:
    """The `test` database, through the sync psycopg driver (no event loop in these tests)."""
    return make_url(PG_URL).set(drivername="postgresql+psycopg")


def _admin(sql: str) -> None:
    engine = create_engine(
        _admin_url(), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh, empty database; yields its async URL and drops it afterwards."""
    name = f"soku_cli_{secrets.token_hex(4)}"
    try:
        _admin(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        unavailable("PostgreSQL", exc)
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_rows(async_url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(make_url(async_url).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


@pytest.fixture
def pg_soku(tmp_path: Path, pg_database: str) -> Soku:
    return soku_on(
        tmp_path / "data", pg_database, SOKU_SECRET_KEY="cli-test-" + secrets.token_hex(8)
    )


def test_a_postgresql_database_that_does_not_exist_is_reported(tmp_path: Path) -> None:
    try:
        _admin("SELECT 1")
    except Exception as exc:
        unavailable("PostgreSQL", exc)
    missing = f"soku_missing_{secrets.token_hex(4)}"
    for driver in ("postgresql+asyncpg", "postgresql+psycopg"):
        url = make_url(PG_URL).set(drivername=driver, database=missing)
        soku = soku_on(tmp_path, url.render_as_string(hide_password=False), SOKU_SECRET_KEY="s")
        result = soku.exits("db", "upgrade", status=1)
        assert result.message.startswith("database_error: The database "), result
        assert f'database "{missing}" does not exist' in result.message


def test_db_upgrade_on_empty_postgresql_then_commands_work(
    pg_soku: Soku, pg_database: str, tmp_path: Path
) -> None:
    result = pg_soku.run("db", "upgrade")
    assert result.code == 0, result
    assert "Database schema is up to date: revision " in flat(result.out)
    done = pg_soku.ok("db", "upgrade")  # idempotent
    assert (done["upgraded"], done["previousRevision"]) == (False, done["revision"])
    assert done["database"] == make_url(pg_database).render_as_string(hide_password=True)
    assert pg_rows(pg_database, "SELECT count(*) FROM alembic_version") == [(1,)]

    email = "ada@example.test"
    assert pg_soku.ok("users", "create", "--email", email, "--plan", "admin")["plan"] == "admin"
    pg_soku.fails("users", "create", "--email", email, code="conflict")
    assert pg_soku.ok("users", "set-plan", "--email", email, "--plan", "unlimited")["plan"] == (
        "unlimited"
    )
    assert (
        pg_soku.ok("users", "set-subscription", "--email", email, "--status", "trialing")[
            "subscription"
        ]
        == "trialing"
    )
    key = pg_soku.ok("keys", "create", "--email", email)
    access = "tok-" + secrets.token_hex(16)
    pg_soku.ok(*connect(email, "x", "x_main", "--sandbox"))
    pg_soku.ok(*connect(email, "linkedin", "li", "--access-token", access))
    pg_soku.fails(*connect(email, "x", "x_main", "--sandbox"), code="conflict")
    listed = pg_soku.ok("accounts", "list", "--email", email)
    assert [(a["platform"], a["accountId"], a["sandbox"]) for a in listed] == [
        ("linkedin", "li", False),
        ("x", "x_main", True),
    ]
    demo = pg_soku.ok("quickstart")
    _check_quickstart(demo)
    assert pg_soku.ok("quickstart")["key"] != demo["key"]
    assert pg_soku.ok("keys", "revoke", key["prefix"])["revokedAt"] is not None

    hashes = {row[0] for row in pg_rows(pg_database, "SELECT key_hash FROM api_keys")}
    assert hashlib.sha256(key["key"].encode()).hexdigest() in hashes
    dump = repr(pg_rows(pg_database, "SELECT * FROM api_keys")) + repr(
        pg_rows(pg_database, "SELECT * FROM accounts")
    )
    assert key["key"] not in dump
    assert demo["key"] not in dump
    assert access not in dump
    # Nothing went to the SQLite default.
    assert not list((tmp_path / "data").glob("soku.db*"))


def test_cli_on_postgresql_not_upgraded_says_to_run_db_upgrade(
    pg_soku: Soku, pg_database: str
) -> None:
    for args in (("users", "create", "--email", "a@example.test"), ("quickstart",), ("worker",)):
        result = pg_soku.run(*args)
        assert result.code != 0, result
        assert "Traceback" not in result.err
        assert "run `soku db upgrade`" in result.message
    # It did not upgrade by itself (PostgreSQL is upgraded on purpose).
    assert pg_rows(
        pg_database, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
    ) == [(0,)]


def test_cli_on_postgresql_not_upgraded_reports_cleanly(pg_soku: Soku) -> None:
    result = pg_soku.run("users", "create", "--email", "a@example.test")
    assert result.code != 0
    assert "Traceback" not in result.err
    as_json = pg_soku.run("users", "create", "--email", "a@example.test", "--json")
    assert as_json.code != 0
    assert "code" in as_json.json["error"]
