"""The Facebook Pages connector against the Facebook fake, both over real HTTP.

The media are served by `tests.media_files.MediaServer`, standing in for our media store's
public URLs, which the fake fetches as Facebook does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from soku.platforms.base import ConnectorTarget
from soku.platforms.connector import (
    CannotTell,
    ErrorKind,
    Job,
    NotPublished,
    PlatformError,
    Published,
)
from soku.platforms.facebook import INTEGRATION
from soku.platforms.facebook_connector import FacebookConnector
from soku.sandbox.facebook import create_facebook_fake
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

PAGE, TOKEN, USER_TOKEN = "104857600012345", "page-token", "long-lived-user-token"
ACCOUNT = dict(account_id="fb_main", platform_user_id=PAGE, access_token=TOKEN)


@pytest.fixture(scope="session")
async def fake_url() -> AsyncIterator[str]:
    async with serving(create_facebook_fake()) as url:
        yield url


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServer]:
    server = MediaServer(Path(tmp_path_factory.mktemp("facebook_media")))
    yield server
    server.close()


@dataclasses.dataclass
class Env(FakeControls):
    """The test's world: the fake and a client like the engine's, the media server."""

    media: MediaServer

    def job(
        self, text: str | None = "Hello", images: int = 0, video: str | None = None, **more: Any
    ) -> Job:
        """`images` distinct image URLs; `more`: `publishing_since`, or account fields."""
        return make_job(
            "facebook",
            ACCOUNT,
            text=text,
            image_urls=self.media.images(images),
            video_urls=[self.media.url(video)] if video else [],
            **more,
        )

    async def uploads(self) -> dict[str, Any]:
        return dict(await self.inspect("uploads"))


@pytest.fixture
async def env(fake_url: str, media: MediaServer) -> AsyncIterator[Env]:
    async with fresh_fake(fake_url) as fake:
        yield Env(fake.http, fake_url, media)


@pytest.fixture
def connector(fake_url: str) -> FacebookConnector:
    return FacebookConnector(fake_url, video_url=fake_url, web_url=fake_url)


async def assert_shows(env: Env, url: str | None, text: str) -> None:
    assert url is not None
    page = await env.http.get(url)
    assert page.status_code == 200 and text in page.text


async def test_text_post(connector: FacebookConnector, env: Env) -> None:
    job = env.job("Just words")
    assert list(connector.steps(job)) == []
    published = await deliver(connector, job, env.http)
    assert re.fullmatch(rf"{PAGE}_[0-9]{{15,}}", published.platform_post_id)
    local = published.platform_post_id.partition("_")[2]
    assert published.url == f"{env.fake}/{PAGE}/posts/{local}"
    [post] = await env.posts()
    assert (post["id"], post["page"], post["text"], post["media"]) == (
        published.platform_post_id,
        PAGE,
        "Just words",
        [],
    )
    await assert_shows(env, published.url, "Just words")
    assert (await env.calls())["publish"] == 1  # the permalink came with the post


async def test_one_photo(connector: FacebookConnector, env: Env) -> None:
    job = env.job("One picture", images=1)
    assert list(connector.steps(job)) == []
    published = await deliver(connector, job, env.http)
    [post] = await env.posts()
    assert post["id"] == published.platform_post_id and post["text"] == "One picture"
    assert [(m["kind"], m["url"]) for m in post["media"]] == [("photo", job.image_urls[0])]
    await assert_shows(env, published.url, "One picture")
    calls = await env.calls()
    assert (calls["publish"], calls["photo"]) == (1, 0)


async def test_several_photos(connector: FacebookConnector, env: Env) -> None:
    job = env.job("Pictures", images=3)
    assert [step.name for step in connector.steps(job)] == ["photo_0", "photo_1", "photo_2"]
    published = await deliver(connector, job, env.http)
    [post] = await env.posts()
    uploaded = [job.checkpoint["steps"][f"photo_{n}"]["photo_id"] for n in range(3)]
    assert [m["id"] for m in post["media"]] == uploaded
    assert [m["url"] for m in post["media"]] == list(job.image_urls)
    assert post["id"] == published.platform_post_id and post["text"] == "Pictures"
    await assert_shows(env, published.url, "Pictures")
    photos = (await env.uploads())["photos"]
    assert {(p["published"], p["post_id"]) for p in photos} == {(False, post["id"])}


async def test_video_post(connector: FacebookConnector, env: Env) -> None:
    job = env.job("A film", video="clip.mp4")
    assert connector.steps(job) == []  # the upload is the publish: nothing comes before it
    published = await connector.publish(job, env.http)
    [video] = (await env.uploads())["videos"]
    assert (video["id"], video["url"], video["published"]) == (
        published.platform_post_id,
        job.video_urls[0],
        True,
    )
    assert published.url == f"{env.fake}/{PAGE}/videos/{video['id']}/"
    [post] = await env.posts()
    assert [(m["id"], m["kind"]) for m in post["media"]] == [(video["id"], "video")]
    assert post["text"] == "A film"
    await assert_shows(env, published.url, "A film")


async def test_resume_after_a_failure_keeps_finished_photos(env: Env) -> None:
    first = FacebookConnector(env.fake, web_url=env.fake)
    job = env.job("Resumed", images=3)
    saved = await run_steps(first, job, env.http, stop_after="photo_0")
    await env.fault(on="photo", status=503, user_id=PAGE)  # photo_1 fails
    with pytest.raises(PlatformError) as caught:
        await run_steps(first, dataclasses.replace(job, checkpoint=saved), env.http)
    assert caught.value.kind is ErrorKind.server_error
    saved = json.loads(json.dumps(job.checkpoint))  # what the engine kept: photo_0 only
    assert list(saved["steps"]) == ["photo_0"]
    second = FacebookConnector(env.fake, web_url=env.fake)  # another worker
    resumed = dataclasses.replace(job, checkpoint=saved)
    published = await deliver(second, resumed, env.http)
    assert resumed.checkpoint["steps"]["photo_0"] == saved["steps"]["photo_0"]
    photos = (await env.uploads())["photos"]
    assert len(photos) == 3  # photo_0 once; the failed call uploaded nothing
    assert (await env.calls())["photo"] == 4
    [post] = await env.posts()
    assert post["id"] == published.platform_post_id
    assert [m["id"] for m in post["media"]] == [p["id"] for p in photos]


@pytest.mark.parametrize(
    ("fault", "kind", "code"),
    [
        ({"error_code": "rate_limited", "retry_after": 30}, ErrorKind.rate_limited, "rate_limited"),
        ({"error_code": "page_rate_limited"}, ErrorKind.rate_limited, "rate_limited"),
        ({"status": 500}, ErrorKind.server_error, "server_error"),
        ({"status": 503, "retry_after": 7}, ErrorKind.server_error, "server_error"),
        ({"error_code": "token_expired"}, ErrorKind.token_expired, "token_expired"),
        ({"error_code": "token_invalid"}, ErrorKind.reauth_required, "reauth_required"),
        ({"error_code": "duplicate_content"}, ErrorKind.permanent, "duplicate_content"),
        ({"error_code": "permission_denied"}, ErrorKind.permanent, "permission_denied"),
    ],
)
async def test_publish_errors_map_to_kinds(
    connector: FacebookConnector, env: Env, fault: dict[str, Any], kind: ErrorKind, code: str
) -> None:
    await env.fault(on="publish", **fault)
    error = await failure(connector.publish(env.job(), env.http))
    assert (error.kind, error.code) == (kind, code)
    assert error.raw["error"]["code"] and error.message.startswith("Facebook answered")
    assert error.retry_after == fault.get("retry_after")
    assert await env.posts() == []


async def test_a_real_duplicate_is_permanent(connector: FacebookConnector, env: Env) -> None:
    await deliver(connector, env.job("Only once"), env.http)
    error = await failure(connector.publish(env.job("Only once"), env.http))
    assert (error.kind, error.code, error.http_status) == (
        ErrorKind.permanent,
        "duplicate_content",
        400,
    )
    assert error.raw["error"]["code"] == 506 and len(await env.posts()) == 1


async def test_page_rate_limit_carries_the_wait(connector: FacebookConnector, env: Env) -> None:
    await env.config(rate_limit=2)
    await deliver(connector, env.job("First"), env.http)
    await deliver(connector, env.job("Second"), env.http)
    error = await failure(connector.publish(env.job("Third"), env.http))
    assert (error.kind, error.raw["error"]["code"]) == (ErrorKind.rate_limited, 80001)
    assert error.retry_after is not None and 60 <= error.retry_after <= 3600


async def test_timeout_and_connection_errors(connector: FacebookConnector, env: Env) -> None:
    await env.fault(on="photo", delay=1)
    job = env.job(images=2)
    async with httpx.AsyncClient(timeout=0.3) as impatient:
        error = await failure(connector.steps(job)[0].run(job, impatient))
    assert error.kind is ErrorKind.timeout
    closed = FacebookConnector(f"http://127.0.0.1:{free_port()}")
    error = await failure(closed.publish(env.job(), env.http))
    assert (error.kind, error.code) == (ErrorKind.connection, "connection_failed")


async def test_a_video_facebook_cannot_fetch_is_not_shown(
    connector: FacebookConnector, env: Env
) -> None:
    """Facebook fetches the video after accepting it; a failure shows on the video only."""
    published = await connector.publish(env.job("Lost film", video="gone.mp4"), env.http)
    [video] = (await env.uploads())["videos"]
    assert video["id"] == published.platform_post_id and video["state"] == "error"
    assert await env.posts() == []


async def test_a_photo_facebook_cannot_fetch(connector: FacebookConnector, env: Env) -> None:
    job = dataclasses.replace(env.job(images=1), image_urls=(env.media.url("page.html"),))
    error = await failure(connector.publish(job, env.http))
    assert (error.kind, error.raw["error"]["code"]) == (ErrorKind.permanent, 324)
    assert await env.posts() == []


async def test_missing_token_or_page_needs_reauth(connector: FacebookConnector, env: Env) -> None:
    error = await failure(connector.publish(env.job(access_token=None), env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "no_access_token")
    error = await failure(connector.publish(env.job(platform_user_id=None), env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "no_page_id")
    assert (await env.calls())["publish"] == 0


async def test_refresh(connector: FacebookConnector, env: Env) -> None:
    error = await failure(connector.refresh(env.job().account, env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "no_refresh_token")
    body = {"id": PAGE, "name": "Soku Page", "user_token": USER_TOKEN}
    assert (await env.http.post(f"{env.fake}/_pages", json=body)).status_code == 201
    account = env.job(refresh_token=USER_TOKEN).account
    renewed = await connector.refresh(account, env.http)
    assert renewed.access_token not in (TOKEN, USER_TOKEN)
    assert (renewed.refresh_token, renewed.expires_at) == (USER_TOKEN, None)
    await deliver(
        connector, env.job("With the new token", access_token=renewed.access_token), env.http
    )
    [post] = await env.posts()
    assert post["page"] == PAGE
    stranger = env.job(refresh_token="someone-else").account
    error = await failure(connector.refresh(stranger, env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "page_not_managed")
    await env.fault(on="accounts", error_code="token_expired")
    error = await failure(connector.refresh(account, env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "user_token_expired")


async def test_reconcile_finds_the_post(connector: FacebookConnector, env: Env) -> None:
    await deliver(connector, env.job("Some other post"), env.http)
    since = dt.datetime.now(dt.UTC)
    for job in (
        env.job("Find me", publishing_since=since),
        env.job("One picture", images=1, publishing_since=since),
        env.job("Several pictures", images=2, publishing_since=since),
        env.job(None, images=3),
    ):
        published = await deliver(connector, job, env.http)
        found = await connector.reconcile(job, env.http)
        assert isinstance(found, Published), job.text
        assert (found.platform_post_id, found.url) == (published.platform_post_id, published.url)


async def test_reconcile_says_not_published(connector: FacebookConnector, env: Env) -> None:
    await deliver(connector, env.job("Other text"), env.http)
    assert await connector.reconcile(env.job("Never sent"), env.http) == NotPublished()
    future = dt.datetime(2999, 1, 1, tzinfo=dt.UTC)
    later = env.job("Other text", publishing_since=future)
    assert await connector.reconcile(later, env.http) == NotPublished()
    pictured = env.job("Other text", images=2)
    await run_steps(connector, pictured, env.http)  # uploaded, never posted
    assert await connector.reconcile(pictured, env.http) == NotPublished()
    as_photo = env.job("Other text", images=1)  # same text, but a photo post
    assert await connector.reconcile(as_photo, env.http) == NotPublished()


async def test_reconcile_cannot_tell_between_twins(connector: FacebookConnector, env: Env) -> None:
    for _ in range(2):  # the same caption twice: Facebook takes it for photos
        await deliver(connector, env.job("Twin", images=1), env.http)
    result = await connector.reconcile(env.job("Twin", images=1), env.http)
    assert isinstance(result, CannotTell) and "2 posts" in result.reason


async def test_reconcile_a_video(connector: FacebookConnector, env: Env) -> None:
    since = dt.datetime.now(dt.UTC)
    job = env.job("Film to find", video="clip.mp4", publishing_since=since)
    assert await connector.reconcile(job, env.http) == NotPublished()
    other = env.job("Another film", video="clip.mp4", publishing_since=since)
    await connector.publish(other, env.http)
    assert await connector.reconcile(job, env.http) == NotPublished()  # not this text
    published = await connector.publish(job, env.http)
    found = await connector.reconcile(job, env.http)
    assert isinstance(found, Published)
    assert (found.platform_post_id, found.url) == (published.platform_post_id, published.url)
    await connector.publish(job, env.http)
    twice = await connector.reconcile(job, env.http)
    assert isinstance(twice, CannotTell) and "2 videos" in twice.reason


async def test_reconcile_after_an_accepted_publish_timed_out(
    connector: FacebookConnector, env: Env
) -> None:
    await env.fault(on="publish", accept_then_delay=1)
    job = env.job("Did it go?", publishing_since=dt.datetime.now(dt.UTC))
    async with httpx.AsyncClient(timeout=0.2) as impatient:
        error = await failure(connector.publish(job, impatient))
    assert error.kind is ErrorKind.timeout
    found = await connector.reconcile(job, env.http)
    assert isinstance(found, Published)
    assert [post["id"] for post in await env.posts()] == [found.platform_post_id]


async def test_a_failed_listing_raises(connector: FacebookConnector, env: Env) -> None:
    await env.fault(on="list", status=503, retry_after=7)
    error = await failure(connector.reconcile(env.job(), env.http))
    assert (error.kind, error.http_status, error.retry_after) == (ErrorKind.server_error, 503, 7)


def test_integration_targets() -> None:
    sandbox = INTEGRATION.make_connector(ConnectorTarget("http://host/sandbox/facebook"))
    assert isinstance(sandbox, FacebookConnector)
    assert {sandbox.graph_url, sandbox.video_url, sandbox.web_url} == {
        "http://host/sandbox/facebook"
    }
    real = INTEGRATION.make_connector(ConnectorTarget(None, {"version": "v26.0"}))
    assert isinstance(real, FacebookConnector)
    assert (real.graph_url, real.web_url, real.version) == (
        "https://graph.facebook.com",
        "https://www.facebook.com",
        "v26.0",
    )
    assert INTEGRATION.options == {"graph_url", "video_url", "web_url", "version"}
