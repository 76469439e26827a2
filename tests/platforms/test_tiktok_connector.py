"""The TikTok connector against the TikTok fake, both served over real HTTP.

TikTok's Content Posting API lists no posts, so the shared contract (which reconciles by
listing) is not run for it; what it covers is here: each post shape, each error class,
resuming a delivery, reconciling a video by its publish_id, refreshing the token.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from soku.platforms import INTEGRATIONS, tiktok
from soku.platforms.base import ConnectorTarget
from soku.platforms.connector import CannotTell, ErrorKind, NotPublished, Published
from soku.platforms.tiktok_connector import TikTokConnector
from soku.platforms.transport import platform_client
from tests.platforms.connector_world import Sandboxes, deliver, failure, run_steps
from tests.platforms.tiktok_world import CHUNK, PHOTOS, USERNAME, VIDEO_BYTES, Env, world
from tests.platforms.tiktok_world import connector as tiktok_connector


@pytest.fixture
async def env(sandboxes: Sandboxes) -> AsyncIterator[Env]:
    async with world(sandboxes) as opened:
        yield opened


@pytest.fixture
def connector(env: Env) -> TikTokConnector:
    return tiktok_connector(env.fake)


async def test_a_chunked_video(connector: TikTokConnector, env: Env) -> None:
    job = env.job("A video #soku", video="long.mp4")
    published = await deliver(connector, job, env.http)
    names = [step.name for step in connector.steps(job)]
    assert names == ["creator", "init", "chunk_0", "chunk_1"]  # the last chunk is the publish
    assert published.url == f"{env.fake}/@{USERNAME}/video/{published.platform_post_id}"
    [post] = await env.posts()
    assert (post["id"], post["kind"], post["text"]) == (published.platform_post_id, "VIDEO",
                                                        "A video #soku")  # fmt: skip
    assert post["privacy_level"] == "PUBLIC_TO_EVERYONE"
    digest = hashlib.sha256(env.file("long.mp4")).hexdigest()
    publish_id = job.checkpoint["steps"]["init"]["publish_id"]
    assert post["media"] == [{"id": publish_id, "bytes": VIDEO_BYTES, "sha256": digest}]
    calls = await env.calls()
    assert (calls["upload"], calls["publish"]) == (2, 1)  # the last chunk is the publish


async def test_a_small_video_goes_whole(connector: TikTokConnector, env: Env) -> None:
    job = env.job(None, video="clip.mp4")
    published = await deliver(connector, job, env.http)
    assert [step.name for step in connector.steps(job)] == ["creator", "init"]
    init = job.checkpoint["steps"]["init"]
    assert init["chunk_count"] == 1 and init["chunk_size"] == len(env.file("clip.mp4"))
    assert published.url is not None and "/video/" in published.url


@pytest.mark.parametrize("count", [1, 2, 35])
async def test_a_photo_post(connector: TikTokConnector, env: Env, count: int) -> None:
    names = tuple(PHOTOS[n % 2] + f"?n={n}" for n in range(count))
    job = env.job("Photos", images=names)
    published = await deliver(connector, job, env.http)
    assert [step.name for step in connector.steps(job)] == ["creator"]
    assert published.url == f"{env.fake}/@{USERNAME}/photo/{published.platform_post_id}"
    [post] = await env.posts()
    assert post["kind"] == "PHOTO" and post["text"] == "Photos"
    assert post["media"] == [env.media.url(name) for name in names]


async def test_a_png_photo_fails_processing(connector: TikTokConnector, env: Env) -> None:
    error = await failure(deliver(connector, env.job(images=("img2.png",)), env.http))
    assert error.kind is ErrorKind.processing_failed
    assert "file_format_check_failed" in error.message
    assert error.raw["status"] == "FAILED"


@pytest.mark.parametrize(
    ("config", "level"),
    [
        ({"private_account": True}, "MUTUAL_FOLLOW_FRIENDS"),
        ({"audited": False}, "MUTUAL_FOLLOW_FRIENDS"),
    ],
)
async def test_the_level_follows_the_creator(
    connector: TikTokConnector, env: Env, config: dict[str, Any], level: str
) -> None:
    await env.config(**config)
    job = env.job(video="clip.mp4")
    if config.get("audited") is False:  # only SELF_ONLY gets through an unaudited app
        error = await failure(deliver(connector, job, env.http))
        assert error.code == "unaudited_client_can_only_post_to_private_accounts"
        assert error.kind is ErrorKind.permanent
        private = tiktok_connector(env.fake, privacy_level="SELF_ONLY")
        await deliver(private, env.job(video="clip.mp4"), env.http)
        [post] = await env.posts()
        assert post["privacy_level"] == "SELF_ONLY"
        return
    await deliver(connector, job, env.http)
    assert job.checkpoint["steps"]["creator"]["privacy_level"] == level


ERRORS = [
    ({"error_code": "token_expired"}, ErrorKind.token_expired, "token_expired"),
    ({"error_code": "scope_not_authorized"}, ErrorKind.reauth_required, "scope_not_authorized"),
    ({"status": 500}, ErrorKind.server_error, "server_error"),
    ({"error_code": "internal_error"}, ErrorKind.server_error, "server_error"),
    ({"error_code": "spam_risk_too_many_posts"}, ErrorKind.permanent, "spam_risk_too_many_posts"),
    ({"error_code": "invalid_params"}, ErrorKind.permanent, "invalid_params"),
    ({"error_code": "url_ownership_unverified"}, ErrorKind.permanent, "url_ownership_unverified"),
]


@pytest.mark.parametrize(("fault", "kind", "code"), ERRORS)
async def test_errors_map_to_kinds(
    connector: TikTokConnector, env: Env, fault: dict[str, Any], kind: ErrorKind, code: str
) -> None:
    await env.fault(on="publish", **fault)
    error = await failure(deliver(connector, env.job(images=PHOTOS[:1]), env.http))
    assert (error.kind, error.code) == (kind, code)
    assert error.message.startswith("TikTok answered")
    assert error.raw["error"]["code"] not in ("", "ok")


async def test_a_rate_limit_says_when_to_retry(connector: TikTokConnector, env: Env) -> None:
    await env.fault(on="video_init", error_code="rate_limit_exceeded", retry_after=7)
    error = await failure(deliver(connector, env.job(video="clip.mp4"), env.http))
    assert (error.kind, error.retry_after, error.http_status) == (ErrorKind.rate_limited, 7, 429)
    await env.config(init_per_minute=0)  # the fake's own per-minute limit
    error = await failure(deliver(connector, env.job(video="clip.mp4"), env.http))
    assert error.kind is ErrorKind.rate_limited and error.retry_after


async def test_a_missing_token_needs_reauth(connector: TikTokConnector, env: Env) -> None:
    error = await failure(deliver(connector, env.job(access_token=None), env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "no_access_token")


async def test_a_processing_failure(connector: TikTokConnector, env: Env) -> None:
    await env.fault(
        on="status", error_code="processing_failed", fail_reason="frame_rate_check_failed"
    )
    error = await failure(deliver(connector, env.job(video="clip.mp4"), env.http))
    assert error.kind is ErrorKind.processing_failed
    assert "frame_rate_check_failed" in error.message


async def test_moderation_reports_the_publish_id(env: Env) -> None:
    await env.config(processing_polls=1, moderation_polls=3)
    hasty = tiktok_connector(env.fake, max_processing_wait=0)
    job = env.job(video="clip.mp4")
    first = await deliver(hasty, job, env.http)
    publish_id = job.checkpoint["steps"]["init"]["publish_id"]
    assert (first.platform_post_id, first.url) == (publish_id, None)
    patient = tiktok_connector(env.fake, max_processing_wait=60)
    found = await patient.reconcile(job, env.http)
    while isinstance(found, Published) and found.url is None:  # three reads in moderation
        found = await patient.reconcile(job, env.http)
    assert isinstance(found, Published)
    assert found.url == f"{env.fake}/@{USERNAME}/video/{found.platform_post_id}"


async def test_resume_after_a_crash_mid_upload(connector: TikTokConnector, env: Env) -> None:
    job = env.job(video="long.mp4")
    saved = await run_steps(connector, job, env.http, stop_after="chunk_0")
    assert set(saved["steps"]) == {"creator", "init", "chunk_0"}
    resumed = dataclasses.replace(job, checkpoint=saved)
    published = await deliver(tiktok_connector(env.fake), resumed, env.http)
    calls = await env.calls()
    assert (calls["video_init"], calls["upload"], calls["creator_info"]) == (1, 2, 1)
    [post] = await env.posts()
    assert post["id"] == published.platform_post_id
    assert post["media"][0]["sha256"] == hashlib.sha256(env.file("long.mp4")).hexdigest()


async def test_resume_after_a_failed_chunk(connector: TikTokConnector, env: Env) -> None:
    job = env.job(video="long.mp4")
    await run_steps(connector, job, env.http, stop_after="chunk_0")
    await env.fault(on="upload", status=503)
    error = await failure(run_steps(connector, job, env.http))
    assert error.kind is ErrorKind.server_error
    await deliver(connector, job, env.http)
    [publish] = (await env.inspect("publishes"))["publishes"]
    assert (publish["received"], publish["chunks"]) == (VIDEO_BYTES, 3)


async def test_a_chunk_sent_twice_is_taken_once(connector: TikTokConnector, env: Env) -> None:
    job = env.job(video="long.mp4")
    saved = await run_steps(connector, job, env.http)
    del saved["steps"]["chunk_1"]  # the worker died after the PUT, before saving it
    resumed = dataclasses.replace(job, checkpoint=saved)
    await deliver(connector, resumed, env.http)
    [publish] = (await env.inspect("publishes"))["publishes"]
    assert publish["received"] == VIDEO_BYTES and (await env.calls())["upload"] == 3


async def test_reconcile_a_video(connector: TikTokConnector, env: Env) -> None:
    job = env.job(video="long.mp4", publishing_since=dt.datetime.now(dt.UTC))
    await run_steps(connector, job, env.http)
    assert isinstance(await connector.reconcile(job, env.http), NotPublished)
    published = await connector.publish(job, env.http)
    found = await connector.reconcile(job, env.http)
    assert isinstance(found, Published)
    assert (found.platform_post_id, found.url) == (published.platform_post_id, published.url)


async def test_reconcile_a_failed_video_fails(connector: TikTokConnector, env: Env) -> None:
    job = env.job(video="clip.mp4")
    await run_steps(connector, job, env.http)
    await env.fault(on="status", error_code="processing_failed")
    error = await failure(connector.publish(job, env.http))
    assert error.kind is ErrorKind.processing_failed
    error = await failure(connector.reconcile(job, env.http))
    assert error.kind is ErrorKind.processing_failed


async def test_reconcile_a_photo_post_cannot_tell(connector: TikTokConnector, env: Env) -> None:
    job = env.job(images=PHOTOS)
    await deliver(connector, job, env.http)
    assert isinstance(await connector.reconcile(job, env.http), CannotTell)


async def test_a_refresh(env: Env) -> None:
    await env.config(client_key="soku-app", client_secret="s3cret")
    app = tiktok_connector(env.fake, client_id="soku-app", client_secret="s3cret")
    account = env.job().account
    tokens = await app.refresh(account, env.http)
    assert tokens.access_token != account.access_token
    assert tokens.expires_at is not None
    left = tokens.expires_at - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=23) < left <= dt.timedelta(hours=24)
    fresh = dataclasses.replace(env.job(video="clip.mp4"), account=dataclasses.replace(
        account, access_token=tokens.access_token))  # fmt: skip
    await deliver(app, fresh, env.http)
    [post] = await env.posts()
    assert post["username"] == USERNAME
    error = await failure(tiktok_connector(env.fake).refresh(account, env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "invalid_client")


async def test_a_refused_refresh_needs_the_user(connector: TikTokConnector, env: Env) -> None:
    await env.config(refresh_lifetime_secs=0)  # the one it adopts has expired already
    account = env.job(refresh_token="rft.unknown").account
    error = await failure(connector.refresh(account, env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "invalid_grant")
    error = await failure(connector.refresh(env.job(refresh_token=None).account, env.http))
    assert error.code == "no_refresh_token"


def test_integration_points_at_the_sandbox_or_tiktok() -> None:
    assert INTEGRATIONS["tiktok"] is tiktok.INTEGRATION
    sandbox = tiktok.INTEGRATION.make_connector(ConnectorTarget("http://s/sandbox/tiktok"))
    assert isinstance(sandbox, TikTokConnector)
    assert sandbox.api.url == "http://s/sandbox/tiktok"
    assert sandbox.token_url == "http://s/sandbox/tiktok/v2/oauth/token/"
    options = {"api_url": "http://api", "token_url": "http://t/", "web_url": "http://w"}
    real = tiktok.INTEGRATION.make_connector(ConnectorTarget(None, options))
    assert isinstance(real, TikTokConnector)
    assert (real.api.url, real.token_url, real.web_url) == ("http://api", "http://t/", "http://w")
    default = tiktok.INTEGRATION.make_connector(ConnectorTarget(None))
    assert isinstance(default, TikTokConnector)
    assert default.api.url == "https://open.tiktokapis.com"
    assert default.upload.chunk_bytes > CHUNK


async def test_a_last_chunk_accepted_then_cut_is_reconciled(
    connector: TikTokConnector, env: Env
) -> None:
    job = env.job(video="clip.mp4")
    await run_steps(connector, job, env.http)
    await env.fault(on="publish", accept_then_delay=2)
    async with platform_client(4, 0.5) as hasty:
        error = await failure(connector.publish(job, hasty))
    assert error.kind is ErrorKind.timeout
    found = await connector.reconcile(job, env.http)
    assert isinstance(found, Published)
    [post] = await env.posts()
    assert found.platform_post_id == post["id"]
