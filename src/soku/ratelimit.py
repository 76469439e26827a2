"""Per-key rate limits: a plan per caller, plus per-endpoint limits on top.

Model. A plan is a list of limits that must ALL pass, each a moving window
(`MovingWindowRateLimiter`, a true sliding window over the request timestamps). "Rate + burst"
becomes two windows: the burst allows up to rate+burst requests within any 60 s, and the
sustained rate is held by a longer window of rate x 10 per 10 minutes. Tier "100/min (+100)"
is therefore ["200/minute", "1000/10 minutes"]. The plan "unlimited" has no limits at all,
not even the endpoint ones. Endpoint limits apply on top of the plan, per identity and endpoint.

A request counts against every window only if every window allows it: the windows are read
first, then hit. Across processes (a shared Redis) another request can land between the read
and the hit; each hit is still atomic, so no window ever goes over its limit, but a request
refused at its last window may already have used one slot of the windows hit before it.

With Redis, storage errors are raised as `limits.errors.StorageError`.
"""

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.util import WindowStats
from redis.asyncio import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

UNLIMITED = "unlimited"

DEFAULT_PLANS: dict[str, list[str]] = {
    "anonymous": ["35/minute", "250/10 minutes"],  # 25/min + 10 burst
    "inactive": ["90/minute", "600/10 minutes"],  # 60/min + 30 burst
    "standard": ["200/minute", "1000/10 minutes"],  # 100/min + 100 burst
    "admin": ["700/minute", "2000/10 minutes"],  # 200/min + 500 burst
    UNLIMITED: [],
}

DEFAULT_ENDPOINT_LIMITS: dict[str, list[str]] = {
    "posts:create": ["30/minute"],
    "media:create": ["30/minute"],
    "templates:create": ["20/minute"],
}

# One window to check: the limit and the identifiers its counter is keyed by.
_Window = tuple[RateLimitItem, tuple[str, ...]]


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    limit: int | None
    remaining: int | None
    reset_at: float | None
    retry_after: int | None

    def headers(self) -> dict[str, str]:
        if self.limit is None or self.remaining is None or self.reset_at is None:
            return {}
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
        }
        if not self.allowed and self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return headers


_UNLIMITED_RESULT = RateLimitResult(True, None, None, None, None)


def parse_plans(raw: Mapping[str, Sequence[str]]) -> dict[str, list[RateLimitItem]]:
    """Parse {"plan": ["35/minute", ...]}; ValueError names the plan and the bad string."""
    return _parse(raw, "plan")


def _parse(raw: Mapping[str, Sequence[str]], kind: str) -> dict[str, list[RateLimitItem]]:
    parsed: dict[str, list[RateLimitItem]] = {}
    for name, specs in raw.items():
        if isinstance(specs, str):
            raise ValueError(f"{kind} {name!r}: expected a list of limits, got {specs!r}")
        items: list[RateLimitItem] = []
        for spec in specs:
            try:
                items.append(parse(spec))
            except ValueError as exc:
                raise ValueError(f"{kind} {name!r}: invalid rate limit {spec!r} ({exc})") from exc
        parsed[name] = items
    return parsed


def _redis_storage(uri: str, key_prefix: str) -> tuple[RedisStorage, ConnectionPool]:
    scheme, sep, _ = uri.partition("://")
    if not sep or scheme not in ("redis", "rediss"):
        raise ValueError(f"rate limit storage must be redis:// or rediss://, got {uri!r}")
    # ours, so that aclose() can close it; a Redis that does not answer fails a request in
    # seconds, not never (options in the URL, such as ?socket_timeout=5, take precedence).
    # One retry on a new connection: a pooled one the server closed (its `timeout`, a
    # restart) is not an outage; a timeout is not retried, so a stalled Redis answers in 2 s.
    retry = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    pool = ConnectionPool.from_url(uri, socket_connect_timeout=2.0, socket_timeout=2.0, retry=retry)
    storage = RedisStorage(
        f"async+{uri}",
        implementation="redispy",
        key_prefix=key_prefix,
        wrap_exceptions=True,
        connection_pool=pool,  # type: ignore[arg-type]  # limits types options as scalars only
    )
    return storage, pool


class RateLimiter:
    def __init__(
        self,
        plans: Mapping[str, Sequence[str]],
        endpoint_limits: Mapping[str, Sequence[str]],
        storage_uri: str | None = None,
        *,
        key_prefix: str = "soku-rl",  # Redis only; tests pass their own to stay isolated
    ) -> None:
        self._plans = parse_plans(plans)
        if self._plans.get(UNLIMITED):
            raise ValueError(f"plan {UNLIMITED!r} must have no limits")
        self._endpoints = _parse(endpoint_limits, "endpoint")
        self._pool: ConnectionPool | None = None
        self._storage: MemoryStorage | RedisStorage
        if storage_uri is None:
            self._storage = MemoryStorage()
        else:
            self._storage, self._pool = _redis_storage(storage_uri, key_prefix)
        self._limiter = MovingWindowRateLimiter(self._storage)

    async def hit(self, identity: str, plan: str, endpoint: str | None = None) -> RateLimitResult:
        """Count one request by `identity` if every window of its plan and endpoint allows it."""
        windows = self._windows(identity, plan, endpoint)
        if not windows:
            return _UNLIMITED_RESULT
        stats = await self._stats(windows)
        if all(s.remaining >= 1 for s in stats):
            if await self._acquire(windows):
                return _result(windows, stats, allowed=True)
            stats = await self._stats(windows)  # another process took the last slot
        return _result(windows, stats, allowed=False)

    def knows(self, plan: str) -> bool:
        return plan == UNLIMITED or plan in self._plans

    async def ready(self) -> bool:
        """Whether the counters can be reached: always in memory, a PING with Redis."""
        return await self._storage.check()

    async def aclose(self) -> None:
        await self._settle_expiry()
        if self._pool is not None:
            await self._pool.disconnect()

    async def reset(self) -> None:
        await self._settle_expiry()
        await self._storage.reset()

    async def _settle_expiry(self) -> None:
        # MemoryStorage's background expiry task fails with KeyError if reset() runs under it.
        if isinstance(self._storage, MemoryStorage):
            timer = self._storage.timer
            if timer is not None and not timer.done():
                await timer

    def _windows(self, identity: str, plan: str, endpoint: str | None) -> list[_Window]:
        if plan == UNLIMITED:
            return []
        if plan not in self._plans:
            raise ValueError(f"unknown rate limit plan {plan!r}")
        windows: list[_Window] = [(item, ("plan", identity)) for item in self._plans[plan]]
        if endpoint is not None:
            endpoint_items = self._endpoints.get(endpoint, [])
            windows += [(item, ("endpoint", endpoint, identity)) for item in endpoint_items]
        return windows

    async def _stats(self, windows: list[_Window]) -> list[WindowStats]:
        return [await self._limiter.get_window_stats(item, *ids) for item, ids in windows]

    async def _acquire(self, windows: list[_Window]) -> bool:
        for item, ids in windows:
            if not await self._limiter.hit(item, *ids):
                return False
        return True


def _result(windows: list[_Window], stats: list[WindowStats], *, allowed: bool) -> RateLimitResult:
    """Report the most constraining window: fewest remaining, then the latest reset."""
    now = time.time()
    rows: list[tuple[int, float, int]] = []
    for (item, _), stat in zip(windows, stats, strict=True):
        remaining = max(stat.remaining - 1 if allowed else stat.remaining, 0)
        # An empty window frees its first slot one period after this request.
        empty = stat.remaining >= item.amount
        reset_at = now + item.get_expiry() if empty else stat.reset_time
        rows.append((remaining, reset_at, item.amount))
    remaining, reset_at, limit = min(rows, key=lambda row: (row[0], -row[1]))
    retry_after = None if allowed else max(1, math.ceil(reset_at - now))
    return RateLimitResult(allowed, limit, remaining, reset_at, retry_after)
