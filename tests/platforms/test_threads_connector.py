"""The Threads connector against the Threads fake, both over real HTTP (uvicorn, a file server).

What every connector does (reconcile, error kinds, resuming, refresh) is in
`test_connector_contract.py`, with Threads' data in `threads_world.PROFILE`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator

import pytest

from soku.platforms.base import ConnectorTarget
from soku.platforms.connector import CannotTell, ErrorKind, Job
from soku.platforms.threads import INTEGRATION
from soku.platforms.threads_connector import ThreadsConnector
from tests.platforms.connector_world import Sandboxes, deliver, failure, run_steps
from tests.platforms.threads_world import PROFILE, TOKEN, USERNAME, Env
from tests.platforms.threads_world import connector as threads_connector

PERMALINK = re.compile(r"/@soku_threads/post/D[A-Za-z0-9_-]{10}$")


@pytest.fixture
async def env(sandboxes: Sandboxes) -> AsyncIterator[Env]:
    async with PROFILE.world(sandboxes) as world:
        yield world


@pytest.fixture
def connector(env: Env) -> ThreadsConnector:
    return threads_connector(env.fake)


def names(connector: ThreadsConnector, job: Job) -> list[str]:
    return [step.name for step in connector.steps(job)]


async def test_text_post(connector: ThreadsConnector, env: Env) -> None:
    job = env.job("Just words")
    assert names(connector, job) == ["container", "ready"]
    published = await deliver(connector, job, env.http)
    [post] = await env.posts()
    assert (post["id"], post["text"], post["media"], post["media_type"]) == (
        published.platform_post_id,
        "Just words",
        [],
        "TEXT_POST",
    )
    assert post["container_id"] == job.checkpoint["steps"]["ready"]["container_id"]
    assert published.url == post["url"] and PERMALINK.search(published.url or "")
    assert str(published.url).startswith(env.fake)
    page = await env.http.get(str(published.url))
    assert page.status_code == 200 and "Just words" in page.text


async def test_one_image(connector: ThreadsConnector, env: Env) -> None:
    published = await deliver(connector, env.job("A picture", images=("img1.jpg",)), env.http)
    [post] = await env.posts()
    assert post["id"] == published.platform_post_id and post["media_type"] == "IMAGE"
    [item] = post["media"]
    assert (item["kind"], item["url"]) == ("IMAGE", env.media.url("img1.jpg"))
    assert item["sha256"] == env.sha256("img1.jpg")  # the fake fetched our public URL
    assert (await env.http.get(str(published.url))).status_code == 200


async def test_carousel(connector: ThreadsConnector, env: Env) -> None:
    images = ("img1.jpg", "img2.png", "img3.webp")
    job = env.job("Three pictures", images=images)
    assert names(connector, job) == [
        "item_0", "item_0_ready", "item_1", "item_1_ready", "item_2", "item_2_ready",
        "container", "ready",
    ]  # fmt: skip
    published = await deliver(connector, job, env.http)
    [post] = await env.posts()
    assert (post["id"], post["text"], post["media_type"]) == (
        published.platform_post_id,
        "Three pictures",
        "CAROUSEL_ALBUM",
    )
    steps = job.checkpoint["steps"]
    assert [m["container_id"] for m in post["media"]] == [
        steps[f"item_{n}_ready"]["container_id"] for n in range(3)
    ]
    assert [m["url"] for m in post["media"]] == [env.media.url(name) for name in images]
    assert [m["sha256"] for m in post["media"]] == [env.sha256(name) for name in images]
    assert (await env.calls())["create"] == 4  # three items and the carousel
    assert (await env.http.get(str(published.url))).status_code == 200


async def test_video_waits_for_processing(connector: ThreadsConnector, env: Env) -> None:
    await env.config(video_polls=3)
    job = env.job("A film", video="clip.mp4")
    published = await deliver(connector, job, env.http)
    assert job.checkpoint["steps"]["ready"]["status"] == "FINISHED"
    assert (await env.calls())["status"] == 4  # three IN_PROGRESS answers, then FINISHED
    [post] = await env.posts()
    assert post["media_type"] == "VIDEO" and post["media"][0]["sha256"] == env.sha256("clip.mp4")
    assert published.url == post["url"]


async def test_an_expired_container_is_made_again(connector: ThreadsConnector, env: Env) -> None:
    await env.fault(on="status", error_code="container_expired")
    job = env.job("Expired once")
    published = await deliver(connector, job, env.http)
    steps = job.checkpoint["steps"]
    assert steps["ready"]["container_id"] != steps["container"]["container_id"]
    [post] = await env.posts()
    assert post["id"] == published.platform_post_id
    assert post["container_id"] == steps["ready"]["container_id"]
    statuses = {c["id"]: c["status"] for c in await env.containers()}
    assert statuses == {
        steps["container"]["container_id"]: "EXPIRED",
        post["container_id"]: "PUBLISHED",
    }


async def test_old_containers_start_a_new_round(connector: ThreadsConnector, env: Env) -> None:
    job = env.job("Held back for a day")
    await run_steps(connector, job, env.http)
    job.checkpoint["steps"]["container"]["created_at"] -= 24 * 3600
    assert names(connector, job) == ["r2_container", "r2_ready"]
    published = await deliver(connector, job, env.http)
    [post] = await env.posts()
    assert post["id"] == published.platform_post_id
    assert post["container_id"] == job.checkpoint["steps"]["r2_ready"]["container_id"]
    assert post["container_id"] != job.checkpoint["steps"]["ready"]["container_id"]
    assert names(connector, job) == ["r2_container", "r2_ready"]  # the new round is fresh


async def test_media_threads_cannot_fetch(connector: ThreadsConnector, env: Env) -> None:
    error = await failure(run_steps(connector, env.job(video="missing.mp4"), env.http))
    assert (error.kind, error.code) == (ErrorKind.processing_failed, "processing_failed")
    assert "FAILED_DOWNLOADING_VIDEO" in error.message
    error = await failure(run_steps(connector, env.job(images=("missing.jpg",)), env.http))
    assert error.kind is ErrorKind.permanent and error.http_status == 400
    assert "could not be fetched from this URI" in error.message
    assert await env.posts() == []


async def test_throttle_carries_retry_after(connector: ThreadsConnector, env: Env) -> None:
    await env.fault(on="create", error_code="rate_limited", retry_after=42)
    error = await failure(run_steps(connector, env.job(), env.http))
    assert (error.kind, error.retry_after, error.raw["error"]["code"]) == (
        ErrorKind.rate_limited,
        42,
        4,
    )


async def test_publishing_quota(connector: ThreadsConnector, env: Env) -> None:
    await env.config(quota_total=1)
    await deliver(connector, env.job("First"), env.http)
    error = await failure(deliver(connector, env.job("Second"), env.http))
    assert error.kind is ErrorKind.rate_limited and len(await env.posts()) == 1


async def test_an_expired_token(connector: ThreadsConnector, env: Env) -> None:
    await env.add_user(username="lapsed", access_token="old-token", expires_in=0)
    error = await failure(run_steps(connector, env.job(access_token="old-token"), env.http))
    assert (error.kind, error.code) == (ErrorKind.token_expired, "token_expired")
    assert (error.raw["error"]["code"], error.raw["error"]["error_subcode"]) == (190, 463)


async def test_refresh_renews_the_access_token_itself(
    connector: ThreadsConnector, env: Env
) -> None:
    tokens = await connector.refresh(env.job().account, env.http)
    assert tokens.access_token != TOKEN and tokens.refresh_token is None


async def test_refused_refresh_needs_reauth(connector: ThreadsConnector, env: Env) -> None:
    await env.add_user(username="lapsed", access_token="old-token", expires_in=0)
    lapsed = env.job(access_token="old-token").account
    error = await failure(connector.refresh(lapsed, env.http))
    assert (error.kind, error.code, error.http_status) == (
        ErrorKind.reauth_required,
        "refresh_refused",
        400,
    )


async def test_reconcile_cannot_tell_when_the_thread_is_missing(
    connector: ThreadsConnector, env: Env
) -> None:
    job = env.job("Published, then edited away")
    await deliver(connector, job, env.http)
    changed = dataclasses.replace(job, text="Some other text")
    assert isinstance(await connector.reconcile(changed, env.http), CannotTell)


async def test_permalink_falls_back_to_the_profile(connector: ThreadsConnector, env: Env) -> None:
    await env.fault(on="media", status=500)
    published = await deliver(connector, env.job("No permalink"), env.http)
    assert published.url == f"{env.fake}/@{USERNAME}"
    page = await env.http.get(published.url)
    assert page.status_code == 200 and "No permalink" in page.text


async def test_a_sandbox_account_with_made_up_ids(connector: ThreadsConnector, env: Env) -> None:
    job = env.job("Adopted", access_token="made-up", platform_user_id="sbx_1", username=None)
    published = await deliver(connector, job, env.http)
    [post] = await env.posts()
    assert post["user"]["id"] != env.user_id and published.url == post["url"]


def test_integration_targets() -> None:
    sandbox = INTEGRATION.make_connector(ConnectorTarget("http://soku.test/sandbox/threads"))
    assert isinstance(sandbox, ThreadsConnector)
    assert sandbox.base_url == "http://soku.test/sandbox/threads/v1.0"
    assert sandbox.web_url == "http://soku.test/sandbox/threads"
    real = INTEGRATION.make_connector(ConnectorTarget(None))
    assert isinstance(real, ThreadsConnector)
    assert (real.base_url, real.web_url) == (
        "https://graph.threads.net/v1.0",
        "https://www.threads.net",
    )
    options = {"api_url": "https://graph.threads.com", "version": "v2.0"}
    custom = INTEGRATION.make_connector(ConnectorTarget(None, options))
    assert isinstance(custom, ThreadsConnector)
    assert custom.base_url == "https://graph.threads.com/v2.0"
    assert INTEGRATION.options == {
        "api_url", "version", "web_url", "authorize_url", "client_id", "client_secret"
    }  # fmt: skip
    assert INTEGRATION.oauth is not None
    signs_in = INTEGRATION.oauth.endpoints(ConnectorTarget(None, options))
    assert (
        signs_in.authorize_url,
        signs_in.token_url,
        signs_in.api_url,
        signs_in.exchange_url,
    ) == (
        "https://threads.net/oauth/authorize",
        "https://graph.threads.com/oauth/access_token",
        "https://graph.threads.com/v2.0",
        "https://graph.threads.com/access_token",
    )
