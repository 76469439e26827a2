"""What one running service holds: settings, database, rate limiter, caches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from soku.auth.cache import KeyCache
from soku.config import Settings
from soku.db import Database
from soku.delivery.metrics import DeliveryMetrics
from soku.delivery.wakeup import Wakeup
from soku.media.storage import MediaStore, store_from_settings
from soku.ratelimit import RateLimiter


@dataclass
class AppContext:
    settings: Settings
    db: Database
    limiter: RateLimiter
    wakeup: Wakeup
    metrics: DeliveryMetrics
    media_store: MediaStore
    key_cache: KeyCache = field(default_factory=KeyCache)  # see soku.auth.cache

    @classmethod
    def build(cls, settings: Settings) -> AppContext:
        return cls(
            settings=settings,
            db=Database(settings.database_url, pool_size=settings.db_pool_size),
            limiter=RateLimiter(
                settings.rate_limit_plans, settings.rate_limit_endpoints, settings.redis_url
            ),
            wakeup=Wakeup(settings.database_url),
            metrics=DeliveryMetrics(),
            media_store=store_from_settings(settings.media_store),
        )

    async def aclose(self) -> None:
        await self.wakeup.aclose()
        await self.limiter.aclose()
        await self.db.dispose()


def get_context(request: Request) -> AppContext:
    ctx = request.app.state.ctx
    assert isinstance(ctx, AppContext)
    return ctx


async def _context_dependency(request: Request) -> AppContext:
    # async on purpose: FastAPI runs plain functions in a thread pool, which costs more
    # than the whole lookup
    return get_context(request)


Context = Annotated[AppContext, Depends(_context_dependency)]
