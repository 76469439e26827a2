"""The Threads connector against the Threads fake, both over real HTTP (uvicorn, a file server).

What every connector does (reconcile, error kinds, resuming, refresh) is in
`test_connector_contract.py`, with Threads' data in `threads_world.PROFILE`; what it does as
Instagram does is in `test_graph_connectors.py`.
"""

from __future__ import annotations

import re

from soku.platforms.connector import ErrorKind
from soku.platforms.threads_connector import ThreadsConnector
from tests.platforms.connector_world import deliver, failure, run_steps
from tests.platforms.graph_world import step_names, world_fixtures
from tests.platforms.threads_world import PROFILE, Env
from tests.platforms.threads_world import connector as threads_connector

PERMALINK = re.compile(r"/@soku_threads/post/D[A-Za-z0-9_-]{10}$")


env, connector = world_fixtures(PROFILE, threads_connector)


async def test_text_post(connector: ThreadsConnector, env: Env) -> None:
    job = env.job("Just words")
    assert step_names(connector, job) == ["container", "ready"]
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


async def test_media_threads_cannot_fetch(connector: ThreadsConnector, env: Env) -> None:
    error = await failure(run_steps(connector, env.job(video="missing.mp4"), env.http))
    assert (error.kind, error.code) == (ErrorKind.processing_failed, "processing_failed")
    assert "FAILED_DOWNLOADING_VIDEO" in error.message
    error = await failure(run_steps(connector, env.job(images=("missing.jpg",)), env.http))
    assert error.kind is ErrorKind.permanent and error.http_status == 400
    assert "could not be fetched from this URI" in error.message
    assert await env.posts() == []


async def test_a_sandbox_account_with_made_up_ids(connector: ThreadsConnector, env: Env) -> None:
    job = env.job("Adopted", access_token="made-up", platform_user_id="sbx_1", username=None)
    published = await deliver(connector, job, env.http)
    [post] = await env.posts()
    assert post["user"]["id"] != env.user_id and published.url == post["url"]
