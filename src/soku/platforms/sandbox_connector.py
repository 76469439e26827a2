"""The connector for the generic sandbox fake (`soku.sandbox.generic`), for any platform name.

Steps: `upload_<n>` per media URL (images first, then videos), then `wait_media` for video
posts. Publishing sends the text and the uploaded media ids; reconciliation looks for the same
text and media among the user's recent posts, since the fake, like every real platform, has
no idempotency key.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

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
    transport_error,
)

MAX_MEDIA_POLLS = 60
RECONCILE_MARGIN = dt.timedelta(seconds=60)
RECONCILE_LIMIT = 100


class GenericSandboxConnector:
    def __init__(self, platform: str, base_url: str) -> None:
        self.platform = platform
        self.base_url = base_url.rstrip("/")

    def steps(self, job: Job) -> Sequence[Step]:
        steps = [
            Step(f"upload_{index}", self._upload(url, kind))
            for index, (url, kind) in enumerate(_media_of(job))
        ]
        if job.video_urls:
            steps.append(Step("wait_media", self._wait_media))
        return steps

    async def publish(self, job: Job, client: httpx.AsyncClient) -> Published:
        body = {"text": job.text, "media_ids": _media_ids(job), "platform": self.platform}
        created = await self._call(client, job.account, "POST", _user_path(job, "posts"), json=body)
        return Published(platform_post_id=str(created["id"]), url=created.get("url"), raw=created)

    async def reconcile(self, job: Job, client: httpx.AsyncClient) -> ReconcileResult:
        params: dict[str, str | int] = {"limit": RECONCILE_LIMIT}
        if job.publishing_since is not None:
            params["since"] = (job.publishing_since - RECONCILE_MARGIN).isoformat()
        listing = await self._call(
            client, job.account, "GET", _user_path(job, "posts"), params=params
        )
        media_ids = _media_ids(job)
        matches = [
            post
            for post in listing.get("data", [])
            if (post.get("text") or "") == (job.text or "")
            and post.get("media_ids") == media_ids
            and post.get("platform") == self.platform
        ]
        if not matches:
            return NotPublished()
        if len(matches) > 1:
            return CannotTell(
                f"several identical posts ({len(matches)}) found on the account; "
                "cannot tell which one, if any, is this delivery's"
            )
        post = matches[0]
        return Published(platform_post_id=str(post["id"]), url=post.get("url"), raw=post)

    async def refresh(self, account: AccountAccess, client: httpx.AsyncClient) -> RefreshedTokens:
        if not account.refresh_token:
            raise PlatformError(
                ErrorKind.reauth_required,
                "no_refresh_token",
                "The account has no refresh token: connect it again.",
            )
        form = {"grant_type": "refresh_token", "refresh_token": account.refresh_token}
        tokens = await self._call(client, None, "POST", "/oauth/token", data=form)
        expires_in = tokens.get("expires_in")
        expires_at = (
            dt.datetime.now(dt.UTC) + dt.timedelta(seconds=float(expires_in))
            if expires_in is not None
            else None
        )
        return RefreshedTokens(
            access_token=str(tokens["access_token"]),
            refresh_token=tokens.get("refresh_token") or account.refresh_token,
            expires_at=expires_at,
        )

    def _upload(self, url: str, kind: str) -> StepFunction:
        async def run(job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
            body = {"url": url, "kind": kind}
            path = _user_path(job, "media")
            media = await self._call(client, job.account, "POST", path, json=body)
            return {"media_id": str(media["id"]), "status": str(media["status"])}

        return run

    async def _wait_media(self, job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
        """Polls every uploaded media item that was not ready until it is."""
        uploads = _uploads(job)
        for upload in uploads:
            if upload.get("status") != "ready":
                await self._poll_until_ready(job, client, str(upload["media_id"]))
        return {"media_ids": [str(upload["media_id"]) for upload in uploads], "status": "ready"}

    async def _poll_until_ready(self, job: Job, client: httpx.AsyncClient, media_id: str) -> None:
        for _ in range(MAX_MEDIA_POLLS):
            media = await self._call(client, job.account, "GET", f"/v1/media/{media_id}")
            if media.get("status") == "ready":
                return
            if media.get("status") == "failed":
                raise PlatformError(
                    ErrorKind.processing_failed,
                    "processing_failed",
                    f"The {self.platform} sandbox could not process media {media_id}.",
                    raw=media,
                )
            await asyncio.sleep(max(float(media.get("check_after_secs") or 0), 0))
        raise PlatformError(
            ErrorKind.server_error,
            "media_still_processing",
            f"Media {media_id} was still processing after {MAX_MEDIA_POLLS} checks.",
        )

    async def _call(
        self,
        client: httpx.AsyncClient,
        account: AccountAccess | None,
        method: str,
        path: str,
        **kwargs: Any,
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {_access_token(account)}"} if account else {}
        try:
            response = await client.request(method, self.base_url + path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise map_error(self.platform, exc) from exc
        if response.is_success:
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict):
                return body
        raise map_error(self.platform, response)


def map_error(platform: str, failure: httpx.Response | httpx.HTTPError) -> PlatformError:
    """Every failure of a call to the fake, in our terms."""
    where = f"the {platform} sandbox"
    if isinstance(failure, httpx.HTTPError):
        return transport_error(failure, where)
    status = failure.status_code
    raw, code, detail = _error_body(failure)
    kind = _kind_of(status, code)
    # The reset header comes on every answer; it says when to retry only for a 429.
    retry_after = (
        _retry_after(failure.headers, with_reset=kind is ErrorKind.rate_limited)
        if kind in (ErrorKind.rate_limited, ErrorKind.server_error)
        else None
    )
    return PlatformError(
        kind,
        code,
        f"{where.capitalize()} answered {status} ({code}): {detail}",
        http_status=status,
        retry_after=retry_after,
        raw=raw,
    )


def _kind_of(status: int, code: str) -> ErrorKind:
    if status == 429:
        return ErrorKind.rate_limited
    if status >= 500 or (status == 409 and code == "media_not_ready"):
        return ErrorKind.server_error
    if status == 401 and code == "token_expired":
        return ErrorKind.token_expired
    if status in (401, 403) or code == "invalid_grant":
        return ErrorKind.reauth_required
    if code == "processing_failed":
        return ErrorKind.processing_failed
    if 200 <= status < 300:  # a success we could not read
        return ErrorKind.server_error
    return ErrorKind.permanent


def _error_body(response: httpx.Response) -> tuple[Any, str, str]:
    try:
        raw: Any = response.json()
    except ValueError:
        raw = response.text
    error = raw.get("error") if isinstance(raw, dict) else None
    if isinstance(error, dict):
        return raw, str(error.get("code") or "unknown"), str(error.get("message") or "")
    if response.is_success:
        return raw, "unreadable_answer", "the answer was not the expected JSON object"
    return raw, f"http_{response.status_code}", response.reason_phrase


def _retry_after(headers: httpx.Headers, *, with_reset: bool) -> float | None:
    """Seconds to wait, from Retry-After (seconds or a date), else from x-rate-limit-reset."""
    now = time.time()
    value = headers.get("retry-after")
    if value:
        try:
            return max(float(value), 0.0)
        except ValueError:
            try:
                return max(email.utils.parsedate_to_datetime(value).timestamp() - now, 0.0)
            except (TypeError, ValueError):
                pass
    reset = headers.get("x-rate-limit-reset")
    if reset and with_reset:
        try:
            return max(float(reset) - now, 0.0)
        except ValueError:
            return None
    return None


def _access_token(account: AccountAccess) -> str:
    if not account.access_token:
        raise PlatformError(
            ErrorKind.reauth_required,
            "no_access_token",
            f"The {account.platform} account {account.account_id} has no access token.",
        )
    return account.access_token


def _media_of(job: Job) -> list[tuple[str, str]]:
    return [(url, "image") for url in job.image_urls] + [(url, "video") for url in job.video_urls]


def _user_path(job: Job, what: str) -> str:
    user_id = job.account.platform_user_id or job.account.account_id
    return f"/v1/users/{quote(user_id, safe='')}/{what}"


def _uploads(job: Job) -> list[dict[str, Any]]:
    """The upload steps' results, in order, from the checkpoint the engine keeps."""
    done: dict[str, Any] = job.checkpoint.get("steps", {})
    uploads = []
    for index in range(len(_media_of(job))):
        result = done.get(f"upload_{index}")
        if not isinstance(result, dict) or "media_id" not in result:
            raise RuntimeError(f"delivery {job.delivery_id}: upload_{index} has no result yet")
        uploads.append(result)
    return uploads


def _media_ids(job: Job) -> list[str]:
    return [str(upload["media_id"]) for upload in _uploads(job)]
