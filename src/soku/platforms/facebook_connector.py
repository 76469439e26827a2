"""The Facebook Pages connector: publishes through the Graph API, or its sandbox fake.

Follows Graph API v25.0 (configurable) as /work/shared/platforms/facebook.md describes it.
The account's access token is the Page token and its platform_user_id the Page id; every
call carries the token as `Authorization: OAuth <token>`.

- text: `publish` is `POST /{page-id}/feed` with `message` and `fields=id,permalink_url`;
- one photo: `publish` is `POST /{page-id}/photos` with `url` (our public media URL),
  `caption` and `published=true` → `{id, post_id}`;
- several photos: one `photo_<i>` step each, `POST /{page-id}/photos` with `url` and
  `published=false` → the photo id; `publish` is `POST /{page-id}/feed` with `message` and
  `attached_media[i]={"media_fbid": …}`;
- a video: `publish` is `POST /{page-id}/videos` with `file_url` (Facebook fetches our public
  URL: facebook.md's "simpler alternative", since our media already has one),
  `description` and `published=true`. That call is the point of no return, so there is no
  step before it. Uploading unpublished first and publishing the ready video later would
  let us wait for processing, but Meta's Page videos reference asks for the ADVERTISE task
  and `pages_manage_ads` to create an unpublished video, which a posting app does not
  have. Facebook processes the video after the call; a processing failure then shows on
  the Page, not in the delivery. `reconcile` looks for the video among the Page's recent
  videos (`GET /{page-id}/videos`), matched on its description.

Permalinks: the `permalink_url` field (a video's is a path on www.facebook.com), else
`GET /{id}?fields=permalink_url`, else `https://www.facebook.com/{post-id}` (a video:
`/reel/{video-id}`). Page tokens have no refresh endpoint: `refresh` re-derives the Page
token from a long-lived user token kept as the refresh token (`GET /me/accounts`, answer
after answer by its `after` cursor until the Page is found), else asks the user to connect
the Page again. Errors go through `meta_errors.graph_error`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import unicodedata
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
    StepFunction,
    response_json,
)
from soku.platforms.graph_paging import next_cursor
from soku.platforms.meta_errors import graph_error

GRAPH_URL = "https://graph.facebook.com"
# `GET /me/accounts` (a user's Pages with their tokens), as connecting and a refresh read it:
# 100 Pages an answer, the next by its `after` cursor, at most 50 answers (5,000 Pages)
PAGES_PER_ANSWER = 100
MAX_PAGE_ANSWERS = 50
PAGES_QUERY = {"fields": "id,name,access_token,tasks", "limit": str(PAGES_PER_ANSWER)}
# graph-video.facebook.com is the historical video host (facebook.md); Meta's Video API
# overview now says it is deprecated and videos go to graph.facebook.com. A setting.
VIDEO_URL = GRAPH_URL
WEB_URL = "https://www.facebook.com"
VERSION = "v25.0"
LABEL = "Facebook"
RECONCILE_MARGIN = dt.timedelta(seconds=120)
RECONCILE_PAGES = 5
LIST_FIELDS = "id,message,created_time,permalink_url,attachments{media_type,target,subattachments}"
VIDEO_FIELDS = "id,description,created_time,permalink_url"


class FacebookConnector:
    platform = "facebook"

    def __init__(
        self,
        graph_url: str = GRAPH_URL,
        *,
        video_url: str | None = None,
        web_url: str = WEB_URL,
        version: str = VERSION,
    ) -> None:
        self.graph_url = graph_url.rstrip("/")
        self.video_url = (video_url or VIDEO_URL).rstrip("/")
        self.web_url = web_url.rstrip("/")
        self.version = version.strip("/")

    def steps(self, job: Job) -> Sequence[Step]:
        if len(job.image_urls) > 1 and not job.video_urls:
            return [Step(f"photo_{n}", self._upload_photo(n)) for n in range(len(job.image_urls))]
        return []

    async def publish(self, job: Job, client: httpx.AsyncClient) -> Published:
        page, account = _page_id(job.account), job.account
        if job.video_urls:
            form = {"file_url": job.video_urls[0], "published": "true"}
            if job.text:
                form["description"] = job.text
            video = await self._call(
                client, account, "POST", f"/{page}/videos", data=form, host=self.video_url
            )
            video_id = _id(video, "id")
            url = await self._permalink(client, account, video_id, f"{self.web_url}/reel/")
            return Published(video_id, url, raw=video)
        if len(job.image_urls) == 1:
            form = {"url": job.image_urls[0], "published": "true"}
            if job.text:
                form["caption"] = job.text
            photo = await self._call(client, account, "POST", f"/{page}/photos", data=form)
            post_id = _id(photo, "post_id")
            url = await self._permalink(client, account, post_id, f"{self.web_url}/")
            return Published(post_id, url, raw=photo)
        form = {"message": job.text or ""}
        for index, photo_id in enumerate(_photo_ids(job)):
            form[f"attached_media[{index}]"] = f'{{"media_fbid":"{photo_id}"}}'
        params = {"fields": "id,permalink_url"}
        post = await self._call(client, account, "POST", f"/{page}/feed", params=params, data=form)
        post_id = _id(post, "id")
        url = self._absolute(post.get("permalink_url")) or await self._permalink(
            client, account, post_id, f"{self.web_url}/"
        )
        return Published(post_id, url, raw=post)

    async def reconcile(self, job: Job, client: httpx.AsyncClient) -> ReconcileResult:
        if job.video_urls:
            return await self._reconcile_video(job, client)
        page, account = _page_id(job.account), job.account
        params = {"fields": LIST_FIELDS, "limit": "100"}
        if job.publishing_since is not None:
            since = job.publishing_since - RECONCILE_MARGIN
            params["since"] = str(int(since.timestamp()))
        photo_ids = _photo_ids(job) if len(job.image_urls) > 1 else []
        matches: list[dict[str, Any]] = []
        for _ in range(RECONCILE_PAGES):
            listing = await self._call(
                client, account, "GET", f"/{page}/published_posts", params=params
            )
            posts = [p for p in listing.get("data") or [] if isinstance(p, dict)]
            matches += [p for p in posts if _is_ours(job, photo_ids, p)]
            after = next_cursor(listing)
            if not posts or after is None:
                break
            params["after"] = after
        if len(matches) > 1:
            return CannotTell(f"{len(matches)} posts on the Facebook Page match this delivery")
        if not matches:
            return NotPublished()
        post_id = str(matches[0]["id"])
        url = self._absolute(matches[0].get("permalink_url")) or f"{self.web_url}/{post_id}"
        return Published(post_id, url, raw=matches[0])

    async def refresh(self, account: AccountAccess, client: httpx.AsyncClient) -> RefreshedTokens:
        """A new Page token from the long-lived user token, if the account keeps one."""
        page = _page_id(account)
        if not account.refresh_token:
            message = "Facebook Page tokens cannot be refreshed: connect the Page again."
            raise PlatformError(ErrorKind.reauth_required, "no_refresh_token", message)
        user = dataclasses.replace(account, access_token=account.refresh_token)
        params = dict(PAGES_QUERY)
        for _ in range(MAX_PAGE_ANSWERS):  # the Page may be in any answer of the listing
            listing = await self._pages_of(client, user, params)
            for entry in listing.get("data") or []:
                if (
                    isinstance(entry, dict)
                    and str(entry.get("id")) == page
                    and entry.get("access_token")
                ):
                    token = str(entry["access_token"])
                    return RefreshedTokens(token, account.refresh_token, None)
            after = next_cursor(listing)
            if after is None or after == params.get("after"):
                break
            params["after"] = after
        message = f"The Facebook login no longer manages Page {page}: connect the Page again."
        raise PlatformError(ErrorKind.reauth_required, "page_not_managed", message, raw=listing)

    async def _pages_of(
        self, client: httpx.AsyncClient, user: AccountAccess, params: dict[str, str]
    ) -> dict[str, Any]:
        """One answer of the user's `/me/accounts`; an expired login needs the user."""
        try:
            return await self._call(client, user, "GET", "/me/accounts", params=params)
        except PlatformError as exc:
            if exc.kind is not ErrorKind.token_expired:
                raise
            message = "The Facebook login behind this Page has expired: connect the Page again."
            raise PlatformError(
                ErrorKind.reauth_required, "user_token_expired", message, raw=exc.raw
            ) from exc

    # --- steps ---------------------------------------------------------------------------

    def _upload_photo(self, index: int) -> StepFunction:
        async def run(job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
            url, page = job.image_urls[index], _page_id(job.account)
            form = {"url": url, "published": "false"}
            photo = await self._call(client, job.account, "POST", f"/{page}/photos", data=form)
            return {"photo_id": _id(photo, "id"), "url": url}

        return run

    async def _reconcile_video(self, job: Job, client: httpx.AsyncClient) -> ReconcileResult:
        """The Page's videos made since the publish began, matched on their description."""
        page, account = _page_id(job.account), job.account
        since = (job.publishing_since or dt.datetime.now(dt.UTC)) - RECONCILE_MARGIN
        params = {"fields": VIDEO_FIELDS, "limit": "25"}
        matches: list[dict[str, Any]] = []
        for _ in range(RECONCILE_PAGES):
            listing = await self._call(client, account, "GET", f"/{page}/videos", params=params)
            videos = [v for v in listing.get("data") or [] if isinstance(v, dict)]
            recent = [v for v in videos if _made_since(v, since)]
            wanted = _comparable(job.text or "")
            matches += [v for v in recent if _comparable(str(v.get("description") or "")) == wanted]
            after = next_cursor(listing)
            if len(recent) < len(videos) or after is None:
                break  # newest first: an older video ends the search
            params["after"] = after
        if len(matches) > 1:
            return CannotTell(f"{len(matches)} videos on the Facebook Page match this delivery")
        if not matches:
            return NotPublished()
        video_id = str(matches[0]["id"])
        url = self._absolute(matches[0].get("permalink_url")) or f"{self.web_url}/reel/{video_id}"
        return Published(video_id, url, raw=matches[0])

    # --- calls -----------------------------------------------------------------------------

    async def _permalink(
        self, client: httpx.AsyncClient, account: AccountAccess, object_id: str, fallback: str
    ) -> str:
        """The object's permalink_url; after a publish, a failed read only costs the link."""
        try:
            body = await self._call(
                client, account, "GET", f"/{object_id}", params={"fields": "permalink_url"}
            )
        except PlatformError:
            return fallback + object_id
        return self._absolute(body.get("permalink_url")) or fallback + object_id

    def _absolute(self, link: Any) -> str | None:
        if not isinstance(link, str) or not link:
            return None
        return link if "://" in link else f"{self.web_url}/{link.lstrip('/')}"

    async def _call(
        self,
        client: httpx.AsyncClient,
        account: AccountAccess,
        method: str,
        path: str,
        *,
        host: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One Graph call; its JSON object, or a PlatformError from `graph_error`."""
        headers = {"Authorization": f"OAuth {_access_token(account)}"}
        url = f"{host or self.graph_url}/{self.version}{path}"
        try:
            response = await client.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise graph_error(exc, LABEL) from exc
        body = response_json(response)
        if response.is_success and isinstance(body, dict) and "error" not in body:
            return body
        raise graph_error(response, LABEL)


# --- the job and its checkpoint ----------------------------------------------------------------


def _page_id(account: AccountAccess) -> str:
    if not account.platform_user_id:
        message = f"The Facebook account {account.account_id} has no Page id: connect it again."
        raise PlatformError(ErrorKind.reauth_required, "no_page_id", message)
    return account.platform_user_id


def _access_token(account: AccountAccess) -> str:
    if not account.access_token:
        message = f"The Facebook account {account.account_id} has no Page token."
        raise PlatformError(ErrorKind.reauth_required, "no_access_token", message)
    return account.access_token


def _result(job: Job, name: str) -> dict[str, Any]:
    result = job.checkpoint.get("steps", {}).get(name)
    if not isinstance(result, dict):
        raise RuntimeError(f"delivery {job.delivery_id}: step {name} has no result yet")
    return result


def _photo_ids(job: Job) -> list[str]:
    """The uploaded photo of each `photo_<i>` step, in the post's order."""
    if len(job.image_urls) < 2:
        return []
    return [str(_result(job, f"photo_{n}")["photo_id"]) for n in range(len(job.image_urls))]


def _id(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value):
        message = f"Facebook accepted the call but its answer carried no `{key}`."
        raise PlatformError(ErrorKind.server_error, "unreadable_answer", message, raw=body)
    return str(value)


def _made_since(item: dict[str, Any], since: dt.datetime) -> bool:
    """Graph times look like 2026-11-29T10:00:00+0000."""
    try:
        made = dt.datetime.strptime(str(item.get("created_time")), "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return True  # no readable time: let the text decide
    return made >= since


def _is_ours(job: Job, photo_ids: list[str], post: dict[str, Any]) -> bool:
    """Same photos (ids unique to our uploads), else the same text and kind of attachment."""
    attachments = [a for a in (post.get("attachments") or {}).get("data") or [] if a]
    if photo_ids:
        theirs = [
            str((sub.get("target") or {}).get("id"))
            for item in attachments
            for sub in ((item.get("subattachments") or {}).get("data") or [])
            if isinstance(sub, dict)
        ]
        if theirs:
            return sorted(theirs) == sorted(photo_ids)
    kinds = {str(item.get("media_type")) for item in attachments if isinstance(item, dict)}
    wanted = {"album"} if photo_ids else {"photo"} if job.image_urls else set()
    if kinds != wanted:
        return False
    return _comparable(job.text or "") == _comparable(str(post.get("message") or ""))


def _comparable(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())
