"""Signing a webhook's body, and checking a signature as a receiver does.

`Soku-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body, keyed by the
endpoint's secret>`. The time inside the signed text lets a receiver refuse a replay of an
old delivery; comparing in constant time keeps the secret's bytes from leaking by timing.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Soku-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `<timestamp>.<body>`."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def header_value(secrets: str | list[str], body: bytes, timestamp: int | None = None) -> str:
    """`t=…,v1=…`, with one `v1` per secret: after a rotation the new secret's comes first and
    the previous one's follows, so a receiver holding either secret accepts it."""
    moment = int(time.time()) if timestamp is None else timestamp
    keys = [secrets] if isinstance(secrets, str) else secrets
    return ",".join([f"t={moment}", *(f"v1={signature(key, moment, body)}" for key in keys)])


def verify(
    secret: str,
    header: str,
    body: bytes,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Whether `header` signs `body` with `secret`, made within `tolerance` seconds of `now`."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        parts.setdefault(name, []).append(value)
    try:
        moment = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - moment) > tolerance:
        return False
    expected = signature(secret, moment, body)
    # as bytes: compare_digest refuses a str holding anything but ASCII (a forged header)
    wanted = expected.encode()
    return any(hmac.compare_digest(wanted, given.encode()) for given in parts.get("v1", []))
