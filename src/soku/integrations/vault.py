"""Platform tokens encrypted at rest (Fernet, key derived from SOKU_SECRET_KEY)."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet


class TokenVault:
    def __init__(self, secret_key: str) -> None:
        digest = hashlib.sha256(b"soku-token-vault:" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, token: str | None) -> str | None:
        return None if token is None else self._fernet.encrypt(token.encode()).decode()

    def open(self, sealed: str | None) -> str | None:
        return None if sealed is None else self._fernet.decrypt(sealed.encode()).decode()
