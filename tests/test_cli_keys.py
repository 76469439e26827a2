"""`soku keys`: a key is shown once, then known by its prefix (`keys list`, `keys revoke`)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from soku.auth.cache import TTL_SECONDS
from tests.test_cli import KEY_RE, Soku, flat, soku_env

KEY_FIELDS = {"id", "prefix", "name", "createdAt", "lastUsedAt", "revokedAt"}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def soku(data_dir: Path) -> Soku:
    soku = Soku(soku_env(SOKU_DATA_DIR=str(data_dir)))
    soku.ok("users", "create", "--email", "ada@example.test")
    return soku


def test_keys_create_shows_the_prefix(soku: Soku) -> None:
    result = soku.run("keys", "create", "--email", "ada@example.test")
    assert result.code == 0, result
    key, _prefix = KEY_RE.findall(result.out)
    [listed] = soku.ok("keys", "list", "--email", "ada@example.test")
    assert key.startswith(listed["prefix"])
    assert f"Its prefix (for keys list and keys revoke): {listed['prefix']}" in flat(result.out)


def test_keys_list_shows_each_key_but_never_the_key(soku: Soku, data_dir: Path) -> None:
    email = "ada@example.test"
    assert soku.ok("keys", "list", "--email", email) == []
    first = soku.ok("keys", "create", "--email", email, "--name", "ci")
    second = soku.ok("keys", "create", "--email", email)
    soku.ok("keys", "revoke", first["prefix"])
    with sqlite3.connect(data_dir / "soku.db") as conn:  # as the API does when a key is used
        conn.execute("UPDATE api_keys SET last_used_at = created_at WHERE name IS NULL")

    result = soku.run("keys", "list", "--email", email, "--json")
    assert result.code == 0, result
    listed = result.json
    assert [set(k) for k in listed] == [KEY_FIELDS, KEY_FIELDS]
    assert [(k["id"], k["prefix"], k["name"]) for k in listed] == [
        (first["id"], first["prefix"], "ci"),
        (second["id"], second["prefix"], None),
    ]
    assert listed[0]["revokedAt"] is not None and listed[1]["revokedAt"] is None
    assert (listed[0]["lastUsedAt"], listed[1]["lastUsedAt"]) == (None, second["createdAt"])
    for issued in (first, second):
        assert issued["key"] not in result.out
        assert hashlib.sha256(issued["key"].encode()).hexdigest() not in result.out


def test_keys_list_of_an_unknown_user(soku: Soku) -> None:
    error = soku.fails("keys", "list", "--email", "nobody@example.test", code="not_found")
    assert error["message"] == "No user nobody@example.test."


def test_keys_revoke_says_when_servers_refuse_the_key(soku: Soku) -> None:
    issued = soku.ok("keys", "create", "--email", "ada@example.test")
    result = soku.run("keys", "revoke", issued["prefix"])
    assert result.code == 0, result
    assert (
        f"Running servers refuse it within {TTL_SECONDS:g} s (how long they keep a key in memory)."
        in flat(result.out)
    )
    again = soku.ok("keys", "revoke", issued["prefix"])
    assert again["refusedWithinSeconds"] == TTL_SECONDS


def test_keys_revoke_of_an_unknown_key_does_not_print_the_key(soku: Soku) -> None:
    key = "sk_live_" + "k" * 43
    for args in (("keys", "revoke", key), ("keys", "revoke", key, "--json")):
        result = soku.run(*args)
        assert result.code == 1, result
        shown = result.out + result.err
        assert "sk_live_kkkkkkkk" in shown and "k" * 9 not in shown  # its prefix, no more
