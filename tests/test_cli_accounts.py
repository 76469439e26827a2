"""`soku accounts connect`: what it refuses, and what it warns of."""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

import pytest

from soku import operations
from soku.auth.models import SubscriptionStatus
from soku.context import AppContext
from soku.platforms import INTEGRATIONS, PLATFORM_NAMES
from tests.test_cli import Soku, soku_env

EMAIL = "ada@example.test"


@pytest.fixture
def soku(tmp_path: Path) -> Soku:
    soku = Soku(soku_env(SOKU_DATA_DIR=str(tmp_path / "data")))
    soku.ok("users", "create", "--email", EMAIL)
    return soku


def _connect(platform: str, account_id: str, *more: str) -> tuple[str, ...]:
    return ("accounts", "connect", "--email", EMAIL, "--platform", platform, "--account-id",
            account_id, *more)  # fmt: skip


@pytest.mark.parametrize("option", ["--access-token", "--refresh-token"])
def test_a_sandbox_account_with_a_token_is_refused(soku: Soku, option: str) -> None:
    args = _connect("x", "x_main", "--sandbox", option, "tok")
    error = soku.fails(*args, code="validation_error")
    field = option.removeprefix("--")
    assert error["details"]["field"] == field
    assert error["message"] == (
        f"--sandbox and {option} do not go together: a sandbox account is given made-up "
        "tokens. Leave out one of them."
    )
    result = soku.run(*args)
    assert result.code == 1, result
    assert result.out == ""
    assert f"validation_error: --sandbox and {option} do not go together" in result.message
    assert soku.ok("accounts", "list", "--email", EMAIL) == []


def test_a_real_account_of_every_platform_connects_without_a_warning(soku: Soku) -> None:
    for platform in PLATFORM_NAMES:
        connected = soku.ok(*_connect(platform, f"{platform}_real", "--access-token", "tok"))
        assert connected["warnings"] == [], connected
        assert soku.ok(*_connect(platform, f"{platform}_sbx", "--sandbox"))["warnings"] == []


async def test_a_real_account_of_a_platform_without_a_connector_is_warned_of(
    backend: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every platform has a connector today; one added with its rules alone is connected with
    a warning (a sandbox account of it goes to the generic fake, with none)."""
    monkeypatch.delitem(INTEGRATIONS, "snapchat")
    email = f"warned-{secrets.token_hex(4)}@example.test"
    async with backend.db.transaction() as session:
        await operations.create_user(
            session, backend.settings, email, SubscriptionStatus.active, None
        )
        real = await operations.connect_account(
            session, backend.settings, email, "snapchat", "real", False, "tok", None
        )
        sandbox = await operations.connect_account(
            session, backend.settings, email, "snapchat", "sbx", True, None, None
        )
    [warning] = real["warnings"]
    assert warning["code"] == "connector_unavailable"
    assert warning["message"].startswith(
        "This version of Soku has no connector for real snapchat accounts: posts to this "
        "account will fail with connector_unavailable."
    )
    assert sandbox["warnings"] == []


def test_an_account_that_needs_reauth_is_connected_again(soku: Soku, tmp_path: Path) -> None:
    """A refused refresh tells the user to connect the account again: `connect` must take it."""
    soku.ok(*_connect("x", "x_real", "--access-token", "old", "--username", "ada"))
    soku.fails(*_connect("x", "x_real", "--access-token", "new"), code="conflict")
    with sqlite3.connect(tmp_path / "data" / "soku.db") as db:  # as a delivery leaves it
        db.execute("UPDATE accounts SET status = 'needs_reauth'")
    assert soku.ok("accounts", "list", "--email", EMAIL)[0]["status"] == "needs_reauth"
    connected = soku.ok(*_connect("x", "x_real", "--access-token", "new"))
    assert connected["status"] == "connected", connected
    [account] = soku.ok("accounts", "list", "--email", EMAIL)
    assert (account["status"], account["username"]) == ("connected", "ada")


def test_a_token_sealed_with_another_key_than_the_stored_ones_warns(soku: Soku) -> None:
    """A shell with another SOKU_SECRET_KEY than the stored tokens' connects the account (a
    lost key is replaced that way), and warns that the processes holding the other key cannot
    read its tokens; with the stored tokens' key, or no token to seal, nothing is said."""
    soku.ok(*_connect("x", "x_real", "--access-token", "tok"))
    other = Soku({**soku.env, "SOKU_SECRET_KEY": "another-key"})
    connected = other.ok(*_connect("linkedin", "li_real", "--access-token", "tok"))
    [warning] = connected["warnings"]
    assert warning["code"] == "secret_key_mismatch"
    assert warning["message"].startswith(
        "SOKU_SECRET_KEY opens none of the 1 platform tokens stored before"
    )
    assert connected["status"] == "connected"
    assert other.ok(*_connect("x", "x_sbx", "--sandbox"))["warnings"] == []
    # the first key opens x_real's token, though li_real's is sealed with another
    assert soku.ok(*_connect("threads", "th_real", "--access-token", "tok"))["warnings"] == []
    # the other key opens li_real's: no warning either (one token it opens is enough)
    result = other.run(*_connect("facebook", "fb_real", "--access-token", "tok"))
    assert result.code == 0, result
    assert "warning: secret_key_mismatch: SOKU_SECRET_KEY opens none" not in result.message


def test_accounts_sealed_with_a_lost_key_are_connected_again(soku: Soku) -> None:
    """The way back from a lost SOKU_SECRET_KEY that `serve` and the warning point to: an
    account whose tokens the new key cannot open takes new ones (it was a `conflict`); one
    whose tokens it opens is still connected already."""
    soku.ok(*_connect("x", "x_real", "--access-token", "old-token"))
    soku.ok(*_connect("linkedin", "li_sbx", "--sandbox"))
    new_key = Soku({**soku.env, "SOKU_SECRET_KEY": "the-new-key"})
    refused = new_key.run("worker", "--json")
    assert refused.code == 2, refused
    assert "connect the accounts again with this one" in refused.json["error"]["message"]

    again = new_key.ok(*_connect("x", "x_real", "--access-token", "new-token"))
    assert (again["status"], again["warnings"][0]["code"]) == ("connected", "secret_key_mismatch")
    assert new_key.ok(*_connect("linkedin", "li_sbx", "--sandbox"))["warnings"] == []
    new_key.fails(*_connect("x", "x_real", "--access-token", "newer"), code="conflict")
    accounts = new_key.ok("accounts", "list", "--email", EMAIL)
    assert sorted(a["accountId"] for a in accounts) == ["li_sbx", "x_real"]


def test_disconnect_erases_the_tokens_and_connect_takes_it_back(soku: Soku, tmp_path: Path) -> None:
    soku.ok(*_connect("x", "x_real", "--access-token", "tok", "--refresh-token", "ref"))
    disconnect = ("accounts", "disconnect", "--email", EMAIL, "--platform", "x")
    gone = soku.ok(*disconnect, "--account-id", "x_real")
    assert (gone["status"], gone["pendingDeliveries"]) == ("disconnected", 0)
    with sqlite3.connect(tmp_path / "data" / "soku.db") as db:
        stored = db.execute("SELECT status, access_token, refresh_token FROM accounts").fetchall()
    assert stored == [("disconnected", None, None)]
    assert soku.ok(*disconnect, "--account-id", "x_real")["status"] == "disconnected"  # again
    missing = soku.fails(*disconnect, "--account-id", "nope", code="not_found")
    assert missing["message"] == f"{EMAIL} has no x account 'nope'."
    assert soku.ok(*_connect("x", "x_real", "--access-token", "new"))["status"] == "connected"
