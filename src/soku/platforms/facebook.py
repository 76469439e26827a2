"""Facebook Pages (Graph API): content rules, and where its connector and sandbox fake live."""

from __future__ import annotations

from typing import TYPE_CHECKING

from soku.platforms.base import (
    ConnectorTarget,
    DeliveryLimits,
    Identities,
    OAuthCall,
    OAuthEndpoints,
    OAuthSpec,
    PlatformIntegration,
)
from soku.platforms.rules import MediaRules, PlainTextRules

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from starlette.types import ASGIApp

    from soku.platforms.connector import Connector

MAX_TEXT_LENGTH = 63_206  # facebook.md: above this the request fails with code 100


# A Facebook Page post: text, up to 10 photos, or one video; our text is the message.
# Text-only allowed; up to 10 photos via attached_media (facebook.md; product UI too).
RULES = PlainTextRules(
    "facebook", "Facebook", MediaRules(text_only=True, max_images=10), MAX_TEXT_LENGTH
)
# No per-Page feed cap is documented; reels alone have 30 per 24 h (facebook.md).
LIMITS = DeliveryLimits(publish_caps=())


def _connector(target: ConnectorTarget) -> Connector:
    from soku.platforms.facebook_connector import (
        GRAPH_URL,
        VERSION,
        VIDEO_URL,
        WEB_URL,
        FacebookConnector,
    )

    if target.sandbox_url:  # the fake serves Graph, the video host and the permalink pages
        url = target.sandbox_url
        return FacebookConnector(url, video_url=url, web_url=url)
    options = target.options
    return FacebookConnector(
        options.get("graph_url", GRAPH_URL),
        video_url=options.get("video_url", VIDEO_URL),
        web_url=options.get("web_url", WEB_URL),
        version=options.get("version", VERSION),
    )


def _sandbox(public_url: str, media_origin: str) -> ASGIApp:
    from soku.sandbox.facebook import create_facebook_fake

    return create_facebook_fake(public_url, media_origin=media_origin)


def _oauth_endpoints(target: ConnectorTarget) -> OAuthEndpoints:
    """The dialog on www.facebook.com, the rest on Graph, both under the connector's version."""
    from soku.platforms.facebook_connector import GRAPH_URL, VERSION, WEB_URL

    options = target.options
    version = options.get("version", VERSION).strip("/")
    if target.sandbox_url:  # the fake serves the dialog and Graph
        graph = target.sandbox_url.rstrip("/")
        authorize_url = f"{graph}/{version}/dialog/oauth"
    else:
        graph = options.get("graph_url", GRAPH_URL).rstrip("/")
        web = options.get("web_url", WEB_URL).rstrip("/")
        authorize_url = options.get("authorize_url", f"{web}/{version}/dialog/oauth")
    token_url = f"{graph}/{version}/oauth/access_token"
    return OAuthEndpoints(authorize_url, token_url, f"{graph}/{version}", exchange_url=token_url)


async def _identify(call: OAuthCall, answer: Mapping[str, Any]) -> Identities:
    from soku.integrations.oauth_identity import identify_facebook

    return await identify_facebook(call, answer)


async def _pages(call: OAuthCall, user_token: str) -> Identities:
    from soku.integrations.oauth_identity import facebook_pages

    return await facebook_pages(call, user_token)


# No PKCE; the app secret at the token endpoint (facebook.md: "GET|POST", sent here as a
# POST with client_id and client_secret in the body); comma-separated scopes, with
# business_management so that Pages owned by a Business are listed too.
OAUTH = OAuthSpec(
    endpoints=_oauth_endpoints,
    scopes=(
        "pages_show_list",
        "pages_read_engagement",
        "pages_manage_posts",
        "business_management",
    ),
    scope_separator=",",
    pkce=False,
    client_auth="client_secret_post",
    identify=_identify,
    list_again=_pages,
)
INTEGRATION = PlatformIntegration(
    make_connector=_connector,
    create_sandbox=_sandbox,
    options=frozenset(
        {
            "graph_url",
            "video_url",
            "web_url",
            "version",
            "authorize_url",
            "client_id",
            "client_secret",
        }
    ),
    oauth=OAUTH,
)
