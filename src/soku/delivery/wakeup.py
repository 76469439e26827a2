"""Waking workers when work is committed: an in-process event, and LISTEN/NOTIFY on PostgreSQL.

The API calls `notify_sql()` inside the transaction that creates deliveries (PostgreSQL
delivers a NOTIFY only on commit, so no worker wakes for work that was rolled back) and
`wake()` after the commit for workers in the same process. A worker listens on PostgreSQL
with a dedicated asyncpg connection; with another driver it falls back to its bounded poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncSession

CHANNEL = "soku_deliveries"
_NOTIFY = text("SELECT pg_notify(:channel, '')")
log = structlog.get_logger("soku.wakeup")


class Wakeup:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._event = asyncio.Event()
        self._listener: Any = None

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    async def notify_sql(self, session: AsyncSession) -> None:
        if self.is_postgres:
            await session.execute(_NOTIFY, {"channel": CHANNEL})

    def notify_in(self, connection: Connection) -> None:
        """`notify_sql` for a sync unit of work (`Database.run_write`)."""
        if self.is_postgres:
            connection.execute(_NOTIFY, {"channel": CHANNEL})

    def wake(self) -> None:
        self._event.set()

    async def wait(self, seconds: float) -> bool:
        """Sleep until woken or `seconds` pass; True when woken."""
        try:
            async with asyncio.timeout(max(0.0, seconds)):  # no task made, unlike wait_for
                await self._event.wait()
        except TimeoutError:
            return False
        finally:
            self._event.clear()
        return True

    async def listen(self) -> None:
        """Subscribe to NOTIFY (PostgreSQL with asyncpg); a no-op elsewhere."""
        if not self.database_url.startswith("postgresql+asyncpg") or self._listener is not None:
            return
        import asyncpg  # type: ignore[import-untyped]

        dsn = self.database_url.replace("postgresql+asyncpg", "postgresql", 1)
        try:
            self._listener = await asyncpg.connect(dsn)
            await self._listener.add_listener(CHANNEL, lambda *_args: self._event.set())
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("listen_failed", error=str(exc))
            self._listener = None

    async def aclose(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None
