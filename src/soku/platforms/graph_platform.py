"""What the Graph container platforms (Instagram, Threads) share in their integration: the
connector for a target (the fake's or the real API's, each URL an option), the sign-in's
endpoints, and the OAuth settings both use (no PKCE, the secret posted, comma-separated
scopes).

Everything a platform gives is a lazy factory, so checking a post's rules loads no HTTP code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from soku.platforms.base import (
    ConnectorTarget,
    Identities,
    OAuthCall,
    OAuthEndpoints,
    OAuthSpec,
    PlatformIntegration,
)

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from soku.platforms.graph_connector import GraphConnector

_OPTIONS = ("api_url", "version", "web_url", "authorize_url", "client_id", "client_secret")


def graph_integration(
    connector: Callable[[], type[GraphConnector]],
    sandbox: Callable[[str, str], ASGIApp],
    identify: Callable[[OAuthCall, Mapping[str, Any]], Awaitable[Identities]],
    scopes: tuple[str, ...],
    authorize_url: str,
    token_url: str | None = None,
) -> PlatformIntegration:
    """`token_url`: the code exchange's default URL, an option then (`token_url`); None: the
    API's own `/oauth/access_token`."""

    def make_connector(target: ConnectorTarget) -> GraphConnector:
        kind = connector()
        if target.sandbox_url:  # the fake serves the API and the permalink pages
            return kind(target.sandbox_url, web_url=target.sandbox_url)
        api_url, version, web_url = kind.urls
        options = target.options
        return kind(
            options.get("api_url", api_url),
            version=options.get("version", version),
            web_url=options.get("web_url", web_url),
        )

    def endpoints(target: ConnectorTarget) -> OAuthEndpoints:
        api_url, version, _ = connector().urls
        if target.sandbox_url:  # the fake serves the consent page, the token and the API
            root = target.sandbox_url.rstrip("/")
            authorize, token = f"{root}/oauth/authorize", f"{root}/oauth/access_token"
        else:
            options = target.options
            root = options.get("api_url", api_url).rstrip("/")
            version = options.get("version", version).strip("/")
            authorize = options.get("authorize_url", authorize_url)
            token = f"{root}/oauth/access_token"
            if token_url is not None:
                token = options.get("token_url", token_url)
        return OAuthEndpoints(authorize, token, f"{root}/{version}", f"{root}/access_token")

    oauth = OAuthSpec(
        endpoints=endpoints,
        scopes=scopes,
        scope_separator=",",
        pkce=False,
        client_auth="client_secret_post",
        identify=identify,
    )
    options = frozenset(_OPTIONS + (("token_url",) if token_url else ()))
    return PlatformIntegration(make_connector, sandbox, options, oauth)
