"""The LinkedIn connector: publishes through LinkedIn's versioned REST API, or its sandbox fake.

Follows the Community Management APIs at `LinkedIn-Version: 202610` (a setting: LinkedIn
retires each monthly version after about a year) with `X-Restli-Protocol-Version: 2.0.0`,
as /work/shared/platforms/linkedin.md describes them:

- the author: the account's `platform_user_id` holds a full URN (`urn:li:person:abc` or
  `urn:li:organization:123`); a bare id means a member (`urn:li:person:{id}`); when it is
  missing, a `user` step asks `GET /v2/userinfo` for the member's `sub`;
- images and a video: uploaded, then awaited until AVAILABLE, by the steps in
  `linkedin_media`; one image is `content.media`, several `content.multiImage`;
- `publish`: `POST /rest/posts`, the post URN from the `x-restli-id` header; the permalink is
  `https://www.linkedin.com/feed/update/{urn}/`; the text goes as "little text", its
  reserved characters escaped, except `#word` hashtags, which stay hashtags;
- `reconcile`: the author finder `GET /rest/posts?q=author` since `publishing_since` - 60 s,
  matched on our media URNs, else on the commentary; a 403 there (reading posts needs
  r_member_social or r_organization_social) means we cannot tell;
- `refresh`: `POST /oauth/v2/accessToken` with `grant_type=refresh_token`.

The calls themselves are in `linkedin_api`; what a job has learnt (its author, its steps'
results) is read through `linkedin_checkpoint`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

import httpx

from soku.platforms.connector import (
    AccountAccess,
    CannotTell,
    ErrorKind,
    Job,
    NotPublished,
    PlatformError,
    Published,
    ReconcileResult,
    RefreshedTokens,
    Step,
)
from soku.platforms.linkedin_api import LinkedInApi
from soku.platforms.linkedin_checkpoint import (
    author_of,
    cached_author,
    post_author,
    uploaded,
    uploaded_so_far,
)
from soku.platforms.linkedin_errors import map_error, refresh_error
from soku.platforms.linkedin_media import LinkedInMedia
from soku.platforms.token_refresh import RefreshGrant, refresh_tokens

API_URL = "https://api.linkedin.com"
OAUTH_URL = "https://www.linkedin.com/oauth/v2/accessToken"
WEB_URL = "https://www.linkedin.com"
VERSION = "202610"
RECONCILE_MARGIN = dt.timedelta(seconds=60)
RECONCILE_PAGES, RECONCILE_PAGE = 5, 50
GRANT = RefreshGrant("LinkedIn", map_error, refresh_error)
_RESERVED = re.compile(r"[\\|{}@\[\]()<>*_~]|#(?![^\W\d_])")


def little_text(text: str) -> str:
    """Our text as LinkedIn's commentary: reserved characters escaped, hashtags kept."""
    return _RESERVED.sub(lambda match: "\\" + match.group(), text)


class LinkedInConnector:
    platform = "linkedin"

    def __init__(
        self,
        api_url: str = API_URL,
        *,
        oauth_url: str = OAUTH_URL,
        web_url: str = WEB_URL,
        version: str = VERSION,
        client_id: str | None = None,
        client_secret: str | None = None,
        poll_seconds: float = 5.0,
        max_processing_wait: float = 600.0,
    ) -> None:
        if not re.fullmatch(r"[0-9]{6}", version):
            raise ValueError("version must be YYYYMM, e.g. 202610")
        self.api_url, self.web_url = api_url.rstrip("/"), web_url.rstrip("/")
        self.oauth_url, self.version = oauth_url, version
        self.client_id, self.client_secret = client_id, client_secret
        self.poll_seconds, self.max_processing_wait = poll_seconds, max_processing_wait

    def steps(self, job: Job) -> Sequence[Step]:
        named = (job.account.platform_user_id or "").strip()  # checked when first used
        head = [] if named else [Step("user", self._whoami)]
        media = LinkedInMedia(self._api, self.poll_seconds, self.max_processing_wait)
        if job.video_urls:
            return media.video_steps(job, head)
        return head + media.image_steps(job)

    async def publish(self, job: Job, client: httpx.AsyncClient) -> Published:
        body: dict[str, Any] = {
            "author": post_author(job),
            "commentary": little_text(job.text or ""),
            "visibility": "PUBLIC",
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        urns = uploaded(job)
        if len(urns) == 1:
            body["content"] = {"media": {"id": urns[0]}}
        elif urns:
            body["content"] = {"multiImage": {"images": [{"id": urn} for urn in urns]}}
        response = await self._api.send(client, job.account, "POST", "/rest/posts", json=body)
        post_urn = response.headers.get("x-restli-id", "").strip()
        if not post_urn:
            message = "LinkedIn accepted the post but its answer named no post (x-restli-id)."
            raise PlatformError(ErrorKind.server_error, "unreadable_answer", message)
        return Published(post_urn, self.permalink(post_urn), raw={"x-restli-id": post_urn})

    async def reconcile(self, job: Job, client: httpx.AsyncClient) -> ReconcileResult:
        author = author_of(job.account) or cached_author(job)
        if author is None:
            author = (await self._whoami(job, client))["author"]
        since = 0
        if job.publishing_since is not None:
            since = int((job.publishing_since - RECONCILE_MARGIN).timestamp() * 1000)
        matches: list[dict[str, Any]] = []
        params = {"q": "author", "author": author, "count": str(RECONCILE_PAGE)}
        params["sortBy"] = "LAST_MODIFIED"
        for page in range(RECONCILE_PAGES):
            params["start"] = str(page * RECONCILE_PAGE)
            try:
                listing = await self._api.call(
                    client, job.account, "GET", "/rest/posts", params=params, finder=True
                )
            except PlatformError as exc:
                if exc.http_status != 403:
                    raise
                return CannotTell(f"LinkedIn does not let Soku read {author}'s posts: {exc}")
            posts = [p for p in listing.get("elements") or [] if isinstance(p, dict)]
            recent = [p for p in posts if _number(p.get("createdAt")) >= since]
            matches += [p for p in recent if _is_ours(job, p)]
            if len(posts) < RECONCILE_PAGE or len(recent) < len(posts):
                break
        else:
            return CannotTell(f"Too many recent posts by {author} to check them all")
        if len(matches) > 1:
            return CannotTell(f"{len(matches)} posts by {author} match this delivery")
        if not matches:
            return NotPublished()
        urn = str(matches[0]["id"])
        return Published(urn, self.permalink(urn), raw=matches[0])

    async def refresh(self, account: AccountAccess, client: httpx.AsyncClient) -> RefreshedTokens:
        return await refresh_tokens(GRANT, self.oauth_url, self, account, client)

    def permalink(self, post_urn: str) -> str:
        return f"{self.web_url}/feed/update/{post_urn}/"

    async def _whoami(self, job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
        """The `user` step: the member whose token this is, as an author URN."""
        me = await self._api.call(client, job.account, "GET", "/v2/userinfo", versioned=False)
        if not me.get("sub"):
            message = "LinkedIn's userinfo answer carried no member id (sub)."
            raise PlatformError(ErrorKind.server_error, "unreadable_answer", message, raw=me)
        return {"author": f"urn:li:person:{me['sub']}"}

    @property
    def _api(self) -> LinkedInApi:
        return LinkedInApi(self.api_url, self.version)


def _is_ours(job: Job, post: dict[str, Any]) -> bool:
    """Same media URNs (unique to our uploads), else the same commentary and no media."""
    content = post.get("content")
    if not isinstance(content, dict):
        content = {}
    theirs = [str((content.get("media") or {}).get("id") or "")]
    theirs += [str(i.get("id")) for i in (content.get("multiImage") or {}).get("images") or []]
    theirs = [urn for urn in theirs if urn]
    mine = uploaded_so_far(job)
    if mine or theirs:
        return bool(mine) and theirs == mine
    return " ".join(str(post.get("commentary") or "").split()) == " ".join(
        little_text(job.text or "").split()
    )


def _number(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
