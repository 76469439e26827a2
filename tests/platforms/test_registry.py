"""Which connector an account gets, and the settings that steer it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from soku.config import Settings
from soku.platforms import INTEGRATIONS, PLATFORM_NAMES
from soku.platforms.connector import (
    AccountAccess,
    Connector,
    ErrorKind,
    PlatformError,
    from_options,
)
from soku.platforms.registry import connector_for
from soku.platforms.sandbox_connector import GenericSandboxConnector
from soku.platforms.x_connector import XConnector

ROOT = "http://soku.test/sandbox"
GENERIC = f"{ROOT}/generic"


def account(platform: str, *, sandbox: bool) -> AccountAccess:
    return AccountAccess(
        platform, f"{platform}_main", "123", "someone", "token", "refresh", None, sandbox
    )


def route(
    acct: AccountAccess, fakes: str = "platform", options: dict[str, dict[str, str]] | None = None
) -> Connector:
    return connector_for(
        acct, sandbox_fakes=fakes, sandbox_root=ROOT, generic_url=GENERIC, options=options or {}
    )


def test_x_is_one_of_the_integrations() -> None:
    assert "x" in INTEGRATIONS
    assert set(INTEGRATIONS) <= set(PLATFORM_NAMES)


@pytest.mark.parametrize("platform", sorted(INTEGRATIONS))
def test_a_sandbox_account_goes_to_its_platforms_own_fake(platform: str) -> None:
    connector = route(account(platform, sandbox=True))
    assert connector.platform == platform
    assert not isinstance(connector, GenericSandboxConnector)
    urls = {v for k, v in vars(connector).items() if k.endswith("url") and isinstance(v, str)}
    assert urls and all(url.startswith(f"{ROOT}/{platform}") for url in urls), urls


@pytest.mark.parametrize("platform", sorted(INTEGRATIONS))
def test_generic_mode_sends_every_sandbox_account_to_the_generic_fake(platform: str) -> None:
    connector = route(account(platform, sandbox=True), fakes="generic")
    assert isinstance(connector, GenericSandboxConnector)
    assert connector.platform == platform


@pytest.mark.parametrize("platform", PLATFORM_NAMES)
def test_a_platform_without_a_connector_uses_the_generic_fake_or_refuses_real_accounts(
    platform: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every platform has one today; a platform added with its rules alone is routed so
    monkeypatch.delitem(INTEGRATIONS, platform)
    assert isinstance(route(account(platform, sandbox=True)), GenericSandboxConnector)
    with pytest.raises(PlatformError) as refused:
        route(account(platform, sandbox=False))
    assert (refused.value.kind, refused.value.code) == (
        ErrorKind.permanent,
        "connector_unavailable",
    )


def test_a_real_x_account_uses_the_options() -> None:
    options = {"x": {"api_url": "http://x.internal/", "client_id": "app", "client_secret": "s"}}
    connector = route(account("x", sandbox=False), options=options)
    assert isinstance(connector, XConnector)
    assert (connector.base_url, connector.web_url) == ("http://x.internal", "https://x.com")
    assert (connector.client_id, connector.client_secret) == ("app", "s")
    default = route(account("x", sandbox=False))
    assert isinstance(default, XConnector) and default.base_url == "https://api.x.com"


def test_platform_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="no connector for 'myspace'"):
        Settings(data_dir=tmp_path, platform_options={"myspace": {"api_url": "http://m"}})
    with pytest.raises(ValidationError, match="unknown api_key"):
        Settings(data_dir=tmp_path, platform_options={"x": {"api_key": "k"}})
    settings = Settings(data_dir=tmp_path, platform_options={"x": {"client_id": "app"}})
    assert settings.platform_options == {"x": {"client_id": "app"}}
    assert settings.sandbox_fakes == "platform"
    assert settings.sandbox_root == f"{settings.public_base_url}/sandbox"
    moved = Settings(data_dir=tmp_path, sandbox_url="http://fakes.internal:9000/sandbox/")
    assert moved.sandbox_root == "http://fakes.internal:9000/sandbox"


def test_sandbox_fakes_takes_two_values(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, sandbox_fakes="mocked")  # type: ignore[arg-type]


def test_a_wrong_option_fails_as_a_permanent_error_naming_the_platform() -> None:
    assert from_options("demo", lambda: int("7")) == 7
    with pytest.raises(PlatformError) as caught:
        from_options("demo", lambda: int("many"))
    error = caught.value
    assert (error.kind, error.code) == (ErrorKind.permanent, "invalid_options")
    assert error.message.startswith("SOKU_PLATFORM_OPTIONS['demo'] is not usable: invalid")
    assert error.__suppress_context__  # the ValueError's trace is not the operator's concern
