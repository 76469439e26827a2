"""LinkedIn (Posts API): content rules, and where its connector and sandbox fake live."""

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
    oauth_endpoints,
)
from soku.platforms.rules import MediaRules, PlainTextRules

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from starlette.types import ASGIApp

    from soku.platforms.connector import Connector

MAX_TEXT_LENGTH = 3000  # linkedin.md: commentary about 3,000 characters, silently cut above


# A LinkedIn post: text, up to 9 images, or one video; our text is the commentary. The
# product UI allows 9 images (related-pages.md); the API's multiImage takes 2-20
# (linkedin.md), so 9 is our choice, not LinkedIn's limit.
RULES = PlainTextRules(
    "linkedin", "LinkedIn", MediaRules(text_only=True, max_images=9), MAX_TEXT_LENGTH
)
# LinkedIn publishes no per-member numbers; it answers 429 (linkedin.md).
LIMITS = DeliveryLimits(publish_caps=())


def _connector(target: ConnectorTarget) -> Connector:
    from soku.platforms.linkedin_connector import (
        API_URL,
        OAUTH_URL,
        VERSION,
        WEB_URL,
        LinkedInConnector,
    )

    if target.sandbox_url:  # the fake serves the API, the uploads, OAuth and the permalinks
        sandbox = target.sandbox_url.rstrip("/")
        return LinkedInConnector(
            sandbox, oauth_url=f"{sandbox}/oauth/v2/accessToken", web_url=sandbox
        )
    options = target.options
    return LinkedInConnector(
        options.get("api_url", API_URL),
        oauth_url=options.get("oauth_url", OAUTH_URL),
        web_url=options.get("web_url", WEB_URL),
        version=options.get("version", VERSION),
        client_id=options.get("client_id"),
        client_secret=options.get("client_secret"),
    )


def _sandbox(public_url: str, media_origin: str) -> ASGIApp:
    from soku.sandbox.linkedin import create_linkedin_fake

    return create_linkedin_fake(public_url)  # it takes media as uploads only: nothing to fetch


AUTHORIZE_URL = "https://www.linkedin.com/oauth/v2/authorization"


def _oauth_endpoints(target: ConnectorTarget) -> OAuthEndpoints:
    from soku.platforms.linkedin_connector import API_URL, OAUTH_URL

    # the fake serves the consent page, the token endpoint and the API
    return oauth_endpoints(
        target,
        ("/oauth/v2/authorization", "/oauth/v2/accessToken"),
        (AUTHORIZE_URL, OAUTH_URL, API_URL),
        "oauth_url",
    )


async def _identify(call: OAuthCall, answer: Mapping[str, Any]) -> Identities:
    from soku.integrations.oauth_identity import identify_linkedin

    return await identify_linkedin(call, answer)


# A web app: no PKCE (native apps only), client_id and client_secret in the token request's
# body; `openid profile` for the member id, `w_member_social` to post (linkedin.md, "Auth").
OAUTH = OAuthSpec(
    endpoints=_oauth_endpoints,
    scopes=("openid", "profile", "w_member_social"),
    scope_separator=" ",
    pkce=False,
    client_auth="client_secret_post",
    identify=_identify,
)
INTEGRATION = PlatformIntegration(
    make_connector=_connector,
    create_sandbox=_sandbox,
    options=frozenset(
        {
            "api_url",
            "oauth_url",
            "authorize_url",
            "web_url",
            "version",
            "client_id",
            "client_secret",
        }
    ),
    oauth=OAUTH,
)
