"""The Instagram connector against the Instagram fake, both over real HTTP.

What every connector does (reconcile, error kinds, resuming, refresh) is in
`test_connector_contract.py`, with Instagram's data in `instagram_world.PROFILE`; here is
what only Instagram does: each post shape, its media checks, its own error subcodes.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator

import pytest

from soku.platforms.base import ConnectorTarget
from soku.platforms.connector import CannotTell, ErrorKind, Job, NotPublished, Published
from soku.platforms.instagram import INTEGRATION
from soku.platforms.instagram_connector import InstagramConnector
from tests.media_files import write_image
from tests.platforms.connector_world import Sandboxes, deliver, failure, run_steps
from tests.platforms.instagram_world import JPEGS, PROFILE, TOKEN, USERNAME, Env
from tests.platforms.instagram_world import connector as instagram_connector

SHORTCODE = r"C[A-Za-z0-9_-]{10}/$"


@pytest.fixture
async def env(sandboxes: Sandboxes) -> AsyncIterator[Env]:
    async with PROFILE.world(sandboxes) as world:
        yield world


@pytest.fixture
def connector(env: Env) -> InstagramConnector:
    return instagram_connector(env.fake)


def names(connector: InstagramConnector, job: Job) -> list[str]:
    return [step.name for step in connector.steps(job)]


async def test_one_image(connector: InstagramConnector, env: Env) -> None:
    job = env.job("A picture", images=("img1.jpg",))
    assert names(connector, job) == ["container", "ready"]
    published = await deliver(connector, job, env.http)
    [post] = await env.posts()
    assert (post["id"], post["caption"], post["media_type"]) == (
        published.platform_post_id,
        "A picture",
        "IMAGE",
    )
    [item] = post["media"]
    assert (item["kind"], item["url"]) == ("IMAGE", env.media.url("img1.jpg"))
    assert item["sha256"] == env.sha256("img1.jpg")  # the fake fetched our public URL
    assert post["container_id"] == job.checkpoint["steps"]["ready"]["container_id"]
    assert published.url == post["url"] and re.search("/p/" + SHORTCODE, published.url or "")
    page = await env.http.get(str(published.url))
    assert page.status_code == 200 and "A picture" in page.text


async def test_carousel(connector: InstagramConnector, env: Env) -> None:
    job = env.job("Three pictures", images=JPEGS[:3])
    assert names(connector, job) == [
        "item_0", "item_0_ready", "item_1", "item_1_ready", "item_2", "item_2_ready",
        "container", "ready",
    ]  # fmt: skip
    published = await deliver(connector, job, env.http)
    [post] = await env.posts()
    assert (post["id"], post["caption"], post["media_type"]) == (
        published.platform_post_id,
        "Three pictures",
        "CAROUSEL",
    )
    steps = job.checkpoint["steps"]
    assert [m["container_id"] for m in post["media"]] == [
        steps[f"item_{n}_ready"]["container_id"] for n in range(3)
    ]
    children = [c for c in await env.containers() if c["is_carousel_item"]]
    assert [c["caption"] for c in children] == ["", "", ""]  # no caption on the items
    assert (await env.calls())["create"] == 4  # three items and the carousel
    assert (await env.http.get(str(published.url))).status_code == 200


async def test_a_carousel_with_a_video_item(connector: InstagramConnector, env: Env) -> None:
    job = env.job("Mixed", images=("img1.jpg",), video="clip.mp4")
    await deliver(connector, job, env.http)
    [post] = await env.posts()
    assert [m["kind"] for m in post["media"]] == ["IMAGE", "VIDEO"]  # a VIDEO item, not a reel


async def test_video_is_a_reel_and_waits_for_processing(
    connector: InstagramConnector, env: Env
) -> None:
    await env.config(video_polls=3)
    job = env.job("A film", video="clip.mp4")
    published = await deliver(connector, job, env.http)
    assert job.checkpoint["steps"]["ready"]["status"] == "FINISHED"
    assert (await env.calls())["status"] == 4  # three IN_PROGRESS answers, then FINISHED
    [post] = await env.posts()
    assert post["media_type"] == "REELS" and post["media"][0]["sha256"] == env.sha256("clip.mp4")
    assert published.url == post["url"] and re.search("/reel/" + SHORTCODE, published.url or "")


async def test_still_processing_is_retried_later(connector: InstagramConnector, env: Env) -> None:
    await env.config(video_polls=1000)
    slow = InstagramConnector(env.fake, poll_interval=0.01, max_processing_wait=0.05)
    error = await failure(run_steps(slow, env.job(video="clip.mp4"), env.http))
    assert (error.kind, error.code) == (ErrorKind.server_error, "media_still_processing")


async def test_an_expired_container_is_made_again(connector: InstagramConnector, env: Env) -> None:
    await env.fault(on="status", error_code="container_expired")
    job = env.job("Expired once")
    published = await deliver(connector, job, env.http)
    steps = job.checkpoint["steps"]
    assert steps["ready"]["container_id"] != steps["container"]["container_id"]
    [post] = await env.posts()
    assert (post["id"], post["container_id"]) == (
        published.platform_post_id,
        steps["ready"]["container_id"],
    )


async def test_old_containers_start_a_new_round(connector: InstagramConnector, env: Env) -> None:
    job = env.job("Held back for a day")
    await run_steps(connector, job, env.http)
    job.checkpoint["steps"]["container"]["created_at"] -= 24 * 3600
    assert names(connector, job) == ["r2_container", "r2_ready"]
    published = await deliver(connector, job, env.http)
    [post] = await env.posts()
    assert post["container_id"] == job.checkpoint["steps"]["r2_ready"]["container_id"]
    assert post["id"] == published.platform_post_id


async def test_images_instagram_refuses(connector: InstagramConnector, env: Env) -> None:
    write_image(env.folder / "wide.jpg", (10, 10, 10), size=(400, 100))
    cases = {
        "img2.png": "unsupported_image",  # JPEG only
        "wide.jpg": "aspect_ratio",  # 4:1, outside 4:5-1.91:1
        "missing.jpg": "media_fetch_failed",
    }
    for name, code in cases.items():
        error = await failure(run_steps(connector, env.job(images=(name,)), env.http))
        assert (error.kind, error.code, error.http_status) == (ErrorKind.permanent, code, 400)
    assert await env.containers() == []


async def test_a_video_instagram_cannot_fetch(connector: InstagramConnector, env: Env) -> None:
    error = await failure(run_steps(connector, env.job(video="missing.mp4"), env.http))
    assert (error.kind, error.code) == (ErrorKind.processing_failed, "processing_failed")
    assert "2207052" in error.message


async def test_throttle_carries_retry_after(connector: InstagramConnector, env: Env) -> None:
    await env.fault(on="create", error_code="rate_limited", retry_after=42)
    error = await failure(run_steps(connector, env.job(), env.http))
    assert (error.kind, error.retry_after, error.raw["error"]["code"]) == (
        ErrorKind.rate_limited,
        42,
        4,
    )


async def test_an_unavailable_container_is_retried_after_a_minute(
    connector: InstagramConnector, env: Env
) -> None:
    job = env.job()
    await run_steps(connector, job, env.http)
    await env.fault(on="publish", error_code="container_unavailable")
    error = await failure(connector.publish(job, env.http))
    assert (error.kind, error.code, error.retry_after) == (
        ErrorKind.server_error,
        "container_unavailable",
        60,
    )


async def test_publishing_quota(connector: InstagramConnector, env: Env) -> None:
    await env.config(quota_total=1)
    await deliver(connector, env.job("First"), env.http)
    error = await failure(deliver(connector, env.job("Second"), env.http))
    assert (error.kind, error.code, error.retry_after) == (
        ErrorKind.rate_limited,
        "publishing_limit",
        3600,  # the window's end is not said: an hour
    )
    assert (error.raw["error"]["code"], error.raw["error"]["error_subcode"]) == (9, 2207042)
    assert len(await env.posts()) == 1


async def test_an_expired_token(connector: InstagramConnector, env: Env) -> None:
    await env.add_user(username="lapsed", access_token="old-token", expires_in=0)
    error = await failure(run_steps(connector, env.job(access_token="old-token"), env.http))
    assert (error.kind, error.code) == (ErrorKind.token_expired, "token_expired")


async def test_refresh_renews_the_access_token_itself(
    connector: InstagramConnector, env: Env
) -> None:
    tokens = await connector.refresh(env.job().account, env.http)
    assert tokens.access_token != TOKEN and tokens.refresh_token is None


async def test_refused_refresh_needs_reauth(connector: InstagramConnector, env: Env) -> None:
    await env.config(refresh_min_age_secs=86400)  # Instagram's: a token a day old at least
    error = await failure(connector.refresh(env.job().account, env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "refresh_refused")


async def test_resume_after_a_crash_between_a_container_and_its_wait(
    connector: InstagramConnector, env: Env
) -> None:
    job = env.job("Cut short", video="clip.mp4")
    saved = await run_steps(connector, job, env.http, stop_after="container")
    resumed = dataclasses.replace(job, checkpoint=saved)
    published = await deliver(instagram_connector(env.fake), resumed, env.http)
    assert [post["id"] for post in await env.posts()] == [published.platform_post_id]
    assert (await env.calls())["create"] == 1


async def test_reconcile_a_container_that_failed(connector: InstagramConnector, env: Env) -> None:
    job = env.job("Never ready")
    await run_steps(connector, job, env.http)
    await env.fault(on="status", error_code="processing_failed")
    assert await connector.reconcile(job, env.http) == NotPublished()


async def test_reconcile_cannot_tell_when_the_post_is_missing(
    connector: InstagramConnector, env: Env
) -> None:
    job = env.job("Published, then edited away")
    await deliver(connector, job, env.http)
    changed = dataclasses.replace(job, text="Some other caption")
    assert isinstance(await connector.reconcile(changed, env.http), CannotTell)


async def test_reconcile_finds_a_reel(connector: InstagramConnector, env: Env) -> None:
    job = env.job("Reel", video="clip.mp4")
    published = await deliver(connector, job, env.http)
    found = await connector.reconcile(job, env.http)
    assert isinstance(found, Published) and found.platform_post_id == published.platform_post_id


async def test_permalink_falls_back_to_the_profile(connector: InstagramConnector, env: Env) -> None:
    await env.fault(on="media", status=500)
    published = await deliver(connector, env.job("No permalink"), env.http)
    assert published.url == f"{env.fake}/{USERNAME}/"
    page = await env.http.get(published.url)
    assert page.status_code == 200 and "No permalink" in page.text


def test_integration_targets() -> None:
    sandbox = INTEGRATION.make_connector(ConnectorTarget("http://soku.test/sandbox/instagram"))
    assert isinstance(sandbox, InstagramConnector)
    assert sandbox.base_url == "http://soku.test/sandbox/instagram/v25.0"
    real = INTEGRATION.make_connector(ConnectorTarget(None))
    assert isinstance(real, InstagramConnector)
    assert (real.base_url, real.web_url) == (
        "https://graph.instagram.com/v25.0",
        "https://www.instagram.com",
    )
    options = {"api_url": "https://ig.example", "version": "v26.0", "token_url": "https://t.ex/t"}
    custom = INTEGRATION.make_connector(ConnectorTarget(None, options))
    assert isinstance(custom, InstagramConnector) and custom.base_url == "https://ig.example/v26.0"
    assert INTEGRATION.oauth is not None
    signs_in = INTEGRATION.oauth.endpoints(ConnectorTarget(None, options))
    assert (
        signs_in.authorize_url,
        signs_in.token_url,
        signs_in.api_url,
        signs_in.exchange_url,
    ) == (
        "https://www.instagram.com/oauth/authorize",
        "https://t.ex/t",
        "https://ig.example/v26.0",
        "https://ig.example/access_token",
    )
    default = INTEGRATION.oauth.endpoints(ConnectorTarget(None))
    assert default.token_url == "https://api.instagram.com/oauth/access_token"
