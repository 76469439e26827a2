"""The generic sandbox connector against the generic fake, served over real HTTP by uvicorn."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from soku.platforms.connector import (
    CannotTell,
    ErrorKind,
    Job,
    NotPublished,
    PlatformError,
    Published,
)
from soku.platforms.sandbox_connector import GenericSandboxConnector
from soku.platforms.transport import platform_client
from soku.sandbox.generic import create_generic_fake
from tests.asgi_server import free_port, serving
from tests.platforms import connector_world
from tests.platforms.connector_world import deliver, failure, run_steps

USER = "sbx_u1"
ACCOUNT = dict(
    account_id="x_main",
    platform_user_id=USER,
    username="sandbox_x_main",
    access_token="sandbox-token",
    refresh_token="sandbox-refresh",
)


@pytest.fixture(scope="session")
async def fake_url() -> AsyncIterator[str]:
    async with serving(create_generic_fake()) as url:
        yield url


@pytest.fixture
async def http(fake_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with platform_client(16, 5) as client:
        await client.delete(f"{fake_url}/_inspect")
        yield client


@pytest.fixture
def connector(fake_url: str) -> GenericSandboxConnector:
    return GenericSandboxConnector("x", fake_url)


def make_job(text: str | None = "Hello", images: int = 0, videos: int = 0, **more: Any) -> Job:
    """`more`: `publishing_since`, or the account's fields this job changes."""
    return connector_world.make_job(
        "x",
        ACCOUNT,
        text=text,
        image_urls=[f"https://cdn.example.com/{n}.jpg" for n in range(images)],
        video_urls=[f"https://cdn.example.com/{n}.mp4" for n in range(videos)],
        **more,
    )


async def inspect(http: httpx.AsyncClient, fake_url: str, what: str) -> Any:
    return (await http.get(f"{fake_url}/_inspect/{what}")).json()


async def add_fault(http: httpx.AsyncClient, fake_url: str, **fault: Any) -> None:
    response = await http.post(f"{fake_url}/_faults", json={"user_id": USER, **fault})
    assert response.status_code == 201, response.text


async def test_text_post(
    connector: GenericSandboxConnector, http: httpx.AsyncClient, fake_url: str
) -> None:
    job = make_job("Just words")
    assert connector.steps(job) == []
    published = await deliver(connector, job, http)
    assert published.platform_post_id.startswith("x_")
    assert published.url == f"{fake_url}/p/{published.platform_post_id}"
    [post] = (await inspect(http, fake_url, "posts"))["posts"]
    assert (post["text"], post["media"], post["user_id"]) == ("Just words", [], USER)
    assert (await http.get(published.url)).status_code == 200


@pytest.mark.parametrize("count", [1, 3])
async def test_image_posts(
    connector: GenericSandboxConnector, http: httpx.AsyncClient, fake_url: str, count: int
) -> None:
    job = make_job("Pictures", images=count)
    assert [step.name for step in connector.steps(job)] == [f"upload_{n}" for n in range(count)]
    published = await deliver(connector, job, http)
    [post] = (await inspect(http, fake_url, "posts"))["posts"]
    assert post["id"] == published.platform_post_id
    assert [m["url"] for m in post["media"]] == list(job.image_urls)
    assert post["media_ids"] == [
        job.checkpoint["steps"][f"upload_{n}"]["media_id"] for n in range(count)
    ]


async def test_video_post_waits_for_processing(
    connector: GenericSandboxConnector, http: httpx.AsyncClient, fake_url: str
) -> None:
    await http.post(f"{fake_url}/_config", json={"video_polls": 3})
    job = make_job("A film", videos=1)
    assert [step.name for step in connector.steps(job)] == ["upload_0", "wait_media"]
    await deliver(connector, job, http)
    assert job.checkpoint["steps"]["upload_0"]["status"] == "processing"
    assert job.checkpoint["steps"]["wait_media"]["status"] == "ready"
    [post] = (await inspect(http, fake_url, "posts"))["posts"]
    assert post["media"][0]["kind"] == "video"
    assert (await inspect(http, fake_url, "calls"))["media_status"] == 4


async def test_resumed_delivery_does_not_upload_again(
    connector: GenericSandboxConnector, http: httpx.AsyncClient, fake_url: str
) -> None:
    job = make_job("Twice", images=2)
    first, second = connector.steps(job)
    job.checkpoint["steps"] = {first.name: await first.run(job, http)}
    await add_fault(http, fake_url, on="media", status=503)
    with pytest.raises(PlatformError):
        await second.run(job, http)
    kept = dict(job.checkpoint["steps"]["upload_0"])
    await deliver(connector, job, http)
    assert job.checkpoint["steps"]["upload_0"] == kept
    [post] = (await inspect(http, fake_url, "posts"))["posts"]
    assert len(post["media"]) == 2
    assert (await inspect(http, fake_url, "calls"))["media"] == 3  # 2 uploads + 1 refused


async def test_publishing_before_the_video_is_ready_is_retryable(
    connector: GenericSandboxConnector, http: httpx.AsyncClient
) -> None:
    job = make_job("Too soon", videos=1)
    upload = connector.steps(job)[0]
    job.checkpoint["steps"] = {"upload_0": await upload.run(job, http)}
    error = await failure(connector.publish(job, http))
    assert (error.kind, error.code, error.http_status) == (
        ErrorKind.server_error,
        "media_not_ready",
        409,
    )


async def test_reconcile_finds_the_published_post(
    connector: GenericSandboxConnector, http: httpx.AsyncClient
) -> None:
    job = make_job("Find me", images=1)
    published = await deliver(connector, job, http)
    await deliver(connector, make_job("Something else", images=1), http)
    since = dt.datetime.now(dt.UTC)
    for pending in (job, dataclasses.replace(job, publishing_since=since)):
        found = await connector.reconcile(pending, http)
        assert isinstance(found, Published)
        assert (found.platform_post_id, found.url) == (published.platform_post_id, published.url)


async def test_reconcile_says_not_published(
    connector: GenericSandboxConnector, http: httpx.AsyncClient
) -> None:
    await deliver(connector, make_job("Other text"), http)
    job = make_job("Never sent")
    assert await connector.reconcile(job, http) == NotPublished()
    future = dt.datetime(2999, 1, 1, tzinfo=dt.UTC)
    later = make_job("Other text", publishing_since=future)
    assert await connector.reconcile(later, http) == NotPublished()


async def test_reconcile_cannot_tell_between_identical_posts(
    connector: GenericSandboxConnector, http: httpx.AsyncClient
) -> None:
    await deliver(connector, make_job("Same"), http)
    await deliver(connector, make_job("Same"), http)
    result = await connector.reconcile(make_job("Same"), http)
    assert isinstance(result, CannotTell) and "several identical posts" in result.reason


async def test_reconcile_after_accept_then_timeout(
    connector: GenericSandboxConnector, fake_url: str, http: httpx.AsyncClient
) -> None:
    await add_fault(http, fake_url, on="publish", accept_then_delay=1)
    job = make_job("Did it go?")
    async with httpx.AsyncClient(timeout=0.2) as impatient:
        error = await failure(connector.publish(job, impatient))
    assert error.kind is ErrorKind.timeout
    result = await connector.reconcile(job, http)
    assert isinstance(result, Published)


async def test_a_failed_listing_raises(
    connector: GenericSandboxConnector, fake_url: str, http: httpx.AsyncClient
) -> None:
    await add_fault(http, fake_url, on="list", status=503)
    await add_fault(http, fake_url, on="list", status=503, retry_after=7)
    error = await failure(connector.reconcile(make_job(), http))
    assert (error.kind, error.http_status) == (ErrorKind.server_error, 503)
    error = await failure(connector.reconcile(make_job(), http))
    assert (error.kind, error.retry_after) == (ErrorKind.server_error, 7)


@pytest.mark.parametrize(
    ("fault", "kind", "code"),
    [
        ({"status": 500}, ErrorKind.server_error, "server_error"),
        (
            {"status": 503, "error_code": "service_unavailable"},
            ErrorKind.server_error,
            "service_unavailable",
        ),
        ({"status": 401, "error_code": "token_expired"}, ErrorKind.token_expired, "token_expired"),
        (
            {"status": 401, "error_code": "invalid_token"},
            ErrorKind.reauth_required,
            "invalid_token",
        ),
        ({"status": 403, "error_code": "forbidden"}, ErrorKind.reauth_required, "forbidden"),
        (
            {"status": 400, "error_code": "duplicate_content"},
            ErrorKind.permanent,
            "duplicate_content",
        ),
    ],
)
async def test_publish_errors_map_to_kinds(
    connector: GenericSandboxConnector,
    fake_url: str,
    http: httpx.AsyncClient,
    fault: dict[str, Any],
    kind: ErrorKind,
    code: str,
) -> None:
    await add_fault(http, fake_url, on="publish", **fault)
    error = await failure(connector.publish(make_job(), http))
    assert (error.kind, error.code, error.http_status) == (kind, code, fault["status"])
    assert error.raw["error"]["code"] == code
    assert error.retry_after is None  # the reset header counts for a 429 only
    assert "sandbox answered" in error.message


async def test_rate_limit_carries_retry_after(
    connector: GenericSandboxConnector, fake_url: str, http: httpx.AsyncClient
) -> None:
    await add_fault(
        http, fake_url, on="publish", status=429, error_code="rate_limited", retry_after=42
    )
    error = await failure(connector.publish(make_job(), http))
    assert (error.kind, error.http_status, error.retry_after) == (ErrorKind.rate_limited, 429, 42)


async def test_rate_limit_window_uses_the_reset_header(
    connector: GenericSandboxConnector, fake_url: str, http: httpx.AsyncClient
) -> None:
    await http.post(f"{fake_url}/_config", json={"rate_limit": 1})
    await deliver(connector, make_job("First"), http)
    error = await failure(connector.publish(make_job("Second"), http))
    assert error.kind is ErrorKind.rate_limited
    assert error.retry_after is not None and 0 < error.retry_after <= 900


async def test_timeout_when_the_fake_is_slow(
    connector: GenericSandboxConnector, fake_url: str, http: httpx.AsyncClient
) -> None:
    await add_fault(http, fake_url, on="media", delay=1)
    step = connector.steps(make_job(images=1))[0]
    async with httpx.AsyncClient(timeout=0.2) as impatient:
        error = await failure(step.run(make_job(images=1), impatient))
    assert error.kind is ErrorKind.timeout


async def test_connection_refused_on_a_closed_port(http: httpx.AsyncClient) -> None:
    closed = GenericSandboxConnector("x", f"http://127.0.0.1:{free_port()}")
    error = await failure(closed.publish(make_job(), http))
    assert (error.kind, error.code) == (ErrorKind.connection, "connection_failed")


async def test_processing_failure(
    connector: GenericSandboxConnector, fake_url: str, http: httpx.AsyncClient
) -> None:
    await add_fault(http, fake_url, on="media_status", error_code="processing_failed")
    error = await failure(run_steps(connector, make_job("Broken film", videos=1), http))
    assert (error.kind, error.code) == (ErrorKind.processing_failed, "processing_failed")


async def test_missing_token_needs_reauth(
    connector: GenericSandboxConnector, fake_url: str, http: httpx.AsyncClient
) -> None:
    error = await failure(connector.publish(make_job(access_token=None), http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "no_access_token")
    assert (await inspect(http, fake_url, "calls"))["publish"] == 0


async def test_refresh_rotates_tokens(
    connector: GenericSandboxConnector, fake_url: str, http: httpx.AsyncClient
) -> None:
    account = make_job().account
    before = dt.datetime.now(dt.UTC)
    first = await connector.refresh(account, http)
    second = await connector.refresh(account, http)
    assert first.access_token.startswith("sandbox-") and first.access_token != second.access_token
    assert first.refresh_token and first.refresh_token != second.refresh_token
    assert first.refresh_token.startswith("sandbox-refresh-")
    assert first.expires_at is not None
    assert dt.timedelta(seconds=3590) < first.expires_at - before < dt.timedelta(seconds=3610)
    assert (await inspect(http, fake_url, "calls"))["refresh"] == 2


async def test_refresh_failures_need_reauth(
    connector: GenericSandboxConnector, fake_url: str, http: httpx.AsyncClient
) -> None:
    no_token = make_job(refresh_token=None).account
    error = await failure(connector.refresh(no_token, http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "no_refresh_token")
    await add_fault(
        http, fake_url, user_id="*", on="refresh", status=400, error_code="invalid_grant"
    )
    error = await failure(connector.refresh(make_job().account, http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "invalid_grant")
    await add_fault(http, fake_url, user_id="*", on="refresh", status=500)
    error = await failure(connector.refresh(make_job().account, http))
    assert error.kind is ErrorKind.server_error
