"""What a LinkedIn job knows so far: its author URN, and the results its checkpoint holds."""

from __future__ import annotations

import re
from typing import Any

from soku.platforms.connector import AccountAccess, ErrorKind, Job, PlatformError

_AUTHOR = re.compile(r"^urn:li:(person|organization):[^\s:]+$")


def author_of(account: AccountAccess) -> str | None:
    """The author URN the account names: a full URN, or a bare member id."""
    user = (account.platform_user_id or "").strip()
    if not user:
        return None
    urn = user if user.startswith("urn:") else f"urn:li:person:{user}"
    if not _AUTHOR.match(urn):
        message = f"The LinkedIn account names {user!r}, neither a member nor an organization."
        raise PlatformError(ErrorKind.permanent, "invalid_author", message)
    return urn


def cached_author(job: Job) -> str | None:
    """The author the `user` step found, when it ran."""
    cached = job.checkpoint.get("steps", {}).get("user")
    return str(cached["author"]) if isinstance(cached, dict) else None


def post_author(job: Job) -> str:
    """The URN the post goes out as; known once the `user` step has run, if it must."""
    found = author_of(job.account) or cached_author(job)
    if found is None:
        raise RuntimeError(f"delivery {job.delivery_id}: the author is not known yet")
    return found


def step_result(job: Job, name: str) -> dict[str, Any]:
    result = job.checkpoint.get("steps", {}).get(name)
    if not isinstance(result, dict):
        raise RuntimeError(f"delivery {job.delivery_id}: step {name} has no result yet")
    return result


def uploaded(job: Job) -> list[str]:
    """The URNs of our uploaded media, in the post's order (once they are AVAILABLE)."""
    if job.video_urls:
        return [str(step_result(job, "wait_processing")["video"])]
    if job.image_urls:
        return [str(urn) for urn in step_result(job, "wait_processing")["images"]]
    return []


def uploaded_so_far(job: Job) -> list[str]:
    """The URNs of the media LinkedIn has handed us for this job, processed or not."""
    steps = job.checkpoint.get("steps", {})
    if job.video_urls:
        init = steps.get("init")
        return [str(init["video"])] if isinstance(init, dict) else []
    uploads = [steps.get(f"upload_{n}") for n in range(len(job.image_urls))]
    return [str(u["image"]) for u in uploads if isinstance(u, dict)]
