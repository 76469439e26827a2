"""API keys: random, shown once, stored only as SHA-256."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "sk_live_"
DISPLAY_LENGTH = len(KEY_PREFIX) + 8


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_LENGTH]
