"""The Threads connector against the Threads fake, both over real HTTP (uvicorn, a file server)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from soku.platforms.base import ConnectorTarget
from soku.platforms.connector import CannotTell, ErrorKind, Job, NotPublished, Published
from soku.platforms.threads import INTEGRATION
from soku.platforms.threads_connector import ThreadsConnector
from soku.sandbox.threads import create_threads_fake
from tests.asgi_server import free_port, serving
from tests.media_files import MediaServer
from tests.platforms.connector_world import (
    FakeControls,
    deliver,
    failure,
    fresh_fake,
    make_job,
    run_steps,
)

USERNAME, TOKEN = "soku_threads", "th-access"
ACCOUNT = dict(account_id="threads_main", username=USERNAME, access_token=TOKEN)
PERMALINK = re.compile(r"/@soku_threads/post/D[A-Za-z0-9_-]{10}$")


@pytest.fixture(scope="session")
async def fake_url() -> AsyncIterator[str]:
    async with serving(create_threads_fake()) as url:
        yield url


@pytest.fixture(scope="session")
def media_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("threads_media")


@pytest.fixture(scope="session")
def media(media_folder: Path) -> Iterator[MediaServer]:
    server = MediaServer(media_folder)
    yield server
    server.close()


@dataclasses.dataclass
class Env(FakeControls):
    """The test's world: the fake and a client like the engine's, the media store, the user."""

    media: MediaServer
    folder: Path
    user_id: str

    def job(
        self,
        text: str | None = "Hello Threads",
        images: tuple[str, ...] = (),
        video: str | None = None,
        **more: Any,
    ) -> Job:
        """`more`: `publishing_since`, or the account's fields this job changes."""
        return make_job(
            "threads",
            {**ACCOUNT, "platform_user_id": self.user_id},
            text=text,
            image_urls=[self.media.url(name) for name in images],
            video_urls=[self.media.url(video)] if video else [],
            **more,
        )

    async def containers(self) -> list[dict[str, Any]]:
        return list((await self.inspect("containers"))["containers"])

    def sha256(self, name: str) -> str:
        return hashlib.sha256((self.folder / name).read_bytes()).hexdigest()


@pytest.fixture
async def env(fake_url: str, media: MediaServer, media_folder: Path) -> AsyncIterator[Env]:
    """A fresh fake that knows the account's user and token."""
    async with fresh_fake(fake_url) as fake:
        user = await fake.add_user(username=USERNAME, access_token=TOKEN)
        yield Env(fake.http, fake_url, media, media_folder, user["id"])


@pytest.fixture
def connector(fake_url: str) -> ThreadsConnector:
    return ThreadsConnector(fake_url, web_url=fake_url, poll_interval=0.01)


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


async def test_resume_does_not_make_finished_containers_again(env: Env) -> None:
    first = ThreadsConnector(env.fake, web_url=env.fake, poll_interval=0.01)
    job = env.job("Resumed", images=("img1.jpg", "img2.png", "img4.gif"))
    saved = await run_steps(first, job, env.http, stop_after="item_1_ready")
    assert list(saved["steps"]) == ["item_0", "item_0_ready", "item_1", "item_1_ready"]
    second = ThreadsConnector(env.fake, web_url=env.fake, poll_interval=0.01)  # another worker
    resumed = dataclasses.replace(job, checkpoint=saved)
    published = await deliver(second, resumed, env.http)
    [post] = await env.posts()
    assert post["id"] == published.platform_post_id and len(post["media"]) == 3
    assert [m["container_id"] for m in post["media"]][:2] == [
        saved["steps"][f"item_{n}_ready"]["container_id"] for n in range(2)
    ]
    assert (await env.calls())["create"] == 4 and len(await env.containers()) == 4


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


async def test_processing_error(connector: ThreadsConnector, env: Env) -> None:
    await env.fault(on="status", error_code="processing_failed", container_error="INVALID_DURATION")
    error = await failure(run_steps(connector, env.job(video="clip.mp4"), env.http))
    assert (error.kind, error.code) == (ErrorKind.processing_failed, "processing_failed")
    assert "INVALID_DURATION" in error.message and error.raw["status"] == "ERROR"


async def test_media_threads_cannot_fetch(connector: ThreadsConnector, env: Env) -> None:
    error = await failure(run_steps(connector, env.job(video="missing.mp4"), env.http))
    assert (error.kind, error.code) == (ErrorKind.processing_failed, "processing_failed")
    assert "FAILED_DOWNLOADING_VIDEO" in error.message
    error = await failure(run_steps(connector, env.job(images=("missing.jpg",)), env.http))
    assert error.kind is ErrorKind.permanent and error.http_status == 400
    assert "could not be fetched from this URI" in error.message
    assert await env.posts() == []


@pytest.mark.parametrize(
    ("fault", "kind", "code"),
    [
        ({"status": 500}, ErrorKind.server_error, "server_error"),
        ({"status": 503}, ErrorKind.server_error, "server_error"),
        ({"error_code": "token_expired"}, ErrorKind.token_expired, "token_expired"),
        ({"error_code": "token_invalid"}, ErrorKind.reauth_required, "reauth_required"),
        ({"error_code": "duplicate_content"}, ErrorKind.permanent, "duplicate_content"),
        ({"error_code": "permission_denied"}, ErrorKind.permanent, "permission_denied"),
        ({"error_code": "user_rate_limited"}, ErrorKind.rate_limited, "rate_limited"),
    ],
)
async def test_publish_errors_map_to_kinds(
    connector: ThreadsConnector, env: Env, fault: dict[str, Any], kind: ErrorKind, code: str
) -> None:
    job = env.job()
    await run_steps(connector, job, env.http)
    await env.fault(on="publish", **fault)
    error = await failure(connector.publish(job, env.http))
    assert (error.kind, error.code) == (kind, code)
    assert error.raw["error"]["code"] and error.message.startswith("Threads answered")
    assert await env.posts() == []
    assert isinstance(await connector.publish(job, env.http), Published)  # the fault is used up


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


async def test_timeout_and_connection_errors(connector: ThreadsConnector, env: Env) -> None:
    await env.fault(on="create", delay=1)
    job = env.job()
    async with httpx.AsyncClient(timeout=0.3) as impatient:
        error = await failure(connector.steps(job)[0].run(job, impatient))
    assert error.kind is ErrorKind.timeout
    closed = ThreadsConnector(f"http://127.0.0.1:{free_port()}")
    error = await failure(closed.steps(job)[0].run(job, env.http))
    assert (error.kind, error.code) == (ErrorKind.connection, "connection_failed")


async def test_expired_and_missing_tokens(connector: ThreadsConnector, env: Env) -> None:
    await env.add_user(username="lapsed", access_token="old-token", expires_in=0)
    error = await failure(run_steps(connector, env.job(access_token="old-token"), env.http))
    assert (error.kind, error.code) == (ErrorKind.token_expired, "token_expired")
    assert (error.raw["error"]["code"], error.raw["error"]["error_subcode"]) == (190, 463)
    error = await failure(run_steps(connector, env.job(access_token=None), env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "no_access_token")


async def test_refresh(connector: ThreadsConnector, env: Env) -> None:
    before = dt.datetime.now(dt.UTC)
    tokens = await connector.refresh(env.job().account, env.http)
    assert tokens.access_token != TOKEN and tokens.refresh_token is None
    assert tokens.expires_at is not None
    assert dt.timedelta(days=59) < tokens.expires_at - before < dt.timedelta(days=61)
    await deliver(connector, env.job("After refresh", access_token=tokens.access_token), env.http)
    [post] = await env.posts()
    assert post["user"] == {"id": env.user_id, "username": USERNAME}  # the same user


async def test_refused_refresh_needs_reauth(connector: ThreadsConnector, env: Env) -> None:
    await env.add_user(username="lapsed", access_token="old-token", expires_in=0)
    lapsed = env.job(access_token="old-token").account
    error = await failure(connector.refresh(lapsed, env.http))
    assert (error.kind, error.code, error.http_status) == (
        ErrorKind.reauth_required,
        "refresh_refused",
        400,
    )
    await env.fault(on="refresh", status=503)
    error = await failure(connector.refresh(env.job().account, env.http))
    assert error.kind is ErrorKind.server_error  # not the user's doing: retried


async def test_reconcile_finds_the_published_thread(connector: ThreadsConnector, env: Env) -> None:
    await deliver(connector, env.job("Some other post"), env.http)
    since = dt.datetime.now(dt.UTC)
    for job in (
        env.job("Find me", publishing_since=since),
        env.job("Find me too", images=("img1.jpg", "img2.png"), publishing_since=since),
        env.job(None, images=("img5.jpg",)),
    ):
        published = await deliver(connector, job, env.http)
        found = await connector.reconcile(job, env.http)
        assert isinstance(found, Published), job.text
        assert (found.platform_post_id, found.url) == (published.platform_post_id, published.url)


async def test_reconcile_says_not_published(connector: ThreadsConnector, env: Env) -> None:
    assert await connector.reconcile(env.job("Nothing made"), env.http) == NotPublished()
    job = env.job("Made, never published")
    await run_steps(connector, job, env.http)
    assert await connector.reconcile(job, env.http) == NotPublished()
    assert isinstance(await connector.publish(job, env.http), Published)  # safe to go on


async def test_reconcile_after_an_accepted_publish_timed_out(
    connector: ThreadsConnector, env: Env
) -> None:
    job = env.job("Did it go?", publishing_since=dt.datetime.now(dt.UTC))
    await run_steps(connector, job, env.http)
    await env.fault(on="publish", accept_then_delay=1)
    async with httpx.AsyncClient(timeout=0.2) as impatient:
        error = await failure(connector.publish(job, impatient))
    assert error.kind is ErrorKind.timeout
    found = await connector.reconcile(job, env.http)
    [post] = await env.posts()
    assert isinstance(found, Published) and found.platform_post_id == post["id"]


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
    assert INTEGRATION.options == {"api_url", "version", "web_url"}
