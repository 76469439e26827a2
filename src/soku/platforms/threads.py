"""Threads (Meta Threads API): content rules, and where its connector and sandbox fake live."""

from __future__ import annotations

from typing import TYPE_CHECKING

from soku.platforms.base import ContentDraft, DeliveryLimits, PublishCap, RuleViolation
from soku.platforms.graph_platform import graph_integration
from soku.platforms.rules import TOO_MANY_LINKS, MediaRules, check_media, over_limit, text_length
from soku.platforms.text import find_urls, threads_length

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from starlette.types import ASGIApp

    from soku.platforms.base import Identities, OAuthCall
    from soku.platforms.graph_connector import GraphConnector

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


def _connector() -> type[GraphConnector]:
    from soku.platforms.threads_connector import ThreadsConnector

    return ThreadsConnector


def _sandbox(public_url: str, media_origin: str) -> ASGIApp:
    from soku.sandbox.threads import create_threads_fake

    return create_threads_fake(public_url, media_origin=media_origin)


async def _identify(call: OAuthCall, answer: Mapping[str, Any]) -> Identities:
    from soku.integrations.oauth_identity import identify_threads

    return await identify_threads(call, answer)


# threads.md, "Auth": the Threads app's id and secret; no PKCE; the code exchange is a POST
# with client_id and client_secret among its parameters, on the API's host.
INTEGRATION = graph_integration(
    _connector,
    _sandbox,
    _identify,
    scopes=("threads_basic", "threads_content_publish"),
    authorize_url="https://threads.net/oauth/authorize",
)
