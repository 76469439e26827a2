"""YouTube (Data API v3, videos.insert): content rules, and where its connector and fake live."""

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
    oauth_endpoints,
)
from soku.platforms.rules import (
    INVALID_CHARACTERS,
    TEXT_REQUIRED,
    MediaRules,
    check_media,
    text_length,
)
from soku.platforms.text import plain_length, utf8_length

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from starlette.types import ASGIApp

    from soku.platforms.connector import Connector

MAX_TITLE_LENGTH = 100  # youtube.md: snippet.title required, <= 100 characters
MAX_DESCRIPTION_BYTES = 5000  # youtube.md: snippet.description <= 5000 bytes
FORBIDDEN_CHARACTERS = "<>"  # youtube.md: no < or > in title or description


def title_and_description(text: str | None) -> tuple[str, str]:
    """Split our text into YouTube's title (its first line) and description (the rest)."""
    first_line, _, rest = (text or "").partition("\n")
    return first_line.strip(), rest.strip()


class YouTubeRules:
    """A YouTube upload: exactly one video, no images, no text-only posts.

    The first line of our text is the video's title (required, at most 100 characters); the
    lines after it are the description (at most 5,000 UTF-8 bytes; youtube.md says bytes,
    aggregators say characters, and bytes is the stricter reading). Neither may hold < or >.
    """

    name = "youtube"
    label = "YouTube"
    # Video only: the Data API has no community-post endpoint (youtube.md).
    media = MediaRules(text_only=False, max_images=0)

    def check(self, draft: ContentDraft) -> list[RuleViolation]:
        title, description = title_and_description(draft.text)
        problems = check_media(self.name, self.label, self.media, draft)
        if title:
            problems += text_length(
                self.name,
                self.label,
                MAX_TITLE_LENGTH,
                plain_length(title),
                what="characters in a title (the first line of the text)",
            )
        else:
            message = (
                "YouTube needs a video title: the first line of the text, "
                f"at most {MAX_TITLE_LENGTH} characters."
            )
            problems.append(RuleViolation(self.name, TEXT_REQUIRED, message))
        problems += text_length(
            self.name,
            self.label,
            MAX_DESCRIPTION_BYTES,
            utf8_length(description),
            what="bytes in a description (the lines after the first)",
            note="UTF-8 bytes: an accented letter counts 2, an emoji 4",
        )
        if any(character in FORBIDDEN_CHARACTERS for character in title + description):
            message = "YouTube does not allow < or > in a video's title or description."
            problems.append(RuleViolation(self.name, INVALID_CHARACTERS, message))
        return problems


RULES = YouTubeRules()
# videos.insert: 100 calls per day by default (youtube.md).
LIMITS = DeliveryLimits(publish_caps=(PublishCap(100, 24 * 3600),))


def _connector(target: ConnectorTarget) -> Connector:
    from soku.platforms.connector import from_options
    from soku.platforms.youtube_connector import (
        API_URL,
        CHUNK_BYTES,
        TOKEN_URL,
        UPLOAD_URL,
        WEB_URL,
        YouTubeConnector,
    )

    if target.sandbox_url:  # the fake serves the API, the uploads, OAuth and the watch pages
        root = target.sandbox_url.rstrip("/")
        return YouTubeConnector(
            root,
            upload_url=f"{root}/upload/youtube/v3/videos",
            token_url=f"{root}/token",
            web_url=root,
        )
    options = target.options
    return from_options(
        "youtube",
        lambda: YouTubeConnector(
            options.get("api_url", API_URL),
            upload_url=options.get("upload_url", UPLOAD_URL),
            token_url=options.get("token_url", TOKEN_URL),
            web_url=options.get("web_url", WEB_URL),
            client_id=options.get("client_id"),
            client_secret=options.get("client_secret"),
            privacy_status=options.get("privacy_status", "public"),
            category_id=options.get("category_id", "22"),
            chunk_bytes=int(options.get("chunk_bytes", CHUNK_BYTES)),
        ),
    )


def _sandbox(public_url: str, media_origin: str) -> ASGIApp:
    from soku.sandbox.youtube import create_youtube_fake

    return create_youtube_fake(public_url)  # it takes the video as an upload: nothing to fetch


AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"  # youtube.md, "Auth"


def _oauth_endpoints(target: ConnectorTarget) -> OAuthEndpoints:
    from soku.platforms.youtube_connector import API_URL, TOKEN_URL

    # the fake serves the consent page, the token endpoint and the API
    return oauth_endpoints(
        target, ("/o/oauth2/v2/auth", "/token"), (AUTHORIZE_URL, TOKEN_URL, API_URL)
    )


async def _identify(call: OAuthCall, answer: Mapping[str, Any]) -> Identities:
    from soku.integrations.oauth_identity import identify_youtube

    return await identify_youtube(call, answer)


# Google's web-server flow: client_id and client_secret in the token request's body, no PKCE
# (optional for confidential clients); `access_type=offline` for a refresh token and
# `prompt=consent` so a second sign-in gets one again (youtube.md, "Auth"). `youtube.upload`
# publishes; `youtube.readonly` lets the sign-in name the channel (channels.list, mine=true).
OAUTH = OAuthSpec(
    endpoints=_oauth_endpoints,
    scopes=(
        "https://www.googleapis.com/auth/youtube.upload",
        "https://www.googleapis.com/auth/youtube.readonly",
    ),
    scope_separator=" ",
    pkce=False,
    client_auth="client_secret_post",
    identify=_identify,
    authorize_params=(("access_type", "offline"), ("prompt", "consent")),
)
INTEGRATION = PlatformIntegration(
    make_connector=_connector,
    create_sandbox=_sandbox,
    options=frozenset(
        {
            "api_url",
            "upload_url",
            "token_url",
            "authorize_url",
            "web_url",
            "client_id",
            "client_secret",
            "privacy_status",
            "category_id",
            "chunk_bytes",
        }
    ),
    oauth=OAUTH,
)
