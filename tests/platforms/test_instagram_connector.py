"""The Instagram connector against the Instagram fake, both over real HTTP.

What every connector does (reconcile, error kinds, resuming, refresh) is in
`test_connector_contract.py`, with Instagram's data in `instagram_world.PROFILE`; what it
does as Threads does is in `test_graph_connectors.py`; here is what only Instagram does: each
post shape, its media checks, its own error subcodes.
"""

from __future__ import annotations

import dataclasses
import re

from soku.platforms.connector import ErrorKind, NotPublished, Published
from soku.platforms.instagram_connector import InstagramConnector
from tests.media_files import write_image
from tests.platforms.connector_world import deliver, failure, run_steps
from tests.platforms.graph_world import step_names, world_fixtures
from tests.platforms.instagram_world import PROFILE, Env
from tests.platforms.instagram_world import connector as instagram_connector

SHORTCODE = r"C[A-Za-z0-9_-]{10}/$"


env, connector = world_fixtures(PROFILE, instagram_connector)


async def test_one_image(connector: InstagramConnector, env: Env) -> None:
    job = env.job("A picture", images=("img1.jpg",))
    assert step_names(connector, job) == ["container", "ready"]
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


async def test_a_carousel_with_a_video_item(connector: InstagramConnector, env: Env) -> None:
    job = env.job("Mixed", images=("img1.jpg",), video="clip.mp4")
    await deliver(connector, job, env.http)
    [post] = await env.posts()
    assert [m["kind"] for m in post["media"]] == ["IMAGE", "VIDEO"]  # a VIDEO item, not a reel


async def test_still_processing_is_retried_later(connector: InstagramConnector, env: Env) -> None:
    await env.config(video_polls=1000)
    slow = InstagramConnector(env.fake, poll_interval=0.01, max_processing_wait=0.05)
    error = await failure(run_steps(slow, env.job(video="clip.mp4"), env.http))
    assert (error.kind, error.code) == (ErrorKind.server_error, "media_still_processing")


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


async def test_reconcile_finds_a_reel(connector: InstagramConnector, env: Env) -> None:
    job = env.job("Reel", video="clip.mp4")
    published = await deliver(connector, job, env.http)
    found = await connector.reconcile(job, env.http)
    assert isinstance(found, Published) and found.platform_post_id == published.platform_post_id
