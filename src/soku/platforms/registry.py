"""Which connector delivers to an account."""

from __future__ import annotations

from soku.platforms.connector import AccountAccess, Connector, ErrorKind, PlatformError


def connector_for(account: AccountAccess, sandbox_base_url: str) -> Connector:
    """Sandbox accounts go to the built-in fake platform; real accounts to the real API."""
    if account.sandbox:
        from soku.platforms.sandbox_connector import GenericSandboxConnector

        return GenericSandboxConnector(account.platform, sandbox_base_url)
    raise PlatformError(
        ErrorKind.permanent,
        "connector_unavailable",
        f"Publishing to a real {account.platform} account is not available in this version; "
        "connect a sandbox account or upgrade Soku.",
    )
