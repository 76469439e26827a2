"""Rate limits through the API: headers, 429 with Retry-After, plans, endpoint limit, Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest

from soku import migrate
from soku.app import create_app
from soku.context import AppContext
from tests.api.helpers import assert_error, text_post
from tests.conftest import Caller, make_caller, make_settings, unavailable

pytestmark = pytest.mark.asyncio
RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")
PLANS = {
    "anonymous": ["3/minute"],
    "inactive": ["4/minute"],
    "tiny": ["5/minute"],
    "standard": ["200/minute"],
    "unlimited": [],
}
AppFactory = Callable[..., AbstractAsyncContextManager[tuple[AppContext, httpx.AsyncClient]]]


@pytest.fixture
def limited_app(tmp_path: Path) -> AppFactory:
    @asynccontextmanager
    async def build(
        name: str = "a", redis_url: str | None = None, database_url: str | None = None
    ) -> AsyncIterator[tuple[AppContext, httpx.AsyncClient]]:
        settings = make_settings(
            tmp_path / name, database_url, rate_limit_plans=PLANS, redis_url=redis_url
        )
        ctx = AppContext.build(settings)
        await migrate.upgrade(ctx.db.engine)
        transport = httpx.ASGITransport(app=create_app(ctx=ctx))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield ctx, client
        await ctx.aclose()

    return build


async def test_headers_on_success_and_on_errors(
    client: httpx.AsyncClient, backend: AppContext
) -> None:
    caller = await make_caller(backend, plan="standard")
    ok = await client.post("/v1/posts", json=text_post("x"), headers=caller.headers)
    bad = await client.post("/v1/posts", json=text_post("x", text=""), headers=caller.headers)
    listed = await client.get("/v1/posts", headers=caller.headers)
    for response in (ok, bad, listed):
        assert all(h in response.headers for h in RATE_HEADERS), response.headers
    assert ok.headers["x-ratelimit-limit"] == "30"  # the endpoint limit is the tighter one
    assert int(bad.headers["x-ratelimit-remaining"]) == 28
    assert listed.headers["x-ratelimit-limit"] == "200"


async def test_post_endpoint_limit_is_30_per_minute(
    client: httpx.AsyncClient, backend: AppContext
) -> None:
    caller = await make_caller(backend, plan="standard")
    for i in range(30):
        response = await client.post(
            "/v1/posts", json=text_post("x", text=f"n{i}"), headers=caller.headers
        )
        assert response.status_code == 201, response.text
    refused = await client.post(
        "/v1/posts", json=text_post("x", text="one more"), headers=caller.headers
    )
    error = assert_error(refused, 429, "rate_limit_exceeded")
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert error["details"]["retryAfterSeconds"] == int(refused.headers["retry-after"])
    assert (await client.get("/v1/posts", headers=caller.headers)).status_code == 200


async def test_unlimited_plan_has_no_limits(client: httpx.AsyncClient, caller: Caller) -> None:
    for i in range(40):
        response = await client.post(
            "/v1/posts", json=text_post("x", text=f"u{i}"), headers=caller.headers
        )
        assert response.status_code == 201
        assert "x-ratelimit-limit" not in response.headers


async def test_plans_are_configurable(limited_app: AppFactory) -> None:
    async with limited_app() as (ctx, client):
        caller = await make_caller(ctx, plan="tiny")
        codes = [
            (await client.get("/v1/posts", headers=caller.headers)).status_code for _ in range(6)
        ]
        assert codes == [200] * 5 + [429]


async def test_keys_are_counted_separately(limited_app: AppFactory) -> None:
    async with limited_app() as (ctx, client):
        one, two = await make_caller(ctx, plan="tiny"), await make_caller(ctx, plan="tiny")
        for _ in range(5):
            await client.get("/v1/posts", headers=one.headers)
        assert (await client.get("/v1/posts", headers=two.headers)).status_code == 200


async def test_callers_without_a_key_are_limited_by_address(limited_app: AppFactory) -> None:
    async with limited_app() as (_ctx, client):
        codes = [(await client.get("/v1/posts")).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]


async def test_lapsed_subscription_gets_the_inactive_plan(limited_app: AppFactory) -> None:
    from soku.auth.models import SubscriptionStatus

    async with limited_app() as (ctx, client):
        caller = await make_caller(ctx, plan="tiny", subscription=SubscriptionStatus.canceled)
        first = await client.get("/v1/posts", headers=caller.headers)
        assert first.status_code == 403 and first.headers["x-ratelimit-limit"] == "4"


async def test_redis_storage_is_shared_between_instances(limited_app: AppFactory) -> None:
    import redis.asyncio as aioredis

    url = "redis://127.0.0.1:6379/14"
    try:
        probe = aioredis.from_url(url)
        await probe.ping()
        await probe.aclose()
    except Exception as exc:
        unavailable("Redis", exc)
    async with limited_app("r1", redis_url=url) as (ctx, one):
        caller = await make_caller(ctx, plan="tiny")
        async with limited_app("r2", redis_url=url, database_url=ctx.settings.database_url) as (
            _c,
            two,
        ):
            codes = []
            for i in range(6):
                client = one if i % 2 == 0 else two
                codes.append((await client.get("/v1/posts", headers=caller.headers)).status_code)
            assert codes == [200] * 5 + [429]


async def test_an_unreachable_redis_is_503_and_not_ready(limited_app: AppFactory) -> None:
    from tests.asgi_server import free_port

    async with limited_app("down", redis_url=f"redis://127.0.0.1:{free_port()}/0") as (
        ctx,
        client,
    ):
        caller = await make_caller(ctx, plan="tiny")
        ready = await client.get("/readyz")
        error = assert_error(ready, 503, "service_unavailable")
        assert error["details"] == {"reason": "rate_limit_store_unreachable"}
        assert "Redis" in error["message"]
        for response in (
            await client.get("/v1/posts", headers=caller.headers),
            await client.post("/v1/posts", json=text_post("x"), headers=caller.headers),
            await client.get("/v1/posts"),  # keyless: counted by address, in Redis too
        ):
            error = assert_error(response, 503, "service_unavailable")
            assert error["details"] == {"reason": "rate_limit_store_unreachable"}
        assert (await client.get("/healthz")).status_code == 200  # the process is up


async def test_a_plan_the_settings_no_longer_name_counts_as_the_default(
    limited_app: AppFactory,
) -> None:
    from sqlalchemy import update

    from soku.auth.models import User

    async with limited_app() as (ctx, client):
        caller = await make_caller(ctx, plan="tiny")
        async with ctx.db.transaction() as session:  # a plan removed from SOKU_RATE_LIMIT_PLANS
            await session.execute(update(User).where(User.id == caller.user_id).values(plan="gold"))
        response = await client.get("/v1/posts", headers=caller.headers)
        assert response.status_code == 200, response.text
        assert response.headers["x-ratelimit-limit"] == "200"  # standard, the default plan


async def test_keyless_bad_bodies_are_limited_by_address(limited_app: AppFactory) -> None:
    async with limited_app() as (_ctx, client):
        headers = {"content-type": "application/json"}
        answers = [await client.post("/v1/posts", content=b"{", headers=headers) for _ in range(4)]
        assert [a.status_code for a in answers] == [401, 401, 401, 429]
        assert all(h in a.headers for a in answers for h in RATE_HEADERS)


async def test_refused_bodies_use_quota_and_carry_the_headers(limited_app: AppFactory) -> None:
    async with limited_app() as (ctx, client):
        caller = await make_caller(ctx, plan="tiny")
        bad_json = {**caller.headers, "content-type": "application/json"}
        not_json = {**caller.headers, "content-type": "text/plain"}
        answers = [
            await client.post("/v1/posts", content=b"{", headers=bad_json),
            await client.post("/v1/posts", content=b"{}", headers=not_json),
            await client.post("/v1/media", content=b"[", headers=bad_json),
            await client.post("/v1/media/upload", json={"file": "x"}, headers=caller.headers),
            await client.patch("/v1/posts/nope", content=b"{", headers=bad_json),
        ]
        assert [a.status_code for a in answers] == [400, 415, 400, 415, 400]
        remaining = [int(a.headers["x-ratelimit-remaining"]) for a in answers]
        assert remaining == [4, 3, 2, 1, 0]
        refused = await client.post("/v1/posts", content=b"{", headers=bad_json)
        assert_error(refused, 429, "rate_limit_exceeded")
