"""The envelope for every error, FastAPI's own included; authentication and subscriptions."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from soku import operations
from soku.auth.models import SubscriptionStatus
from soku.context import AppContext
from tests.api.helpers import REQUEST_ID, assert_error, raw_exchange, text_post
from tests.conftest import Caller, make_caller

pytestmark = pytest.mark.asyncio


async def test_missing_key(client: httpx.AsyncClient) -> None:
    error = assert_error(await client.post("/v1/posts", json=text_post("x")), 401, "unauthorized")
    assert error["message"] == "Missing or invalid soku-api-key"


async def test_unknown_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/posts", headers={"soku-api-key": "sk_live_nope"})
    assert assert_error(response, 401, "unauthorized")["message"] == "Invalid API key"


async def test_revoked_key(backend: AppContext, client: httpx.AsyncClient, caller: Caller) -> None:
    assert (await client.get("/v1/posts", headers=caller.headers)).status_code == 200
    async with backend.db.transaction() as session:
        await operations.revoke_key(session, caller.key)
    response = await client.get("/v1/posts", headers=caller.headers)
    assert assert_error(response, 401, "unauthorized")["message"] == "API key revoked"


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (SubscriptionStatus.none, "Subscription required"),
        (SubscriptionStatus.past_due, "Subscription inactive or expired"),
        (SubscriptionStatus.canceled, "Subscription inactive or expired"),
    ],
)
async def test_subscription_must_be_active(
    backend: AppContext, client: httpx.AsyncClient, status: SubscriptionStatus, message: str
) -> None:
    caller = await make_caller(backend, subscription=status)
    response = await client.post("/v1/posts", json=text_post("x"), headers=caller.headers)
    assert assert_error(response, 403, "forbidden")["message"] == message
    listing = await client.get("/v1/posts", headers=caller.headers)
    assert_error(listing, 403, "forbidden")


async def test_trialing_may_post(backend: AppContext, client: httpx.AsyncClient) -> None:
    caller = await make_caller(backend, subscription=SubscriptionStatus.trialing)
    response = await client.post("/v1/posts", json=text_post("x"), headers=caller.headers)
    assert response.status_code == 201, response.text


async def test_subscription_change_takes_effect_at_once(
    backend: AppContext, client: httpx.AsyncClient, caller: Caller
) -> None:
    async with backend.db.transaction() as session:
        await operations.update_user(
            session, backend.settings, caller.email, subscription=SubscriptionStatus.canceled
        )
    assert_error(await client.get("/v1/posts", headers=caller.headers), 403, "forbidden")


async def test_invalid_json(client: httpx.AsyncClient, caller: Caller) -> None:
    response = await client.post(
        "/v1/posts",
        content=b'{"post": ',
        headers={**caller.headers, "content-type": "application/json"},
    )
    error = assert_error(response, 400, "validation_error")
    assert error["details"]["reason"] == "invalid_json"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_wrong_content_type(
    client: httpx.AsyncClient, caller: Caller, content_type: str | None
) -> None:
    headers = dict(caller.headers)
    if content_type:
        headers["content-type"] = content_type
    response = await client.post("/v1/posts", content=b'{"a": 1}', headers=headers)
    error = assert_error(response, 415, "unsupported_media_type")
    assert error["details"]["contentType"] == content_type


async def test_json_with_charset_is_fine(client: httpx.AsyncClient, caller: Caller) -> None:
    import json

    response = await client.post(
        "/v1/posts",
        content=json.dumps(text_post("x")).encode(),
        headers={**caller.headers, "content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201, response.text


async def test_unknown_route(client: httpx.AsyncClient) -> None:
    error = assert_error(await client.get("/v2/nothing"), 404, "not_found")
    assert "/v2/nothing" in error["message"]


async def test_wrong_method(client: httpx.AsyncClient) -> None:
    error = assert_error(await client.put("/v1/posts", json={}), 405, "method_not_allowed")
    assert "PUT" in error["message"]


async def test_body_over_the_limit_declared(
    backend: AppContext, client: httpx.AsyncClient, caller: Caller
) -> None:
    big = b"{" + b" " * backend.settings.max_body_bytes + b"}"
    response = await client.post(
        "/v1/posts", content=big, headers={**caller.headers, "content-type": "application/json"}
    )
    error = assert_error(response, 413, "payload_too_large")
    assert error["details"]["maxBytes"] == backend.settings.max_body_bytes


async def test_body_over_the_limit_streamed(
    backend: AppContext, client: httpx.AsyncClient, caller: Caller
) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(backend.settings.max_body_bytes // 65536 + 2):
            yield b" " * 65536

    response = await client.post(
        "/v1/posts",
        content=chunks(),
        headers={**caller.headers, "content-type": "application/json"},
    )
    assert_error(response, 413, "payload_too_large")


async def test_unknown_post_id_is_404(client: httpx.AsyncClient, caller: Caller) -> None:
    for post_id in ("not-a-uuid", "6f1c1d3e-4b8a-4c53-9d3e-1f0c0e7b2a11"):
        response = await client.get(f"/v1/posts/{post_id}", headers=caller.headers)
        assert_error(response, 404, "not_found")


async def test_request_id_on_success_too(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"].startswith("req_")


async def test_readyz(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_readyz_without_database(tmp_path: object) -> None:
    from pathlib import Path

    from soku.app import create_app
    from tests.conftest import make_settings

    assert isinstance(tmp_path, Path)
    settings = make_settings(
        tmp_path, "postgresql+asyncpg://postgres@127.0.0.1:1/none", db_pool_size=1
    )
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/healthz")).status_code == 200
        assert_error(await c.get("/readyz"), 503, "service_unavailable")


@pytest.mark.parametrize("driver", ["asyncpg", "psycopg"])
async def test_a_database_out_of_reach_is_503_not_500(tmp_path: object, driver: str) -> None:
    from pathlib import Path

    from soku.app import create_app
    from tests.asgi_server import free_port
    from tests.conftest import make_settings

    assert isinstance(tmp_path, Path)
    url = f"postgresql+{driver}://postgres@127.0.0.1:{free_port()}/none"
    app = create_app(make_settings(tmp_path, url, db_pool_size=1))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        answers = [
            await c.get("/v1/posts", headers={"soku-api-key": "sk_live_" + "a" * 40}),
            await c.post("/v1/posts", json={"post": {}}, headers={"soku-api-key": "sk_live_x"}),
        ]
    for response in answers:
        error = assert_error(response, 503, "service_unavailable")
        assert error["details"] == {"reason": "database_unreachable"}
        assert "database" in error["message"]


async def test_a_sql_error_on_a_working_database_is_still_a_500(tmp_path: object) -> None:
    """A database that answers but lacks a table (no migrations run) is a bug, not an outage."""
    from pathlib import Path

    from soku.app import create_app
    from tests.conftest import make_settings

    assert isinstance(tmp_path, Path)
    app = create_app(make_settings(tmp_path, None))  # SQLite, never upgraded
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        response = await c.get("/v1/posts", headers={"soku-api-key": "sk_live_" + "a" * 40})
    assert_error(response, 500, "internal_error")


async def test_unexpected_crash_is_an_envelope_without_trace(
    backend: AppContext, client: httpx.AsyncClient, caller: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    from soku.posts import service

    def explode(*_args: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(service.idempotency, "canonical_hash", explode)
    response = await client.post("/v1/posts", json=text_post("x"), headers=caller.headers)
    error = assert_error(response, 500, "post_creation_failed")
    assert "secret" not in response.text and "Traceback" not in response.text
    assert error["details"] == {}


# --- authentication comes before anything about the body --------------------------------

BODY_ROUTES = [
    ("POST", "/v1/posts"),
    ("POST", "/v1/posts/validate"),
    ("PATCH", "/v1/posts/6f1c1d3e-4b8a-4c53-9d3e-1f0c0e7b2a11"),
    ("POST", "/v1/media"),
    ("POST", "/v1/media/upload"),
]


@pytest.fixture
async def fresh_limits(backend: AppContext) -> None:
    """These tests send many keyless requests from one address: start from empty windows."""
    await backend.limiter.reset()


@pytest.mark.usefixtures("fresh_limits")
@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize(
    ("key", "content_type"), [(None, "application/json"), ("sk_live_bogus", "text/plain")]
)
async def test_a_bad_key_is_401_whatever_the_body(
    client: httpx.AsyncClient, method: str, path: str, key: str | None, content_type: str
) -> None:
    headers = {"content-type": content_type, **({"soku-api-key": key} if key else {})}
    response = await client.request(method, path, content=b"{", headers=headers)
    assert_error(response, 401, "unauthorized")
    assert "x-ratelimit-limit" in response.headers  # counted under the anonymous plan


@pytest.mark.usefixtures("fresh_limits")
async def test_a_keyless_body_over_the_limit_is_401_and_never_read(
    backend: AppContext, client: httpx.AsyncClient
) -> None:
    pulled = 0

    async def endless():  # type: ignore[no-untyped-def]
        nonlocal pulled
        while True:
            pulled += 1
            yield b" " * 65536

    headers = {"content-type": "application/json"}
    response = await client.post("/v1/posts", content=endless(), headers=headers)
    assert_error(response, 401, "unauthorized")
    assert pulled == 0
    big = b" " * (backend.settings.max_body_bytes + 1)
    declared = await client.post("/v1/posts", content=big, headers=headers)
    assert_error(declared, 401, "unauthorized")


async def test_a_declared_body_over_the_limit_is_413_without_reading_it(
    backend: AppContext, client: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, plan="standard")
    pulled = 0

    async def declared():  # type: ignore[no-untyped-def]
        nonlocal pulled
        pulled += 1
        yield b" " * (backend.settings.max_body_bytes + 1)

    headers = {
        **caller.headers,
        "content-type": "application/json",
        "content-length": str(backend.settings.max_body_bytes + 1),
    }
    response = await client.post("/v1/posts", content=declared(), headers=headers)
    assert_error(response, 413, "payload_too_large")
    assert pulled == 0
    assert "x-ratelimit-remaining" in response.headers


# --- HEAD ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_head_on_the_probes(
    backend: AppContext, client: httpx.AsyncClient, path: str
) -> None:
    from soku.app import create_app

    got = await client.get(path)
    status, headers, body = await raw_exchange(create_app(ctx=backend), "HEAD", path)
    assert (status, body) == (200, b"")
    for name in ("content-type", "content-length"):
        assert headers[name] == got.headers[name]
    assert REQUEST_ID.match(headers["x-request-id"])


async def test_head_answers_never_carry_a_body(backend: AppContext) -> None:
    from soku.app import create_app

    status, headers, body = await raw_exchange(create_app(ctx=backend), "HEAD", "/v2/nothing")
    assert (status, body) == (404, b"")
    assert headers["content-type"] == "application/json"


async def test_every_authenticated_route_is_gated(backend: AppContext) -> None:
    """An authenticated route outside GatedRoute would read its body before the key."""
    from fastapi.routing import APIRoute

    from soku.api import GatedRoute
    from soku.app import create_app
    from soku.auth.dependencies import Authenticator

    def api_routes(routes: list[Any]) -> list[APIRoute]:
        found = []
        for route in routes:
            if isinstance(route, APIRoute):
                found.append(route)
            elif hasattr(route, "original_router"):  # an included router (FastAPI >= 0.13x)
                found += api_routes(route.original_router.routes)
        return found

    routes = api_routes(create_app(ctx=backend).routes)
    authed = [
        r
        for r in routes
        if any(isinstance(d.call, Authenticator) for d in r.dependant.dependencies)
    ]
    assert len(authed) >= 10
    assert [r.path for r in authed if not isinstance(r, GatedRoute)] == []
