"""Configuration problems, as every `soku` command reports them: exit 2 and
`invalid_configuration`, naming each setting and never its value."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from soku.config import Settings
from tests.test_cli import Soku, soku_env

JSON_SETTINGS = ("SOKU_RATE_LIMIT_PLANS", "SOKU_RATE_LIMIT_ENDPOINTS", "SOKU_PLATFORM_OPTIONS")
# Every command: those that talk to the database and the long-running ones.
COMMANDS = (
    ("accounts", "list", "--email", "a@example.test"),
    ("users", "create", "--email", "a@example.test"),
    ("db", "upgrade"),
    ("quickstart",),
    ("serve", "--port", "1"),
    ("worker",),
)
BAD_JSON = '{"standard": ["1/minute"], secret-value'


def test_no_setting_escapes_validation_whatever_its_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any text in any setting is either accepted or a ValidationError, which the CLI reports;
    pydantic-settings' own SettingsError (raised for JSON it cannot parse) never gets out."""
    for name in list(Settings.model_fields):
        monkeypatch.delenv(f"SOKU_{name.upper()}", raising=False)
    monkeypatch.setenv("SOKU_DATA_DIR", str(tmp_path))
    escaped = {}
    for name in Settings.model_fields:
        with monkeypatch.context() as patched:
            patched.setenv(f"SOKU_{name.upper()}", "{bad")
            try:
                Settings()
            except ValidationError:
                pass
            except Exception as exc:  # what this test looks for
                escaped[name] = type(exc).__name__
    assert escaped == {}


@pytest.mark.parametrize("setting", JSON_SETTINGS)
def test_unparsable_json_is_a_configuration_error(tmp_path: Path, setting: str) -> None:
    soku = Soku(soku_env(SOKU_DATA_DIR=str(tmp_path), **{setting: BAD_JSON}))
    args = ("accounts", "list", "--email", "a@example.test")
    error = soku.fails(*args, code="invalid_configuration")
    assert error["details"]["problems"] == [
        f"{setting} is not valid JSON: Expecting property name enclosed in double quotes "
        "(line 1, column 28)"
    ]
    assert "secret-value" not in error["message"]

    result = soku.run(*args)
    assert result.code == 2, result
    assert result.out == ""
    assert "Traceback" not in result.err
    assert result.message.startswith(f"invalid_configuration: Invalid configuration: {setting}")
    assert "secret-value" not in result.err


@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize("args", COMMANDS)
def test_every_command_reports_unparsable_json(
    tmp_path: Path, args: tuple[str, ...], as_json: bool
) -> None:
    env = soku_env(
        SOKU_DATA_DIR=str(tmp_path),
        SOKU_PLATFORM_OPTIONS="{",
        SOKU_RATE_LIMIT_ENDPOINTS="[1,",
        SOKU_WORKER_BATCH="0",
    )
    wrong = ["SOKU_PLATFORM_OPTIONS", "SOKU_RATE_LIMIT_ENDPOINTS", "SOKU_WORKER_BATCH"]
    result = Soku(env).run(*args, *(["--json"] if as_json else []))
    assert result.code == 2, result
    assert "Traceback" not in result.err
    if as_json:
        error = result.json["error"]
        assert error["code"] == "invalid_configuration"
        named = sorted(problem.split()[0].rstrip(":") for problem in error["details"]["problems"])
        assert named == wrong
    else:
        assert result.out == ""
        for setting in wrong:
            assert setting in result.message, result
    assert not (tmp_path / "soku.db").exists()  # refused before anything was touched


@pytest.mark.parametrize("args", [("serve", "--port", "1"), ("worker",)])
def test_serving_with_a_key_that_opens_no_stored_token_is_refused(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    data = str(tmp_path)
    Soku(soku_env(SOKU_DATA_DIR=data)).ok("quickstart")  # tokens sealed with the folder's key
    other = Soku(soku_env(SOKU_DATA_DIR=data, SOKU_SECRET_KEY="not-the-key-they-were-sealed-with"))
    error = other.fails(*args, code="invalid_configuration")
    assert "SOKU_SECRET_KEY opens none of the 8 platform tokens" in error["message"]
    assert "not-the-key" not in error["message"]
    assert other.ok("accounts", "list", "--email", "demo@soku.local")  # other commands still run


STORE_AND_REDIS = (
    ("SOKU_MEDIA_STORE", "gopher://secret-host/x", "SOKU_MEDIA_STORE: unsupported scheme"),
    ("SOKU_MEDIA_STORE", "s3://", "SOKU_MEDIA_STORE: an s3:// URL needs a bucket"),
    ("SOKU_REDIS_URL", "secret-host:6379", "SOKU_REDIS_URL must start with redis://"),
    ("SOKU_REDIS_URL", "redis://:secret@h:port", "SOKU_REDIS_URL is not a Redis URL: Port"),
)


@pytest.mark.parametrize(("setting", "value", "problem"), STORE_AND_REDIS)
def test_a_media_store_or_redis_url_that_cannot_be_used_is_a_configuration_error(
    tmp_path: Path, setting: str, value: str, problem: str
) -> None:
    """Checked with the other settings, so `serve` and `worker` report it in one line (they
    ended with a ValueError's traceback when they built the store or the rate limiter)."""
    soku = Soku(soku_env(SOKU_DATA_DIR=str(tmp_path), **{setting: value}))
    for args in (("serve", "--port", "1"), ("worker",), ("users", "create", "--email", "a@b.io")):
        error = soku.fails(*args, code="invalid_configuration")
        assert error["details"]["problems"][0].startswith(problem), error
        assert "secret" not in error["message"]
        result = soku.run(*args)
        assert (result.code, result.out) == (2, ""), result
        assert "Traceback" not in result.err


def test_a_data_dir_that_is_a_file_or_a_sandbox_url_that_is_not_http(tmp_path: Path) -> None:
    """Reported with the other settings (a data folder that was a file ended as
    database_unreachable "File exists"; a sandbox URL like `zz` failed only at delivery)."""
    afile = tmp_path / "not-a-folder"
    afile.write_text("")
    cases = (
        ({"SOKU_DATA_DIR": str(afile)}, "SOKU_DATA_DIR must name a folder; it names a file"),
        (
            {"SOKU_DATA_DIR": str(tmp_path), "SOKU_SANDBOX_URL": "zz"},
            "SOKU_SANDBOX_URL must start with http:// or https://",
        ),
        (
            {"SOKU_DATA_DIR": str(tmp_path), "SOKU_SANDBOX_BASE_URL": "ftp://x"},
            "SOKU_SANDBOX_BASE_URL must start with http:// or https://",
        ),
    )
    for env, problem in cases:
        soku = Soku(soku_env(**env))
        error = soku.fails("users", "create", "--email", "a@b.io", code="invalid_configuration")
        assert error["details"]["problems"] == [problem], error
