"""What every connector promises the engine, run against each platform's fake over real HTTP.

How to reconcile, how a failure maps to an error kind, how a delivery resumes, how a refresh
goes: the same contract for every platform. Where the platforms differ (the call a fault goes
to, the job that has steps, the error a fault maps to), each says so in its world module's
`PROFILE`; what only one platform does stays in its own test module.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import httpx
import pytest

from soku.platforms.connector import Connector, ErrorKind, Job, NotPublished, Published
from soku.platforms.transport import platform_client
from tests.asgi_server import free_port
from tests.platforms import (
    facebook_world,
    instagram_world,
    linkedin_world,
    threads_world,
    x_world,
    youtube_world,
)
from tests.platforms.connector_world import Sandboxes, World, deliver, failure, run_steps
from tests.platforms.profile import COMMON_PUBLISH_ERRORS, Processing, Profile, Sample

AnyProfile = Profile[Any, Any]
PROFILES: tuple[AnyProfile, ...] = (
    x_world.PROFILE,
    threads_world.PROFILE,
    facebook_world.PROFILE,
    linkedin_world.PROFILE,
    youtube_world.PROFILE,
    instagram_world.PROFILE,
)


def each(profiles: Iterable[AnyProfile] = PROFILES) -> list[Any]:
    return [pytest.param(profile, id=profile.platform) for profile in profiles]


@pytest.fixture
async def env(profile: AnyProfile, sandboxes: Sandboxes) -> AsyncIterator[World]:
    """The test's `profile` (each test parametrizes it): its fake, emptied for this test."""
    async with profile.world(sandboxes) as world:
        yield world


@pytest.fixture
def connector(profile: AnyProfile, env: World) -> Connector:
    return profile.connector(env.fake)


async def first_call(connector: Connector, job: Job, http: httpx.AsyncClient) -> object:
    """The delivery's first call to the platform: its first step, else the publish."""
    steps = connector.steps(job)
    return await (steps[0].run(job, http) if steps else connector.publish(job, http))


def held(raw: Any, expected: Any) -> Any:
    """What `raw` holds at the keys of `expected` (nested), to compare with it."""
    if isinstance(expected, Mapping) and isinstance(raw, Mapping):
        return {key: held(raw.get(key), value) for key, value in expected.items()}
    return raw


def fault_name(fault: Mapping[str, Any]) -> str:
    return str(fault.get("error_code") or fault["status"])


# --- reconcile -----------------------------------------------------------------------------

FOUND = [
    pytest.param(profile, sample, id=f"{profile.platform}-{sample.name}")
    for profile in PROFILES
    for sample in profile.reconcile.found
]


@pytest.mark.parametrize(("profile", "sample"), FOUND)
async def test_reconcile_finds_the_post(
    profile: AnyProfile, sample: Sample, connector: Connector, env: World
) -> None:
    """Among the account's other posts, the profile's samples before this one included."""
    await deliver(connector, env.job("Some other post"), env.http)
    since = dt.datetime.now(dt.UTC)
    samples = profile.reconcile.found
    for other in samples[: samples.index(sample)]:
        await deliver(connector, other.job(env, since), env.http)
    job = sample.job(env, since)
    published = await deliver(connector, job, env.http)
    found = await connector.reconcile(job, env.http)
    assert isinstance(found, Published), found
    assert (found.platform_post_id, found.url) == (published.platform_post_id, published.url)


@pytest.mark.parametrize("profile", each())
async def test_reconcile_a_job_never_sent(connector: Connector, env: World) -> None:
    await deliver(connector, env.job("Other text"), env.http)
    assert await connector.reconcile(env.job("Never sent"), env.http) == NotPublished()


@pytest.mark.parametrize("profile", each())
async def test_reconcile_skips_posts_before_the_publishing(
    connector: Connector, env: World
) -> None:
    await deliver(connector, env.job("Other text"), env.http)
    later = env.job("Other text", publishing_since=dt.datetime(2999, 1, 1, tzinfo=dt.UTC))
    assert await connector.reconcile(later, env.http) == NotPublished()


@pytest.mark.parametrize("profile", each())
async def test_reconcile_skips_the_text_without_the_media(
    profile: AnyProfile, connector: Connector, env: World
) -> None:
    await deliver(connector, env.job("Other text"), env.http)
    pictured = env.job("Other text", **profile.reconcile.staged)
    await run_steps(connector, pictured, env.http)  # its media made, never posted
    assert await connector.reconcile(pictured, env.http) == NotPublished()


@pytest.mark.parametrize("profile", each())
async def test_a_publish_goes_on_after_reconcile_found_nothing(
    profile: AnyProfile, connector: Connector, env: World
) -> None:
    job = env.job("Made, never published", **profile.reconcile.staged)
    await run_steps(connector, job, env.http)
    assert await connector.reconcile(job, env.http) == NotPublished()
    published = await connector.publish(job, env.http)
    assert [post["id"] for post in await env.posts()] == [published.platform_post_id]


@pytest.mark.parametrize("profile", each())
async def test_reconcile_after_an_accepted_publish_timed_out(
    connector: Connector, env: World
) -> None:
    job = env.job("Did it go?", publishing_since=dt.datetime.now(dt.UTC))
    await run_steps(connector, job, env.http)
    await env.fault(on="publish", accept_then_delay=1)
    async with platform_client(4, 0.2) as impatient:
        error = await failure(connector.publish(job, impatient))
    assert error.kind is ErrorKind.timeout
    found = await connector.reconcile(job, env.http)
    assert isinstance(found, Published), found
    assert [post["id"] for post in await env.posts()] == [found.platform_post_id]


@pytest.mark.parametrize("profile", each())
async def test_a_failed_listing_raises(connector: Connector, env: World) -> None:
    job = env.job("Listed")
    await deliver(connector, job, env.http)
    await env.fault(on="list", status=503, retry_after=7)
    error = await failure(connector.reconcile(job, env.http))
    assert (error.kind, error.http_status, error.retry_after) == (ErrorKind.server_error, 503, 7)


# --- errors --------------------------------------------------------------------------------

PUBLISH_ERRORS = [
    pytest.param(profile, fault, kind, code, id=f"{profile.platform}-{fault_name(fault)}")
    for profile in PROFILES
    for fault, kind, code in COMMON_PUBLISH_ERRORS + profile.errors.publish
]


@pytest.mark.parametrize(("profile", "fault", "kind", "code"), PUBLISH_ERRORS)
async def test_publish_errors_map_to_kinds(
    profile: AnyProfile,
    fault: dict[str, Any],
    kind: ErrorKind,
    code: str,
    connector: Connector,
    env: World,
) -> None:
    job = env.job()
    await run_steps(connector, job, env.http)
    await env.fault(on="publish", **fault)
    error = await failure(connector.publish(job, env.http))
    assert (error.kind, error.code) == (kind, code)
    assert error.message.startswith(f"{profile.errors.label} answered"), error.message
    assert profile.errors.says_why(error), error.raw
    assert error.retry_after == fault.get("retry_after")
    assert await env.posts() == []
    assert isinstance(await connector.publish(job, env.http), Published)  # the fault is used up


@pytest.mark.parametrize("profile", each(p for p in PROFILES if p.errors.duplicate))
async def test_a_real_duplicate_is_permanent(
    profile: AnyProfile, connector: Connector, env: World
) -> None:
    assert profile.errors.duplicate is not None
    status, says = profile.errors.duplicate
    first = await deliver(connector, env.job("Only once"), env.http)
    error = await failure(connector.publish(env.job("Only once"), env.http))
    assert (error.kind, error.code, error.http_status) == (
        ErrorKind.permanent,
        "duplicate_content",
        status,
    )
    assert held(error.raw, says(first)) == says(first)
    assert len(await env.posts()) == 1


@pytest.mark.parametrize("profile", each())
async def test_a_slow_answer_is_a_timeout(
    profile: AnyProfile, connector: Connector, env: World
) -> None:
    on, media = profile.errors.slow
    await env.fault(on=on, delay=1)
    async with platform_client(4, 0.3) as impatient:
        error = await failure(first_call(connector, env.job(**media), impatient))
    assert error.kind is ErrorKind.timeout


@pytest.mark.parametrize("profile", each())
async def test_a_refused_connection(profile: AnyProfile, env: World) -> None:
    port = free_port()
    closed = profile.connector(f"http://127.0.0.1:{port}")
    error = await failure(first_call(closed, env.job(), env.http))
    assert (error.kind, error.code) == (ErrorKind.connection, "connection_failed")
    assert error.origin == f"http://127.0.0.1:{port}"  # where it tried, path left out
    assert str(port) not in error.message  # for the log, not for API callers


@pytest.mark.parametrize("profile", each())
async def test_a_missing_token_needs_reauth(connector: Connector, env: World) -> None:
    error = await failure(first_call(connector, env.job(access_token=None), env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "no_access_token")
    assert (await env.calls())["publish"] == 0


PROCESSING = [
    pytest.param(profile, case, id=f"{profile.platform}-{case.fault['on']}")
    for profile in PROFILES
    for case in profile.errors.processing
]


@pytest.mark.parametrize(("profile", "case"), PROCESSING)
async def test_a_processing_failure(case: Processing, connector: Connector, env: World) -> None:
    await env.fault(error_code="processing_failed", **case.fault)
    error = await failure(run_steps(connector, env.job(**case.more), env.http))
    assert (error.kind, error.code) == (ErrorKind.processing_failed, "processing_failed")
    assert case.says in error.message
    assert held(error.raw, case.raw) == case.raw


# --- resuming ------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", each())
async def test_another_worker_resumes_after_a_crash(profile: AnyProfile, env: World) -> None:
    resume = profile.resume
    job = env.job("Resumed", **resume.more)
    saved = await run_steps(profile.connector(env.fake), job, env.http, resume.stop_after)
    assert list(saved["steps"])[-1] == resume.stop_after
    resumed = dataclasses.replace(job, checkpoint=saved)
    published = await deliver(profile.connector(env.fake), resumed, env.http)
    assert [post["id"] for post in await env.posts()] == [published.platform_post_id]
    calls = await env.calls()
    assert {kind: calls[kind] for kind in resume.calls} == resume.calls  # nothing done twice


@pytest.mark.parametrize("profile", each())
async def test_another_worker_resumes_after_a_failed_step(profile: AnyProfile, env: World) -> None:
    resume, first = profile.resume, profile.connector(env.fake)
    job = env.job("Resumed", **resume.more)
    saved = await run_steps(first, job, env.http, resume.stop_after)
    finished = list(saved["steps"])
    await env.fault(on=resume.fails_on, status=503)
    resumed = dataclasses.replace(job, checkpoint=saved)
    error = await failure(run_steps(first, resumed, env.http))
    assert (error.kind, error.http_status) == (ErrorKind.server_error, 503)
    assert list(resumed.checkpoint["steps"]) == finished
    published = await deliver(profile.connector(env.fake), resumed, env.http)
    assert [post["id"] for post in await env.posts()] == [published.platform_post_id]
    calls = await env.calls()
    failed = {**resume.calls, resume.fails_on: resume.calls[resume.fails_on] + 1}
    assert {kind: calls[kind] for kind in resume.calls} == failed  # the failed call, again


# --- refresh -------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", each())
async def test_refresh_needs_its_token(
    profile: AnyProfile, connector: Connector, env: World
) -> None:
    token = profile.refresh.sends
    error = await failure(connector.refresh(env.job(**{token: None}).account, env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, f"no_{token}")


@pytest.mark.parametrize("profile", each())
async def test_a_refreshed_token_says_when_it_expires(
    profile: AnyProfile, connector: Connector, env: World
) -> None:
    account = await env.refreshable()
    before = dt.datetime.now(dt.UTC)
    tokens = await connector.refresh(account, env.http)
    assert tokens.access_token not in (account.access_token, account.refresh_token)
    lifetime = profile.refresh.lifetime
    assert (tokens.expires_at is None) == (lifetime is None)
    if tokens.expires_at is not None and lifetime is not None:
        assert abs(tokens.expires_at - before - lifetime) < dt.timedelta(seconds=10)


@pytest.mark.parametrize("profile", each())
async def test_a_refreshed_token_posts_as_the_same_user(
    profile: AnyProfile, connector: Connector, env: World
) -> None:
    await deliver(connector, env.job("Before refresh"), env.http)
    tokens = await connector.refresh(await env.refreshable(), env.http)
    renewed = env.job("After refresh", access_token=tokens.access_token)
    await deliver(connector, renewed, env.http)
    posts = await env.posts()
    assert len(posts) == 2 and posts[0][profile.refresh.owner] == posts[1][profile.refresh.owner]


@pytest.mark.parametrize("profile", each())
async def test_a_failing_token_call_is_retried(
    profile: AnyProfile, connector: Connector, env: World
) -> None:
    account = await env.refreshable()
    await env.fault(on=profile.refresh.call, status=503)
    error = await failure(connector.refresh(account, env.http))
    assert error.kind is ErrorKind.server_error  # not the user's doing


@pytest.mark.parametrize("profile", each(p for p in PROFILES if p.refresh.credentials))
async def test_refresh_sends_the_app_credentials(profile: AnyProfile, env: World) -> None:
    assert profile.refresh.credentials is not None
    credentials, refused = profile.refresh.credentials
    await env.config(**credentials)
    error = await failure(profile.connector(env.fake).refresh(env.job().account, env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, refused)
    named = profile.connector(env.fake, **credentials)
    assert (await named.refresh(env.job().account, env.http)).access_token
