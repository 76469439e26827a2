"""What an X job knows so far: its user, its uploads and their round, and how X's answers read.

Uploaded media expire (`expires_after_secs`, 24 h in X's examples), so each upload's result
records when (`expires_at`), and `upload_round` starts a new round of uploads once the latest
round's media come within the connector's margin of it (the rounds are `connector.py`'s).
"""

from __future__ import annotations

import html
import re
import time
import unicodedata
from typing import Any

from soku.platforms.connector import (
    AccountAccess,
    ErrorKind,
    Job,
    PlatformError,
    current_round,
    latest_round,
    round_prefix,
)

MEDIA_LIFETIME = 86400.0  # seconds, when X's answer does not say (x.md, "Media id expiry")
_NUMERIC_ID = re.compile(r"^[0-9]{1,19}$")
_URL = re.compile(r"https?://\S+")


def upload_round(job: Job, margin: float) -> int:
    """The round of uploads to use: the latest, or a new one once its media near expiry."""

    def near_expiry(result: dict[str, Any]) -> bool:
        expires = result.get("expires_at")
        return isinstance(expires, int | float) and time.time() >= expires - margin

    return current_round(job.checkpoint.get("steps", {}), near_expiry)


def knows_user(account: AccountAccess) -> bool:
    user_id = account.platform_user_id or ""
    return bool(account.username) and _NUMERIC_ID.match(user_id) is not None


def cached_username(job: Job) -> str | None:
    cached = job.checkpoint.get("steps", {}).get("user")
    return job.account.username or (str(cached["username"]) if isinstance(cached, dict) else None)


def step_result(job: Job, name: str) -> dict[str, Any]:
    result = job.checkpoint.get("steps", {}).get(name)
    if not isinstance(result, dict):
        raise RuntimeError(f"delivery {job.delivery_id}: step {name} has no result yet")
    return result


def uploaded(job: Job) -> list[tuple[str, str | None]]:
    """(media id, media key) of each item uploaded in the latest round, in the post's order."""
    prefix = round_prefix(latest_round(job.checkpoint.get("steps", {})))
    if job.video_urls:
        step_result(job, prefix + "wait_processing")
        init = step_result(job, prefix + "init")
        return [(str(init["media_id"]), init.get("media_key"))]
    uploads = [step_result(job, f"{prefix}upload_{n}") for n in range(len(job.image_urls))]
    return [(str(upload["media_id"]), upload.get("media_key")) for upload in uploads]


def is_ours(text: str | None, keys: list[str | None], tweet: dict[str, Any]) -> bool:
    """Same media keys (unique to our uploads), else the same text once X's rendering is undone."""
    theirs = sorted((tweet.get("attachments") or {}).get("media_keys") or [])
    if keys and all(keys):
        return theirs == sorted(key for key in keys if key)
    if bool(theirs) != bool(keys):
        return False
    mine, shown = _comparable(text or ""), _comparable(str(tweet.get("text") or ""))
    if keys and shown != mine:  # X appends a t.co link to the media
        shown = shown.removesuffix("<url>").rstrip()
    return mine == shown


def _comparable(text: str) -> str:
    text = unicodedata.normalize("NFC", html.unescape(text))
    return " ".join(_URL.sub("<url>", text).split())


def data_of(body: dict[str, Any]) -> dict[str, Any]:
    data = body.get("data")
    if not isinstance(data, dict) or "id" not in data:
        message = "X answered without the expected `data` object."
        raise PlatformError(ErrorKind.server_error, "unreadable_answer", message, raw=body)
    return data


def expiry(media: dict[str, Any]) -> float:
    """When an uploaded media id expires, as a Unix time."""
    lifetime = seconds(media.get("expires_after_secs"))
    return time.time() + (MEDIA_LIFETIME if lifetime is None else lifetime)


def seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
