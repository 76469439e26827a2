"""The Snapchat connector's steps: the profile, then the media uploaded encrypted in parts.

- `profile` (only when the account names no profile id): `GET /v1/public_profiles/my_profile`;
- `media`: `POST /v1/public_profiles/{profile}/media` with the type (IMAGE or VIDEO), a name,
  and the base64 key and IV (`snapchat_crypto`); the answer names `media_id`, `add_path` and
  `finalize_path`;
- `part_<n>`: one `multipart/form-data` POST to `add_path` as returned (`action=ADD`,
  `part_number` from 1, `file` the part's ciphertext), each part read from our store by
  byte range, so no more than one part is ever held;
- `finalize`: a POST to `finalize_path` (`action=FINALIZE`).

A container lives 24 h (snapchat.md): once the `media` result of the steps done is older
than `container_max_age`, `steps()` lists a new round of them (`r2_media`, `r2_part_0`, …)
with a key derived for that round, and the publish uses the latest.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import httpx

from soku.platforms import media_reader
from soku.platforms.connector import (
    ErrorKind,
    GrowingSteps,
    Job,
    PlatformError,
    Step,
    StepFunction,
    current_round,
    round_prefix,
)
from soku.platforms.snapchat_api import SnapchatApi
from soku.platforms.snapchat_crypto import MediaKey, PartPlan, decode_block, encode_block

MAX_IMAGE_BYTES = 20 * 1024 * 1024  # Story image: JPEG/PNG up to 20 MB (snapchat.md)
MAX_VIDEO_BYTES = 1024 * 1024 * 1024  # the total limit of an upload: 1 GB (snapchat.md, C)
CONTAINER_MAX_AGE = 23 * 3600  # a media container lives 24 h
MY_PROFILE = "/v1/public_profiles/my_profile"
MAX_NAME = 100  # (U) no documented limit on a container's name: ours stay short


class SnapchatUpload:
    """The steps of one job, parts of at most `part_bytes` of ciphertext each."""

    def __init__(self, api: SnapchatApi, part_bytes: int, container_max_age: float) -> None:
        self.api, self.part_bytes = api, part_bytes
        self.container_max_age = container_max_age

    def steps(self, job: Job) -> Sequence[Step]:
        named = (job.account.platform_user_id or "").strip()
        head = [] if named else [Step("profile", self.whoami)]
        number = current_round(job.checkpoint.get("steps", {}), self._stale)
        prefix = round_prefix(number)

        def current() -> list[Step]:
            made = job.checkpoint.get("steps", {}).get(f"{prefix}media")
            parts = int(made["parts"]) if isinstance(made, dict) else 0
            return [
                *head,
                Step(f"{prefix}media", self._media(number)),
                *(Step(f"{prefix}part_{n}", self._part(prefix, n)) for n in range(parts)),
                Step(f"{prefix}finalize", self._finalize(prefix)),
            ]

        return GrowingSteps(current)

    async def whoami(self, job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
        """The `profile` step: the Public Profile whose token this is."""
        answer = await self.api.call(client, job.account, "GET", MY_PROFILE)
        return read_profile(answer)

    def _stale(self, result: dict[str, Any]) -> bool:
        made = result.get("created_at")
        return isinstance(made, int | float) and time.time() - made > self.container_max_age

    def _media(self, number: int) -> StepFunction:
        async def run(job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
            video = bool(job.video_urls)
            url = job.video_urls[0] if video else job.image_urls[0]
            total, _ = await media_reader.measure(client, url)
            _check_size(total, video)
            plan = PartPlan(total, self.part_bytes)
            key = MediaKey.derive(job.delivery_id, job.post_id, number)
            # a Story has no text: our text names its media, as the profile's owner sees it
            name = " ".join((job.text or "").split())[:MAX_NAME] or f"soku-{job.delivery_id}"
            body = {"type": "VIDEO" if video else "IMAGE", "name": name, **key.sent()}
            path = f"/v1/public_profiles/{profile_id(job)}/media"
            answer = await self.api.call(client, job.account, "POST", path, json=body)
            made = _container(answer)
            made.update(total_bytes=total, part_bytes=self.part_bytes, parts=plan.count)
            made.update(type=body["type"], round=number, created_at=int(time.time()))
            return made

        return run

    def _part(self, prefix: str, index: int) -> StepFunction:
        async def run(job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
            made = step_result(job, f"{prefix}media")
            plan = PartPlan(made["total_bytes"], made["part_bytes"])
            chain = None
            if index:
                chain = decode_block(step_result(job, f"{prefix}part_{index - 1}")["chain"])
            start, size = plan.span(index)
            url = job.video_urls[0] if job.video_urls else job.image_urls[0]
            data = await media_reader.read_range(client, url, start, size)
            key = MediaKey.derive(job.delivery_id, job.post_id, made["round"])
            sealed = key.encrypt(data, chain, last=index == plan.count - 1)
            fields = {"action": "ADD", "part_number": str(index + 1)}
            await self.api.multipart(client, job.account, made["add_path"], fields, sealed)
            return {
                "part_number": index + 1,
                "bytes": len(sealed),
                "chain": encode_block(sealed[-16:]),
            }

        return run

    def _finalize(self, prefix: str) -> StepFunction:
        async def run(job: Job, client: httpx.AsyncClient) -> dict[str, Any]:
            made, done = step_result(job, f"{prefix}media"), job.checkpoint.get("steps", {})
            if any(f"{prefix}part_{n}" not in done for n in range(made["parts"])):
                message = "Some media parts are not uploaded yet; the next attempt sends them."
                raise PlatformError(ErrorKind.server_error, "upload_incomplete", message)
            fields = {"action": "FINALIZE"}
            await self.api.multipart(client, job.account, made["finalize_path"], fields)
            return {"media_id": made["media_id"], "parts": made["parts"]}

        return run


def read_profile(answer: dict[str, Any]) -> dict[str, Any]:
    """The profile id and user name of a `my_profile` answer."""
    profile = answer.get("public_profile")
    if not isinstance(profile, dict) or not profile.get("id"):
        message = "Snapchat's my_profile answer named no Public Profile (public_profile.id)."
        raise PlatformError(ErrorKind.server_error, "unreadable_answer", message, raw=answer)
    name = profile.get("snap_user_name")
    return {"profile_id": str(profile["id"]), "username": str(name) if name else None}


def profile_id(job: Job) -> str:
    """The Public Profile the post goes to: the account's, else the `profile` step's."""
    named = (job.account.platform_user_id or "").strip()
    if named:
        return named
    return str(step_result(job, "profile")["profile_id"])


def step_result(job: Job, name: str) -> dict[str, Any]:
    result = job.checkpoint.get("steps", {}).get(name)
    if not isinstance(result, dict):
        raise RuntimeError(f"delivery {job.delivery_id}: step {name} has no result yet")
    return result


def _container(answer: dict[str, Any]) -> dict[str, Any]:
    """The media id and the upload paths of a container's answer, as returned."""
    names = ("media_id", "add_path", "finalize_path")
    if not all(isinstance(answer.get(name), str) and answer[name] for name in names):
        message = "Snapchat made no media container we can read (media_id, add_path)."
        raise PlatformError(ErrorKind.server_error, "unreadable_answer", message, raw=answer)
    return {name: str(answer[name]) for name in names}


def _check_size(total: int, video: bool) -> None:
    limit = MAX_VIDEO_BYTES if video else MAX_IMAGE_BYTES
    if not 0 < total <= limit:
        what = "videos" if video else "images"
        message = f"Snapchat takes {what} of up to {limit} bytes; this one has {total}."
        raise PlatformError(ErrorKind.permanent, "media_too_large", message)
