"""Which connector delivers to an account, and where it sends its calls."""

from __future__ import annotations

from collections.abc import Mapping

from soku.platforms import INTEGRATIONS
from soku.platforms.base import ConnectorTarget
from soku.platforms.connector import AccountAccess, Connector, ErrorKind, PlatformError


def connector_for(
    account: AccountAccess,
    *,
    sandbox_fakes: str,
    sandbox_root: str,
    generic_url: str,
    options: Mapping[str, Mapping[str, str]],
) -> Connector:
    """The account's connector.

    A platform with an integration of its own publishes through its real connector: to the
    platform's API for a real account, to its fake at `<sandbox_root>/<platform>` for a sandbox
    one. Sandbox accounts of the other platforms, and every sandbox account when
    `sandbox_fakes` is "generic", go to the generic fake at `generic_url`.
    """
    integration = INTEGRATIONS.get(account.platform)
    if account.sandbox and (integration is None or sandbox_fakes == "generic"):
        from soku.platforms.sandbox_connector import GenericSandboxConnector

        return GenericSandboxConnector(account.platform, generic_url)
    if integration is None:
        raise PlatformError(
            ErrorKind.permanent,
            "connector_unavailable",
            f"Publishing to a real {account.platform} account is not available in this "
            "version; connect a sandbox account or upgrade Soku.",
        )
    sandbox_url = f"{sandbox_root}/{account.platform}" if account.sandbox else None
    target = ConnectorTarget(sandbox_url, options.get(account.platform, {}))
    return integration.make_connector(target)
