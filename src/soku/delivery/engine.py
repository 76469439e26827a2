"""What a worker carries while it delivers: its identity, HTTP client, policy and hooks."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import signal
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.fernet import InvalidToken

from soku.context import AppContext
from soku.delivery.group_commit import GroupCommit
from soku.delivery.metrics import DeliveryMetrics
from soku.delivery.policy import RetryPolicy
from soku.integrations.vault import TokenVault
from soku.platforms import LIMITS, PLATFORM_NAMES, ContentDraft
from soku.platforms.connector import AccountAccess, Connector, ErrorKind, PlatformError
from soku.platforms.registry import connector_for
from soku.platforms.transport import platform_client
from soku.posts.validation import draft_of

# Decrypted tokens are kept this long: a burst to one account decrypts them once, and a token
# refreshed meanwhile is a new sealed value, so it is never served stale.
TOKEN_CACHE_SECONDS = 60.0
TOKEN_CACHE_SIZE = 4096
DRAFT_CACHE_SIZE = 4096  # posts whose checked content is kept (a post's deliveries share it)


def worker_name() -> str:
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{secrets.token_hex(3)}"


class PlatformClients:
    """One pooled client per platform, each as large as that platform may use at once.

    A platform whose host hangs fills its own pool only.
    """

    def __init__(self, concurrency: int, timeout_seconds: float) -> None:
        self._clients = {
            name: platform_client(min(concurrency, LIMITS[name].max_concurrency), timeout_seconds)
            for name in PLATFORM_NAMES
        }

    def __call__(self, platform: str) -> httpx.AsyncClient:
        return self._clients[platform]

    def all(self) -> list[httpx.AsyncClient]:
        return list(self._clients.values())

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()


@dataclass
class Engine:
    ctx: AppContext
    clients: PlatformClients
    owner: str = field(default_factory=worker_name)
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        settings = self.ctx.settings
        self.vault = TokenVault(settings.resolved_secret_key)
        self.lease = dt.timedelta(seconds=settings.lease_seconds)
        self.metrics: DeliveryMetrics = self.ctx.metrics
        self.writes = GroupCommit(self.ctx.db)
        self._tokens: dict[str, tuple[str, float]] = {}
        self._drafts: dict[uuid.UUID, ContentDraft] = {}

    def draft(self, post_id: uuid.UUID, content: dict[str, Any]) -> ContentDraft:
        """A stored post's content as a draft, read once per post: a post's content never
        changes once accepted (only its schedule does), and its deliveries run close together."""
        draft = self._drafts.get(post_id)
        if draft is None:
            if len(self._drafts) >= DRAFT_CACHE_SIZE:
                self._drafts.clear()
            draft = self._drafts[post_id] = draft_of(content)
        return draft

    def open_token(self, sealed: str | None) -> str | None:
        """A stored token, decrypted (Fernet) or taken from the short-lived cache."""
        if sealed is None:
            return None
        now = time.monotonic()
        cached = self._tokens.get(sealed)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            token = self.vault.open(sealed)
        except InvalidToken:  # sealed under another SOKU_SECRET_KEY than this process's
            raise PlatformError(
                ErrorKind.server_error,  # retried: a process with the right key may take it
                "token_unreadable",
                "The account's stored token cannot be decrypted with this process's "
                "SOKU_SECRET_KEY: every Soku process must use the same key. If the key it "
                "was sealed with is lost, connect the account again (soku accounts connect); "
                "the delivery is retried.",
            ) from None
        assert token is not None
        if len(self._tokens) >= TOKEN_CACHE_SIZE:
            self._tokens.clear()
        self._tokens[sealed] = (token, now + TOKEN_CACHE_SECONDS)
        return token

    def connector(self, account: AccountAccess) -> Connector:
        settings = self.ctx.settings
        return connector_for(
            account,
            sandbox_fakes=settings.sandbox_fakes,
            sandbox_root=settings.sandbox_root,
            generic_url=settings.sandbox_base_url,
            options=settings.platform_options,
        )

    def crash_point(self, name: str) -> None:
        """Fault injection for the crash tests: die here, as SIGKILL would, if told to."""
        if self.ctx.settings.crash_at and self.ctx.settings.crash_at == name:
            os.kill(os.getpid(), signal.SIGKILL)
