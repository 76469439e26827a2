"""The tables the CLI prints for people: ids, prefixes and emails are never cut, however
narrow the terminal (they are what a user copies)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli import Soku, soku_env

EMAIL = "someone.with.a.rather.long.address@example-company-domain.test"
ACCOUNT_ID = "the brand's main account on instagram"


@pytest.mark.parametrize("columns", [None, "40", "80", "200"])
def test_tables_never_cut_what_a_user_copies(tmp_path: Path, columns: str | None) -> None:
    env = soku_env(SOKU_DATA_DIR=str(tmp_path))
    if columns is not None:
        env["COLUMNS"] = columns  # the terminal's width, as Rich reads it
    soku = Soku(env)
    user = soku.ok("users", "create", "--email", EMAIL)
    keys = [soku.ok("keys", "create", "--email", EMAIL, "--name", n) for n in ("a", "b c d e f")]
    connect = ("accounts", "connect", "--email", EMAIL, "--platform", "instagram", "--sandbox")
    account = soku.ok(*connect, "--account-id", ACCOUNT_ID)

    shown = soku.run("users", "set-plan", "--email", EMAIL, "--plan", "admin")
    assert shown.code == 0, shown
    assert user["id"] in shown.out and EMAIL in shown.out
    listed = soku.run("keys", "list", "--email", EMAIL)
    assert listed.code == 0, listed
    for key in keys:
        assert key["id"] in listed.out and key["prefix"] in listed.out
    accounts = soku.run("accounts", "list", "--email", EMAIL)
    assert accounts.code == 0, accounts
    assert ACCOUNT_ID in accounts.out
    assert account["platformUserId"] in accounts.out
    for result in (shown, listed, accounts):
        assert "…" not in result.out
