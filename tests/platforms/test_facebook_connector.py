"""The Facebook Pages connector against the Facebook fake, both over real HTTP.

What every connector does (reconcile, error kinds, resuming, refresh) is in
`test_connector_contract.py`, with Facebook's data in `facebook_world.PROFILE`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import AsyncIterator

import pytest

from soku.platforms.base import ConnectorTarget
from soku.platforms.connector import CannotTell, ErrorKind, NotPublished, Published
from soku.platforms.facebook import INTEGRATION
from soku.platforms.facebook_connector import FacebookConnector
from tests.platforms.connector_world import Sandboxes, deliver, failure
from tests.platforms.facebook_world import PAGE, PROFILE, USER_TOKEN, Env
from tests.platforms.facebook_world import connector as facebook_connector


@pytest.fixture
async def env(sandboxes: Sandboxes) -> AsyncIterator[Env]:
    async with PROFILE.world(sandboxes) as world:
        yield world


@pytest.fixture
def connector(env: Env) -> FacebookConnector:
    return facebook_connector(env.fake)


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


async def test_page_rate_limit_carries_the_wait(connector: FacebookConnector, env: Env) -> None:
    await env.config(rate_limit=2)
    await deliver(connector, env.job("First"), env.http)
    await deliver(connector, env.job("Second"), env.http)
    error = await failure(connector.publish(env.job("Third"), env.http))
    assert (error.kind, error.raw["error"]["code"]) == (ErrorKind.rate_limited, 80001)
    assert error.retry_after is not None and 60 <= error.retry_after <= 3600


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


async def test_a_missing_page_needs_reauth(connector: FacebookConnector, env: Env) -> None:
    error = await failure(connector.publish(env.job(platform_user_id=None), env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "no_page_id")
    assert (await env.calls())["publish"] == 0


async def test_refresh_asks_the_login_that_manages_the_page(
    connector: FacebookConnector, env: Env
) -> None:
    """A Page token is renewed from the user token kept as the refresh token."""
    account = await env.refreshable()
    renewed = await connector.refresh(account, env.http)
    assert (renewed.refresh_token, renewed.expires_at) == (USER_TOKEN, None)
    stranger = env.job(refresh_token="someone-else").account
    error = await failure(connector.refresh(stranger, env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "page_not_managed")
    await env.fault(on="accounts", error_code="token_expired")
    error = await failure(connector.refresh(account, env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "user_token_expired")


async def test_refresh_finds_the_page_past_the_first_answer(
    connector: FacebookConnector, env: Env
) -> None:
    """A login managing 250 Pages: this one, listed last, is in the third answer."""
    for number in range(249):
        other = {"id": str(3000 + number), "user_token": USER_TOKEN}
        assert (await env.http.post(f"{env.fake}/_pages", json=other)).status_code == 201
    renewed = await connector.refresh(await env.refreshable(), env.http)
    assert renewed.access_token and renewed.refresh_token == USER_TOKEN
    assert (await env.calls())["accounts"] == 3


async def test_a_page_not_managed_keeps_the_other_pages_tokens_out_of_the_error(
    connector: FacebookConnector, env: Env
) -> None:
    """`/me/accounts` lists every Page token of the login; the error stored and shown to the
    caller (`platformResponse`) keeps the listing, not those tokens."""
    other = {"id": "2000", "user_token": "login-token"}
    assert (await env.http.post(f"{env.fake}/_pages", json=other)).status_code == 201
    error = await failure(connector.refresh(env.job(refresh_token="login-token").account, env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "page_not_managed")
    [listed] = error.raw["data"]
    assert (listed["id"], listed["access_token"]) == ("2000", "[redacted]")


async def test_reconcile_tells_a_photo_post_from_a_text_post(
    connector: FacebookConnector, env: Env
) -> None:
    await deliver(connector, env.job("Other text"), env.http)
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
    assert INTEGRATION.options == {
        "graph_url", "video_url", "web_url", "version", "authorize_url", "client_id",
        "client_secret",
    }  # fmt: skip
    assert INTEGRATION.oauth is not None
    sandbox = INTEGRATION.oauth.endpoints(ConnectorTarget("http://soku.test/sandbox/facebook"))
    assert sandbox.authorize_url == "http://soku.test/sandbox/facebook/v25.0/dialog/oauth"
    real = INTEGRATION.oauth.endpoints(ConnectorTarget(None, {"version": "v26.0"}))
    assert (real.authorize_url, real.token_url, real.api_url) == (
        "https://www.facebook.com/v26.0/dialog/oauth",
        "https://graph.facebook.com/v26.0/oauth/access_token",
        "https://graph.facebook.com/v26.0",
    )
