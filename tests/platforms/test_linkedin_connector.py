"""The LinkedIn connector against the LinkedIn fake, both served over real HTTP.

What every connector does (reconcile, error kinds, resuming, refresh) is in
`test_connector_contract.py`, with LinkedIn's data in `linkedin_world.PROFILE`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import AsyncIterator

import pytest

from soku.platforms import linkedin
from soku.platforms.base import ConnectorTarget
from soku.platforms.connector import CannotTell, ErrorKind, Published
from soku.platforms.linkedin_connector import LinkedInConnector, little_text
from tests.platforms.connector_world import Sandboxes, deliver, failure, run_steps
from tests.platforms.linkedin_world import (
    IMAGES,
    MEMBER,
    ORG,
    PART,
    PROFILE,
    REFRESH,
    VIDEO_BYTES,
    Env,
)
from tests.platforms.linkedin_world import connector as linkedin_connector


@pytest.fixture
async def env(sandboxes: Sandboxes) -> AsyncIterator[Env]:
    async with PROFILE.world(sandboxes) as world:
        yield world


@pytest.fixture
def connector(env: Env) -> LinkedInConnector:
    return linkedin_connector(env.fake)


AUTHORS = [
    pytest.param(MEMBER, f"urn:li:person:{MEMBER}", id="member-id"),
    pytest.param(f"urn:li:person:{MEMBER}", f"urn:li:person:{MEMBER}", id="member-urn"),
    pytest.param(ORG, ORG, id="organization"),
]


@pytest.mark.parametrize(("account_user", "author"), AUTHORS)
async def test_text_post(
    connector: LinkedInConnector, env: Env, account_user: str, author: str
) -> None:
    text = "Save 50% (today) on C++ & a_b ~ <tags> #launch @here [x] {y} | \\ *"
    job = env.job(text, author=account_user)
    assert list(connector.steps(job)) == []
    published = await deliver(connector, job, env.http)
    assert re.fullmatch(r"urn:li:share:[0-9]{19}", published.platform_post_id)
    assert published.url == f"{env.fake}/feed/update/{published.platform_post_id}/"
    [post] = await env.posts()
    assert (post["id"], post["author"], post["media"]) == (published.platform_post_id, author, [])
    assert post["text"] == text  # the fake cuts the text at an unescaped reserved character
    assert post["commentary"] == little_text(text) and "\\(today\\)" in post["commentary"]
    assert "#launch" in post["commentary"] and post["content"] is None
    page = await env.http.get(published.url)
    assert page.status_code == 200 and "Save 50% (today)" in page.text


@pytest.mark.parametrize("author", [MEMBER, ORG])
@pytest.mark.parametrize("count", [1, 3])
async def test_image_posts(connector: LinkedInConnector, env: Env, author: str, count: int) -> None:
    job = env.job("Pictures", images=IMAGES[:count], author=author)
    names = [f"upload_{n}" for n in range(count)] + ["wait_processing"]
    assert [step.name for step in connector.steps(job)] == names
    published = await deliver(connector, job, env.http)
    [post] = await env.posts()
    assert post["id"] == published.platform_post_id and post["text"] == "Pictures"
    assert post["author"] == (ORG if author == ORG else f"urn:li:person:{MEMBER}")
    digests = [hashlib.sha256(env.file(name)).hexdigest() for name in IMAGES[:count]]
    assert [m["sha256"] for m in post["media"]] == digests
    assert {m["status"] for m in post["media"]} == {"AVAILABLE"}
    urns = [job.checkpoint["steps"][f"upload_{n}"]["image"] for n in range(count)]
    assert [m["id"] for m in post["media"]] == urns
    if count == 1:
        assert post["content"] == {"media": {"id": urns[0]}}
    else:
        assert post["content"] == {"multiImage": {"images": [{"id": urn} for urn in urns]}}
    assert (await env.http.get(str(published.url))).status_code == 200


@pytest.mark.parametrize("author", [MEMBER, ORG])
async def test_video_post(connector: LinkedInConnector, env: Env, author: str) -> None:
    await env.config(video_polls=2)
    job = env.job("A film", video="long.mp4", author=author)
    assert [step.name for step in connector.steps(job)] == ["init", "finalize", "wait_processing"]
    published = await deliver(connector, job, env.http)
    names = ["init", "part_0", "part_1", "part_2", "part_3", "finalize", "wait_processing"]
    assert [step.name for step in connector.steps(job)] == names == list(job.checkpoint["steps"])
    assert job.checkpoint["steps"]["part_3"]["bytes"] == VIDEO_BYTES - 3 * PART
    [post] = await env.posts()
    [video] = post["media"]
    assert post["content"] == {"media": {"id": video["id"]}} and post["visible"] is True
    assert (video["kind"], video["status"], video["puts"]) == ("video", "AVAILABLE", [0, 1, 2, 3])
    data = env.file("long.mp4")
    chunks = [data[i : i + PART] for i in range(0, len(data), PART)]
    assert video["parts"] == [hashlib.sha256(chunk).hexdigest() for chunk in chunks]
    assert (video["sha256"], video["bytes"]) == (hashlib.sha256(data).hexdigest(), VIDEO_BYTES)
    assert (await env.calls())["video_status"] == 3  # two PROCESSING answers, then AVAILABLE
    assert (await env.http.get(str(published.url))).status_code == 200


async def test_a_finalize_whose_result_was_lost(connector: LinkedInConnector, env: Env) -> None:
    job = env.job("Finalized twice", video="long.mp4")
    saved = await run_steps(connector, job, env.http, stop_after="part_3")
    finalize = next(step for step in connector.steps(job) if step.name == "finalize")
    await finalize.run(job, env.http)  # went through; the worker died before saving it
    resumed = dataclasses.replace(job, checkpoint=saved)
    await deliver(connector, resumed, env.http)
    assert len(await env.posts()) == 1 and (await env.calls())["video_finalize"] == 2


async def test_member_looked_up_when_the_account_lacks_it(
    connector: LinkedInConnector, env: Env
) -> None:
    job = env.job("Who am I", author=None)
    assert [step.name for step in connector.steps(job)] == ["user"]
    published = await deliver(connector, job, env.http)
    assert job.checkpoint["steps"]["user"] == {"author": f"urn:li:person:{MEMBER}"}
    [post] = await env.posts()
    assert post["author"] == f"urn:li:person:{MEMBER}"
    found = await connector.reconcile(env.job("Who am I", author=None), env.http)
    assert isinstance(found, Published) and found.url == published.url


async def test_a_sandbox_account_with_made_up_id_and_tokens(
    connector: LinkedInConnector, env: Env
) -> None:
    """As Soku creates sandbox accounts: an `sbx_…` id and tokens the fake never issued."""
    made_up = {"author": "sbx_5eed", "access_token": "sandbox-a1", "refresh_token": "sandbox-r1"}
    published = await deliver(
        connector, env.job("Sandbox hello", images=IMAGES[:1], **made_up), env.http
    )
    refreshed = await connector.refresh(env.job(**made_up).account, env.http)
    renewed = {**made_up, "access_token": refreshed.access_token}  # a token the fake issued
    await deliver(connector, env.job("Sandbox again", video="clip.mp4", **renewed), env.http)
    posts = await env.posts()
    mine = ("urn:li:person:sbx_5eed", "sbx_5eed")
    assert [(p["author"], p["member_id"]) for p in posts] == [mine, mine]
    assert posts[0]["id"] == published.platform_post_id
    await env.fault(on="publish", user_id="sbx_5eed", status=500)  # faults per account
    error = await failure(connector.publish(env.job("Third", **made_up), env.http))
    assert error.http_status == 500


async def test_reconcile_cannot_tell_without_read_permission(
    connector: LinkedInConnector, env: Env
) -> None:
    await env.config(finder_allowed=False)
    result = await connector.reconcile(env.job(), env.http)
    assert isinstance(result, CannotTell) and "403" in result.reason
    await env.fault(on="list", status=503)
    error = await failure(connector.reconcile(env.job(author=ORG), env.http))
    assert (error.kind, error.http_status) == (ErrorKind.server_error, 503)


async def test_rate_limits(connector: LinkedInConnector, env: Env) -> None:
    await env.fault(on="publish", status=429, retry_after=42)
    error = await failure(connector.publish(env.job(), env.http))
    assert (error.kind, error.code, error.retry_after) == (
        ErrorKind.rate_limited,
        "rate_limited",
        42,
    )
    # A daily throttle: no Retry-After, back at midnight UTC. The refused call above counts.
    await env.config(posts_per_day=2)
    await deliver(connector, env.job("First"), env.http)
    error = await failure(connector.publish(env.job("Second"), env.http))
    now = dt.datetime.now(dt.UTC)
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), dt.UTC)
    assert error.kind is ErrorKind.rate_limited and error.retry_after is not None
    assert abs(error.retry_after - (midnight - now).total_seconds()) < 5


async def test_server_errors_carry_retry_after(connector: LinkedInConnector, env: Env) -> None:
    await env.fault(on="image_init", status=503, retry_after=7)
    job = env.job(images=IMAGES[:1])
    error = await failure(run_steps(connector, job, env.http))
    assert (error.kind, error.http_status, error.retry_after) == (ErrorKind.server_error, 503, 7)


async def test_an_expired_token_then_a_refresh(connector: LinkedInConnector, env: Env) -> None:
    await env.config(token_lifetime_secs=0)
    stale = await connector.refresh(env.job().account, env.http)
    error = await failure(connector.publish(env.job(access_token=stale.access_token), env.http))
    assert (error.kind, error.code, error.http_status) == (
        ErrorKind.token_expired,
        "token_expired",
        401,
    )
    await env.config(token_lifetime_secs=3600)
    before = dt.datetime.now(dt.UTC)
    fresh = await connector.refresh(env.job().account, env.http)
    assert fresh.refresh_token == REFRESH  # LinkedIn keeps the refresh token
    assert fresh.expires_at is not None
    assert dt.timedelta(seconds=3590) < fresh.expires_at - before < dt.timedelta(seconds=3610)
    await deliver(connector, env.job("After refresh", access_token=fresh.access_token), env.http)
    [post] = await env.posts()
    assert post["member_id"] == MEMBER  # the same member throughout


async def test_a_refused_refresh_needs_the_user(connector: LinkedInConnector, env: Env) -> None:
    await env.config(refresh_lifetime_secs=0)  # the 365-day refresh token has run out
    error = await failure(connector.refresh(env.job(refresh_token="spent").account, env.http))
    assert (error.kind, error.code, error.http_status) == (
        ErrorKind.reauth_required,
        "invalid_request",
        400,
    )


async def test_a_retired_version_is_permanent(env: Env) -> None:
    old = LinkedInConnector(env.fake, version="202001")
    error = await failure(old.publish(env.job(), env.http))
    assert (error.kind, error.code, error.http_status) == (
        ErrorKind.permanent,
        "version_sunset",
        426,
    )
    with pytest.raises(ValueError, match="YYYYMM"):
        LinkedInConnector(env.fake, version="2026-10")


async def test_a_bad_author_is_permanent(connector: LinkedInConnector, env: Env) -> None:
    error = await failure(connector.publish(env.job(author="urn:li:group:9"), env.http))
    assert (error.kind, error.code) == (ErrorKind.permanent, "invalid_author")
    assert (await env.calls())["publish"] == 0


def test_little_text_escapes_reserved_characters() -> None:
    assert little_text("a(b)c") == "a\\(b\\)c"
    assert little_text("#tag and # alone and #1") == "#tag and \\# alone and \\#1"
    assert little_text("\\ | { } @ [ ] < > * _ ~") == (
        "\\\\ \\| \\{ \\} \\@ \\[ \\] \\< \\> \\* \\_ \\~"
    )
    assert little_text("plain, text!") == "plain, text!"


def test_integration_points_at_the_sandbox_or_linkedin() -> None:
    sandbox = linkedin.INTEGRATION.make_connector(ConnectorTarget("http://soku/sandbox/linkedin/"))
    assert isinstance(sandbox, LinkedInConnector)
    assert (sandbox.api_url, sandbox.web_url) == ("http://soku/sandbox/linkedin",) * 2
    assert sandbox.oauth_url == "http://soku/sandbox/linkedin/oauth/v2/accessToken"
    real = linkedin.INTEGRATION.make_connector(ConnectorTarget(None, {"version": "202609"}))
    assert isinstance(real, LinkedInConnector)
    assert (real.api_url, real.web_url, real.version) == (
        "https://api.linkedin.com",
        "https://www.linkedin.com",
        "202609",
    )
    assert real.oauth_url == "https://www.linkedin.com/oauth/v2/accessToken"
    assert (
        real.permalink("urn:li:share:1") == "https://www.linkedin.com/feed/update/urn:li:share:1/"
    )
    assert {"api_url", "oauth_url", "version", "client_secret"} <= linkedin.INTEGRATION.options
