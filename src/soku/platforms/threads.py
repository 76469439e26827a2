"""Threads (Meta Threads API): content rules, and where its connector and sandbox fake live."""

from __future__ import annotations

from typing import TYPE_CHECKING

from soku.platforms.base import (
    ConnectorTarget,
    ContentDraft,
    DeliveryLimits,
    Identities,
    OAuthCall,
    OAuthEndpoints,
    OAuthSpec,
    PlatformIntegration,
    PublishCap,
    RuleViolation,
)
from soku.platforms.rules import TOO_MANY_LINKS, MediaRules, check_media, over_limit, text_length
from soku.platforms.text import find_urls, threads_length

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from starlette.types import ASGIApp

    from soku.platforms.connector import Connector

MAX_TEXT_LENGTH = 500  # threads.md: "500 characters; emojis count as their UTF-8 bytes"
MAX_LINKS = 5  # threads.md: at most 5 unique links per post since 2025-12-22


class ThreadsRules:
    """A Threads post: text, one image, a carousel of images, or one video.

    Links are counted as unique http(s) URLs in the text; Threads also counts bare domains,
    which this check does not see.
    """

    name = "threads"
    label = "Threads"
    # Text-only allowed; carousel 2-20 items (threads.md), the product UI also says 20.
    media = MediaRules(text_only=True, max_images=20)

    def check(self, draft: ContentDraft) -> list[RuleViolation]:
        text = draft.text or ""
        count = threads_length(text)
        links = len(set(find_urls(text)))
        links_message = (
            f"Threads allows at most {MAX_LINKS} different links per post; this text has {links}."
        )
        return [
            *check_media(self.name, self.label, self.media, draft),
            *text_length(
                self.name,
                self.label,
                MAX_TEXT_LENGTH,
                count,
                note="each emoji counts as its UTF-8 bytes",
            ),
            *over_limit(self.name, TOO_MANY_LINKS, MAX_LINKS, links, links_message),
        ]


RULES = ThreadsRules()
# 250 API-published posts per 24 h moving window (threads.md).
LIMITS = DeliveryLimits(publish_caps=(PublishCap(250, 24 * 3600),))


def _connector(target: ConnectorTarget) -> Connector:
    from soku.platforms.threads_connector import API_URL, VERSION, WEB_URL, ThreadsConnector

    if target.sandbox_url:  # the fake serves the API and the permalink pages
        return ThreadsConnector(target.sandbox_url, web_url=target.sandbox_url)
    options = target.options
    return ThreadsConnector(
        options.get("api_url", API_URL),
        version=options.get("version", VERSION),
        web_url=options.get("web_url", WEB_URL),
    )


def _sandbox(public_url: str, media_origin: str) -> ASGIApp:
    from soku.sandbox.threads import create_threads_fake

    return create_threads_fake(public_url, media_origin=media_origin)


AUTHORIZE_URL = "https://threads.net/oauth/authorize"  # threads.md, "Auth"


def _oauth_endpoints(target: ConnectorTarget) -> OAuthEndpoints:
    from soku.platforms.threads_connector import API_URL, VERSION

    if target.sandbox_url:  # the fake serves the consent page and the API
        root, version = target.sandbox_url.rstrip("/"), VERSION
        authorize_url = f"{root}/oauth/authorize"
    else:
        root = target.options.get("api_url", API_URL).rstrip("/")
        version = target.options.get("version", VERSION).strip("/")
        authorize_url = target.options.get("authorize_url", AUTHORIZE_URL)
    return OAuthEndpoints(
        authorize_url,
        f"{root}/oauth/access_token",
        f"{root}/{version}",
        exchange_url=f"{root}/access_token",
    )


async def _identify(call: OAuthCall, answer: Mapping[str, Any]) -> Identities:
    from soku.integrations.oauth_identity import identify_threads

    return await identify_threads(call, answer)


# The Threads app's id and secret; no PKCE; the code exchange is a POST with client_id and
# client_secret among its parameters; the scopes are comma-separated (threads.md, "Auth").
OAUTH = OAuthSpec(
    endpoints=_oauth_endpoints,
    scopes=("threads_basic", "threads_content_publish"),
    scope_separator=",",
    pkce=False,
    client_auth="client_secret_post",
    identify=_identify,
)
INTEGRATION = PlatformIntegration(
    make_connector=_connector,
    create_sandbox=_sandbox,
    options=frozenset(
        {"api_url", "version", "web_url", "authorize_url", "client_id", "client_secret"}
    ),
    oauth=OAUTH,
)
