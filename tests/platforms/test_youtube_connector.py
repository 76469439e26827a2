"""The YouTube connector against the YouTube fake, both served over real HTTP.

YouTube takes one kind of post (one video, uploaded resumably), has no duplicate refusal and
no listing to reconcile with, so its contract is here rather than in
`test_connector_contract.py`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import AsyncIterator

import pytest

from soku.platforms import youtube
from soku.platforms.base import ConnectorTarget
from soku.platforms.connector import (
    CannotTell,
    ErrorKind,
    NotPublished,
    PlatformError,
    Published,
)
from soku.platforms.transport import platform_client
from soku.platforms.youtube_connector import YouTubeConnector
from soku.platforms.youtube_upload import Upload, send
from tests.asgi_server import free_port
from tests.platforms.connector_world import Sandboxes, deliver, failure, run_steps
from tests.platforms.youtube_world import CHANNEL, CHUNK, LONG_BYTES, REFRESH, Env, fresh, serve
from tests.platforms.youtube_world import connector as youtube_connector


@pytest.fixture
async def env(sandboxes: Sandboxes) -> AsyncIterator[Env]:
    async with fresh(await sandboxes.site("youtube", serve)) as world:
        yield world


@pytest.fixture
def connector(env: Env) -> YouTubeConnector:
    return youtube_connector(env.fake)


# --- publishing ----------------------------------------------------------------------------


async def test_a_video_with_its_title_and_description(
    connector: YouTubeConnector, env: Env
) -> None:
    job = env.job("Launch day\nAll about it,\non two lines")
    assert [step.name for step in connector.steps(job)] == ["session", "upload"]
    published = await deliver(connector, job, env.http)
    assert published.url == f"{env.fake}/watch?v={published.platform_post_id}"
    [video] = await env.posts()
    assert video["id"] == published.platform_post_id and video["channel_id"] == CHANNEL
    assert (video["title"], video["description"]) == ("Launch day", "All about it,\non two lines")
    assert video["privacy"] == "public"
    assert video["sha256"] == hashlib.sha256(env.file("clip.mp4")).hexdigest()
    page = await env.http.get(published.url)
    assert page.status_code == 200 and "Launch day" in page.text


async def test_a_long_video_goes_in_chunks(connector: YouTubeConnector, env: Env) -> None:
    published = await deliver(connector, env.job("Long one", video="long.mp4"), env.http)
    [video] = await env.posts()
    assert video["bytes"] == LONG_BYTES and video["id"] == published.platform_post_id
    assert video["sha256"] == hashlib.sha256(env.file("long.mp4")).hexdigest()
    [session] = await env.sessions()
    starts = [first for first, _ in session["puts"]]
    assert starts == [0, CHUNK, 2 * CHUNK, 3 * CHUNK]  # each byte sent once
    calls = await env.calls()
    assert (calls["insert"], calls["chunk"], calls["publish"]) == (1, 3, 1)


@pytest.mark.parametrize("answer", [200, 201])
async def test_the_last_chunk_may_answer_200_or_201(env: Env, answer: int) -> None:
    await env.config(complete_status=answer)
    published = await deliver(youtube_connector(env.fake), env.job("Either"), env.http)
    assert [v["id"] for v in await env.posts()] == [published.platform_post_id]


async def test_privacy_and_category_are_options(env: Env) -> None:
    chosen = youtube_connector(env.fake, privacy_status="unlisted", category_id="10")
    await deliver(chosen, env.job("Quiet one"), env.http)
    [video] = await env.posts()
    assert video["privacy"] == "unlisted"


async def test_an_unaudited_project_posts_privately(connector: YouTubeConnector, env: Env) -> None:
    await env.config(private_only=True)
    await deliver(connector, env.job("Locked"), env.http)
    assert [v["privacy"] for v in await env.posts()] == ["private"]


async def test_processing_is_awaited(env: Env) -> None:
    await env.config(video_polls=2)
    patient = youtube_connector(env.fake, max_processing_wait=5.0)
    await deliver(patient, env.job("Processed"), env.http)
    assert (await env.calls())["status"] == 3
    [video] = await env.posts()
    assert video["upload_status"] == "processed"


async def test_a_processing_failure(connector: YouTubeConnector, env: Env) -> None:
    await env.fault(on="status", error_code="processing_failed")
    error = await failure(deliver(connector, env.job("Broken"), env.http))
    assert (error.kind, error.code) == (ErrorKind.processing_failed, "processing_failed")
    assert "transcodeFailed" in error.message and error.raw["status"]["uploadStatus"] == "failed"


# --- errors --------------------------------------------------------------------------------

ERRORS = [
    pytest.param({"error_code": "quota_exceeded"}, ErrorKind.rate_limited, "quota_exceeded",
                 id="quota"),
    pytest.param({"error_code": "upload_limit_exceeded"}, ErrorKind.rate_limited,
                 "upload_limit_exceeded", id="upload-limit"),
    pytest.param({"status": 429}, ErrorKind.rate_limited, "rate_limited", id="429"),
    pytest.param({"error_code": "token_expired"}, ErrorKind.token_expired, "token_expired",
                 id="401"),
    pytest.param({"error_code": "forbidden"}, ErrorKind.permanent, "forbidden", id="403"),
    pytest.param({"error_code": "invalid_title"}, ErrorKind.permanent, "invalid_title",
                 id="invalid-title"),
    pytest.param({"status": 500}, ErrorKind.server_error, "server_error", id="500"),
    pytest.param({"status": 503}, ErrorKind.server_error, "server_error", id="503"),
]  # fmt: skip


@pytest.mark.parametrize(("fault", "kind", "code"), ERRORS)
async def test_errors_map_to_kinds(
    connector: YouTubeConnector, env: Env, fault: dict[str, object], kind: ErrorKind, code: str
) -> None:
    await env.fault(on="insert", **fault)
    error = await failure(deliver(connector, env.job(), env.http))
    assert (error.kind, error.code) == (kind, code)
    assert error.message.startswith("YouTube answered"), error.message
    assert error.raw["error"]["errors"][0]["reason"], error.raw


async def test_a_daily_quota_waits_for_midnight_pacific(
    connector: YouTubeConnector, env: Env
) -> None:
    await env.config(quota_model="units")
    for n in range(6):  # 6 x 1600 units of 10,000
        await deliver(connector, env.job(f"Video {n}"), env.http)
    error = await failure(deliver(connector, env.job("One too many"), env.http))
    assert (error.kind, error.code, error.http_status) == (
        ErrorKind.rate_limited, "quota_exceeded", 403)  # fmt: skip
    assert error.retry_after is not None and 0 < error.retry_after <= 25 * 3600


async def test_a_channel_cap_and_a_retry_after(connector: YouTubeConnector, env: Env) -> None:
    await env.config(uploads_per_day=1)
    await deliver(connector, env.job("First"), env.http)
    error = await failure(deliver(connector, env.job("Second"), env.http))
    assert (error.kind, error.code) == (ErrorKind.rate_limited, "upload_limit_exceeded")
    await env.fault(on="insert", status=429, retry_after=7)
    error = await failure(deliver(connector, env.job("Third"), env.http))
    assert (error.kind, error.retry_after) == (ErrorKind.rate_limited, 7)


async def test_the_fake_refuses_what_youtube_refuses(connector: YouTubeConnector, env: Env) -> None:
    error = await failure(deliver(connector, env.job(""), env.http))
    assert (error.kind, error.code, error.http_status) == (
        ErrorKind.permanent,
        "invalid_title",
        400,
    )
    error = await failure(deliver(connector, env.job("Title\nwith <b>"), env.http))
    assert error.code == "invalid_description"
    assert await env.posts() == []


async def test_a_missing_token_and_a_refused_connection(env: Env) -> None:
    job = env.job("No token", access_token=None)
    error = await failure(deliver(youtube_connector(env.fake), job, env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "no_access_token")
    closed = youtube_connector(f"http://127.0.0.1:{free_port()}")
    error = await failure(closed.refresh(env.job().account, env.http))
    assert error.kind is ErrorKind.connection


async def test_a_slow_answer_is_a_timeout(connector: YouTubeConnector, env: Env) -> None:
    await env.fault(on="insert", delay=1)
    async with platform_client(4, 0.2) as impatient:
        error = await failure(deliver(connector, env.job("Slow"), impatient))
    assert error.kind is ErrorKind.timeout


# --- resuming and reconciling ----------------------------------------------------------------


async def test_a_crash_mid_upload_resumes_where_youtube_stands(env: Env) -> None:
    """A worker sent one chunk and died before its `upload` step was saved."""
    job = env.job("Resumed", video="long.mp4")
    saved = await run_steps(youtube_connector(env.fake), job, env.http, stop_after="session")
    opened = saved["steps"]["session"]
    upload = Upload(opened["session"], LONG_BYTES, opened["type"], job.video_urls[0], "yt-access")
    await send(env.http, upload, 0, CHUNK, CHUNK)
    resumed = env.job("Resumed", video="long.mp4")
    resumed.checkpoint.update(saved)
    published = await deliver(youtube_connector(env.fake), resumed, env.http)
    [session] = await env.sessions()
    assert [first for first, _ in session["puts"]] == [0, CHUNK, 2 * CHUNK, 3 * CHUNK]
    [video] = await env.posts()
    assert video["id"] == published.platform_post_id
    assert video["sha256"] == hashlib.sha256(env.file("long.mp4")).hexdigest()


async def test_a_failed_chunk_is_sent_again_by_the_next_attempt(env: Env) -> None:
    job = env.job("Flaky", video="long.mp4")
    await env.fault(on="chunk", status=503)
    error = await failure(run_steps(youtube_connector(env.fake), job, env.http))
    assert error.kind is ErrorKind.server_error
    published = await deliver(youtube_connector(env.fake), job, env.http)
    calls = await env.calls()
    assert (calls["insert"], calls["chunk"], calls["publish"]) == (1, 4, 1)
    assert [v["id"] for v in await env.posts()] == [published.platform_post_id]


async def test_an_expired_session_is_opened_again(connector: YouTubeConnector, env: Env) -> None:
    job = env.job("Late", video="long.mp4")
    await run_steps(connector, job, env.http, stop_after="session")
    await env.expire_sessions()
    published = await deliver(connector, job, env.http)
    assert (await env.calls())["insert"] == 2
    assert [v["id"] for v in await env.posts()] == [published.platform_post_id]


async def test_reconcile_before_and_after_the_upload(connector: YouTubeConnector, env: Env) -> None:
    job = env.job("Staged", video="long.mp4")
    assert await connector.reconcile(job, env.http) == NotPublished()
    await run_steps(connector, job, env.http)
    assert await connector.reconcile(job, env.http) == NotPublished()
    published = await connector.publish(job, env.http)
    found = await connector.reconcile(job, env.http)
    assert isinstance(found, Published)
    assert (found.platform_post_id, found.url) == (published.platform_post_id, published.url)


async def test_reconcile_after_an_accepted_publish_timed_out(
    connector: YouTubeConnector, env: Env
) -> None:
    job = env.job("Did it go?", publishing_since=dt.datetime.now(dt.UTC))
    await run_steps(connector, job, env.http)
    await env.fault(on="publish", accept_then_delay=1)
    async with platform_client(4, 0.2) as impatient:
        error = await failure(connector.publish(job, impatient))
    assert error.kind is ErrorKind.timeout
    found = await connector.reconcile(job, env.http)
    assert isinstance(found, Published), found
    assert [video["id"] for video in await env.posts()] == [found.platform_post_id]
    again = await connector.publish(job, env.http)  # the session answers its video: no new one
    assert again.platform_post_id == found.platform_post_id and len(await env.posts()) == 1


async def test_reconcile_cannot_tell_once_the_session_expired(
    connector: YouTubeConnector, env: Env
) -> None:
    job = env.job("Gone", video="long.mp4")
    await run_steps(connector, job, env.http)
    await env.expire_sessions()
    assert isinstance(await connector.reconcile(job, env.http), CannotTell)


# --- tokens and options --------------------------------------------------------------------


async def test_refresh_keeps_the_refresh_token(connector: YouTubeConnector, env: Env) -> None:
    account = env.job().account
    tokens = await connector.refresh(account, env.http)
    assert tokens.access_token != account.access_token and tokens.refresh_token == REFRESH
    assert tokens.expires_at is not None
    left = tokens.expires_at - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=55) < left <= dt.timedelta(hours=1)
    fresh_job = env.job("With the new token", access_token=tokens.access_token)
    await deliver(connector, fresh_job, env.http)
    assert [v["channel_id"] for v in await env.posts()] == [CHANNEL]


async def test_a_refresh_token_of_an_app_in_testing_expires(env: Env) -> None:
    await env.config(refresh_lifetime_secs=0)
    await env.add_user(id="UCtestingModeChannel00", refresh_token="1//short-lived")
    job = env.job(refresh_token="1//short-lived")
    error = await failure(youtube_connector(env.fake).refresh(job.account, env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "invalid_grant")


async def test_refresh_sends_the_app_credentials(env: Env) -> None:
    await env.config(client_id="soku-app", client_secret="s3cret")
    account = env.job().account
    error = await failure(youtube_connector(env.fake).refresh(account, env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "invalid_client")
    named = youtube_connector(env.fake, client_id="soku-app", client_secret="s3cret")
    assert (await named.refresh(account, env.http)).access_token


async def test_the_integration_reads_its_options(env: Env) -> None:
    made = youtube.INTEGRATION.make_connector(ConnectorTarget(f"{env.fake}/", {}))
    assert isinstance(made, YouTubeConnector) and made.upload_url.startswith(env.fake)
    options = {"api_url": "https://api.example", "upload_url": "https://up.example/v",
               "token_url": "https://t.example/token", "privacy_status": "private",
               "chunk_bytes": str(2 * CHUNK)}  # fmt: skip
    real = youtube.INTEGRATION.make_connector(ConnectorTarget(None, options))
    assert isinstance(real, YouTubeConnector)
    assert (real.api_url, real.upload_url, real.token_url) == (
        "https://api.example", "https://up.example/v", "https://t.example/token")  # fmt: skip
    assert (real.privacy_status, real.chunk_bytes) == ("private", 2 * CHUNK)
    for wrong in ({"chunk_bytes": "1000"}, {"chunk_bytes": "8M"}, {"privacy_status": "all"}):
        with pytest.raises(PlatformError) as refused:
            youtube.INTEGRATION.make_connector(ConnectorTarget(None, wrong))
        assert (refused.value.kind, refused.value.code) == (ErrorKind.permanent, "invalid_options")
