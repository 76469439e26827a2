import os
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from uuid import uuid4

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from soku.ratelimit import (
    DEFAULT_ENDPOINT_LIMITS,
    DEFAULT_PLANS,
    RateLimiter,
    RateLimitResult,
    parse_plans,
)

REDIS_URL = "redis://127.0.0.1:6379/15"
PLANS = {"small": ["3/minute"], "two_windows": ["5/minute", "4/10 minutes"], "bare": []}
ENDPOINTS = {"posts:create": ["2/minute"]}

MakeLimiter = Callable[..., RateLimiter]


async def _require_redis() -> None:
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        message = f"Redis not reachable at {REDIS_URL}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    finally:
        await client.aclose()


@pytest.fixture(params=["memory", "redis"])
def storage_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
async def new_limiter(storage_kind: str) -> AsyncIterator[MakeLimiter]:
    uri = None
    if storage_kind == "redis":
        await _require_redis()
        uri = REDIS_URL
    prefix = f"soku-rl-test-{uuid4().hex}"  # keeps parallel runs on db 15 apart
    made: list[RateLimiter] = []

    def make(
        plans: Mapping[str, Sequence[str]] = PLANS,
        endpoints: Mapping[str, Sequence[str]] = ENDPOINTS,
    ) -> RateLimiter:
        limiter = RateLimiter(plans, endpoints, uri, key_prefix=prefix)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.reset()
        await limiter.aclose()


async def _hits(limiter: RateLimiter, n: int, identity: str, plan: str) -> list[RateLimitResult]:
    return [await limiter.hit(identity, plan) for _ in range(n)]


async def test_allows_up_to_the_limit_then_refuses(new_limiter: MakeLimiter) -> None:
    limiter = new_limiter()
    results = await _hits(limiter, 4, "key:a", "small")

    assert [r.allowed for r in results] == [True, True, True, False]
    refused = results[-1]
    assert refused.limit == 3
    assert refused.remaining == 0
    assert refused.retry_after is not None
    assert 1 <= refused.retry_after <= 60
    assert refused.reset_at is not None
    assert time.time() < refused.reset_at <= time.time() + 60
    headers = refused.headers()
    assert headers["X-RateLimit-Limit"] == "3"
    assert headers["X-RateLimit-Remaining"] == "0"
    assert headers["Retry-After"] == str(refused.retry_after)
    assert int(headers["X-RateLimit-Reset"]) >= int(refused.reset_at)


async def test_remaining_counts_down_exactly(new_limiter: MakeLimiter) -> None:
    results = await _hits(new_limiter(), 3, "key:a", "small")

    assert [r.remaining for r in results] == [2, 1, 0]
    assert all(r.retry_after is None for r in results)
    assert "Retry-After" not in results[0].headers()
    assert results[0].headers()["X-RateLimit-Remaining"] == "2"


async def test_identities_are_independent(new_limiter: MakeLimiter) -> None:
    limiter = new_limiter()
    await _hits(limiter, 3, "key:a", "small")

    assert not (await limiter.hit("key:a", "small")).allowed
    other = await limiter.hit("ip:192.0.2.1", "small")
    assert other.allowed
    assert other.remaining == 2


async def test_most_constraining_window_is_reported(new_limiter: MakeLimiter) -> None:
    results = await _hits(new_limiter(), 5, "key:a", "two_windows")

    assert [(r.limit, r.remaining) for r in results[:4]] == [(4, 3), (4, 2), (4, 1), (4, 0)]
    assert not results[4].allowed
    assert results[4].limit == 4


async def test_endpoint_limit_refuses_first_without_using_plan_quota(
    new_limiter: MakeLimiter,
) -> None:
    limiter = new_limiter()
    first = await limiter.hit("key:a", "small", "posts:create")
    second = await limiter.hit("key:a", "small", "posts:create")
    refused = await limiter.hit("key:a", "small", "posts:create")

    assert (first.limit, first.remaining) == (2, 1)
    assert second.allowed
    assert not refused.allowed
    assert refused.limit == 2
    # The plan (3/minute) saw two requests, not three: one slot is left.
    plan_only = await limiter.hit("key:a", "small")
    assert plan_only.allowed
    assert (plan_only.limit, plan_only.remaining) == (3, 0)


async def test_unknown_endpoint_adds_no_limit(new_limiter: MakeLimiter) -> None:
    result = await new_limiter().hit("key:a", "small", "webhooks:list")

    assert (result.limit, result.remaining) == (3, 2)


async def test_plan_without_limits_still_gets_endpoint_limits(new_limiter: MakeLimiter) -> None:
    limiter = new_limiter()
    bare = await limiter.hit("key:a", "bare")
    with_endpoint = await limiter.hit("key:a", "bare", "posts:create")

    assert bare == RateLimitResult(True, None, None, None, None)
    assert (with_endpoint.limit, with_endpoint.remaining) == (2, 1)


async def test_unlimited_never_refuses(new_limiter: MakeLimiter) -> None:
    limiter = new_limiter(DEFAULT_PLANS, DEFAULT_ENDPOINT_LIMITS)
    for _ in range(1000):
        result = await limiter.hit("key:admin", "unlimited", "posts:create")
        assert result.allowed
    assert result.headers() == {}
    assert result == RateLimitResult(True, None, None, None, None)


async def test_unknown_plan_is_an_error(new_limiter: MakeLimiter) -> None:
    with pytest.raises(ValueError, match="'gold'"):
        await new_limiter().hit("key:a", "gold")


async def test_reset_clears_counters(new_limiter: MakeLimiter) -> None:
    limiter = new_limiter()
    await _hits(limiter, 3, "key:a", "small")

    await limiter.reset()

    assert (await limiter.hit("key:a", "small")).remaining == 2


async def test_instances_share_counters_only_through_redis(
    new_limiter: MakeLimiter, storage_kind: str
) -> None:
    first, second = new_limiter(), new_limiter()
    await _hits(first, 3, "key:a", "small")

    result = await second.hit("key:a", "small")

    if storage_kind == "redis":
        assert not result.allowed
    else:
        assert result.allowed
        assert result.remaining == 2


def test_default_plans_encode_rate_plus_burst() -> None:
    plans = parse_plans(DEFAULT_PLANS)

    def amounts(plan: str) -> list[tuple[int, int]]:
        return [(item.amount, item.get_expiry()) for item in plans[plan]]

    assert amounts("anonymous") == [(35, 60), (250, 600)]
    assert amounts("inactive") == [(90, 60), (600, 600)]
    assert amounts("standard") == [(200, 60), (1000, 600)]
    assert amounts("admin") == [(700, 60), (2000, 600)]
    assert plans["unlimited"] == []
    assert [i.amount for i in parse_plans(DEFAULT_ENDPOINT_LIMITS)["templates:create"]] == [20]


@pytest.mark.parametrize("bad", ["3/fortnight", "lots", "", "3 per"])
def test_parse_plans_names_plan_and_bad_string(bad: str) -> None:
    with pytest.raises(ValueError, match="plan 'gold'") as info:
        parse_plans({"silver": ["3/minute"], "gold": ["10/minute", bad]})

    assert repr(bad) in str(info.value)


def test_parse_plans_rejects_a_bare_string() -> None:
    with pytest.raises(ValueError, match=r"plan 'gold'.*list"):
        parse_plans({"gold": "10/minute"})


def test_bad_endpoint_limit_is_named() -> None:
    with pytest.raises(ValueError, match=r"endpoint 'posts:create'.*'often'"):
        RateLimiter(PLANS, {"posts:create": ["often"]})


def test_unlimited_plan_cannot_have_limits() -> None:
    with pytest.raises(ValueError, match="'unlimited'"):
        RateLimiter({"unlimited": ["3/minute"]}, {})


def test_unsupported_storage_uri_is_an_error() -> None:
    with pytest.raises(ValueError, match="memcached://"):
        RateLimiter(PLANS, ENDPOINTS, "memcached://127.0.0.1:11211")


async def test_a_connection_the_server_closed_is_replaced_not_a_storage_error() -> None:
    # Redis's `timeout` setting, a restart or a proxy close idle connections; the next
    # request must open a new one instead of failing with 503 rate_limit_store_unreachable.
    await _require_redis()
    name = f"soku-rl-test-{uuid4().hex}"
    limiter = RateLimiter(PLANS, ENDPOINTS, f"{REDIS_URL}?client_name={name}", key_prefix=name)
    admin = aioredis.Redis.from_url(REDIS_URL)
    try:
        assert (await limiter.hit("key:a", "small")).allowed
        clients = await admin.client_list()
        ours = [c["id"] for c in clients if c.get("name") == name]
        assert ours
        for client_id in ours:
            await admin.client_kill_filter(_id=client_id)

        result = await limiter.hit("key:a", "small")

        assert result.allowed
        assert result.remaining == 1
    finally:
        await limiter.reset()
        await limiter.aclose()
        await admin.aclose()
