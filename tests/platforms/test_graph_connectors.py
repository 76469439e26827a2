"""What the Instagram and Threads connectors do alike against their fakes, both over real HTTP:
each test runs for both, with each platform's own facts (`Platform`).

What every connector does is in `test_connector_contract.py`; what only one of these two does
stays in `test_instagram_connector.py` and `test_threads_connector.py`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from soku.platforms import instagram, threads
from soku.platforms.base import ConnectorTarget, PlatformIntegration
from soku.platforms.connector import CannotTell, ErrorKind
from soku.platforms.graph_connector import GraphConnector
from soku.platforms.instagram_connector import InstagramConnector
from soku.platforms.threads_connector import ThreadsConnector
from tests.media_files import MediaServer
from tests.platforms import instagram_world, threads_world
from tests.platforms.connector_world import Sandboxes, deliver, failure, run_steps
from tests.platforms.graph_world import GraphEnv, step_names
from tests.platforms.profile import Profile


@dataclasses.dataclass(frozen=True)
class Platform:
    profile: Profile[MediaServer, Any]
    connector: Callable[[str], GraphConnector]
    status: str  # the field of `/_inspect/containers` that holds a container's status
    text: str  # the one that holds its text
    profile_path: str  # where a post without a permalink is seen, under the fake's URL
    carousel: tuple[tuple[str, ...], str]  # a carousel's images, and its `/_inspect` type
    video: tuple[str, str]  # a video's `/_inspect` type, and what its permalink matches
    quota: tuple[str, float | None]  # the publishing limit's code and retry_after


PLATFORMS = [
    pytest.param(
        Platform(
            instagram_world.PROFILE,
            instagram_world.connector,
            "status_code",
            "caption",
            f"/{instagram_world.USERNAME}/",
            (instagram_world.JPEGS[:3], "CAROUSEL"),
            ("REELS", r"/reel/C[A-Za-z0-9_-]{10}/$"),
            ("publishing_limit", 3600),  # the window's end is not said: an hour
        ),
        id="instagram",
    ),
    pytest.param(
        Platform(
            threads_world.PROFILE,
            threads_world.connector,
            "status",
            "text",
            f"/@{threads_world.USERNAME}",
            (("img1.jpg", "img2.png", "img3.webp"), "CAROUSEL_ALBUM"),
            ("VIDEO", r"/@soku_threads/post/D[A-Za-z0-9_-]{10}$"),
            ("rate_limited", None),
        ),
        id="threads",
    ),
]


@pytest.fixture(params=PLATFORMS)
def platform(request: pytest.FixtureRequest) -> Platform:
    chosen: Platform = request.param
    return chosen


@pytest.fixture
async def env(platform: Platform, sandboxes: Sandboxes) -> AsyncIterator[GraphEnv]:
    async with platform.profile.world(sandboxes) as world:
        yield world


@pytest.fixture
def connector(platform: Platform, env: GraphEnv) -> GraphConnector:
    return platform.connector(env.fake)


async def test_carousel(platform: Platform, connector: GraphConnector, env: GraphEnv) -> None:
    images, listed = platform.carousel
    job = env.job("Three pictures", images=images)
    assert step_names(connector, job) == [
        "item_0", "item_0_ready", "item_1", "item_1_ready", "item_2", "item_2_ready",
        "container", "ready",
    ]  # fmt: skip
    published = await deliver(connector, job, env.http)
    [post] = await env.posts()
    assert (post["id"], post[platform.text], post["media_type"]) == (
        published.platform_post_id,
        "Three pictures",
        listed,
    )
    steps = job.checkpoint["steps"]
    assert [m["container_id"] for m in post["media"]] == [
        steps[f"item_{n}_ready"]["container_id"] for n in range(3)
    ]
    assert [m["url"] for m in post["media"]] == [env.media.url(name) for name in images]
    files = [name.partition("?")[0] for name in images]  # a query makes another URL of a file
    assert [m["sha256"] for m in post["media"]] == [env.sha256(name) for name in files]
    children = [c for c in await env.containers() if c["is_carousel_item"]]
    assert [c[platform.text] for c in children] == ["", "", ""]  # no text on the items
    assert (await env.calls())["create"] == 4  # three items and the carousel
    assert (await env.http.get(str(published.url))).status_code == 200


async def test_a_video_waits_for_processing(
    platform: Platform, connector: GraphConnector, env: GraphEnv
) -> None:
    await env.config(video_polls=3)
    job = env.job("A film", video="clip.mp4")
    published = await deliver(connector, job, env.http)
    assert job.checkpoint["steps"]["ready"]["status"] == "FINISHED"
    assert (await env.calls())["status"] == 4  # three IN_PROGRESS answers, then FINISHED
    [post] = await env.posts()
    media_type, permalink = platform.video
    assert post["media_type"] == media_type and post["media"][0]["sha256"] == env.sha256("clip.mp4")
    assert published.url == post["url"] and re.search(permalink, published.url or "")


async def test_an_expired_container_is_made_again(
    platform: Platform, connector: GraphConnector, env: GraphEnv
) -> None:
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
    statuses = {c["id"]: c[platform.status] for c in await env.containers()}
    assert statuses == {
        steps["container"]["container_id"]: "EXPIRED",
        post["container_id"]: "PUBLISHED",
    }


async def test_old_containers_start_a_new_round(connector: GraphConnector, env: GraphEnv) -> None:
    job = env.job("Held back for a day")
    await run_steps(connector, job, env.http)
    job.checkpoint["steps"]["container"]["created_at"] -= 24 * 3600
    assert step_names(connector, job) == ["r2_container", "r2_ready"]
    published = await deliver(connector, job, env.http)
    [post] = await env.posts()
    assert post["id"] == published.platform_post_id
    assert post["container_id"] == job.checkpoint["steps"]["r2_ready"]["container_id"]
    assert post["container_id"] != job.checkpoint["steps"]["ready"]["container_id"]
    assert step_names(connector, job) == ["r2_container", "r2_ready"]  # the new round is fresh


async def test_throttle_carries_retry_after(connector: GraphConnector, env: GraphEnv) -> None:
    await env.fault(on="create", error_code="rate_limited", retry_after=42)
    error = await failure(run_steps(connector, env.job(), env.http))
    assert (error.kind, error.retry_after, error.raw["error"]["code"]) == (
        ErrorKind.rate_limited,
        42,
        4,
    )


async def test_publishing_quota(
    platform: Platform, connector: GraphConnector, env: GraphEnv
) -> None:
    await env.config(quota_total=1)
    await deliver(connector, env.job("First"), env.http)
    error = await failure(deliver(connector, env.job("Second"), env.http))
    code, retry_after = platform.quota
    assert (error.kind, error.code, error.retry_after) == (
        ErrorKind.rate_limited,
        code,
        retry_after,
    )
    assert (error.raw["error"]["code"], error.raw["error"]["error_subcode"]) == (9, 2207042)
    assert len(await env.posts()) == 1


async def test_an_expired_token(connector: GraphConnector, env: GraphEnv) -> None:
    await env.add_user(username="lapsed", access_token="old-token", expires_in=0)
    error = await failure(run_steps(connector, env.job(access_token="old-token"), env.http))
    assert (error.kind, error.code) == (ErrorKind.token_expired, "token_expired")
    assert (error.raw["error"]["code"], error.raw["error"]["error_subcode"]) == (190, 463)


async def test_refresh_renews_the_access_token_itself(
    connector: GraphConnector, env: GraphEnv
) -> None:
    tokens = await connector.refresh(env.job().account, env.http)
    assert tokens.access_token != env.account["access_token"] and tokens.refresh_token is None


@pytest.mark.parametrize("why", ["too_new", "expired"])
async def test_refused_refresh_needs_reauth(
    why: str, connector: GraphConnector, env: GraphEnv
) -> None:
    if why == "too_new":  # the platforms': a token a day old at least
        await env.config(refresh_min_age_secs=86400)
        account = env.job().account
    else:
        await env.add_user(username="lapsed", access_token="old-token", expires_in=0)
        account = env.job(access_token="old-token").account
    error = await failure(connector.refresh(account, env.http))
    refused = (ErrorKind.reauth_required, "refresh_refused", 400)
    assert (error.kind, error.code, error.http_status) == refused


async def test_reconcile_cannot_tell_when_the_post_is_missing(
    connector: GraphConnector, env: GraphEnv
) -> None:
    job = env.job("Published, then edited away")
    await deliver(connector, job, env.http)
    changed = dataclasses.replace(job, text="Some other text")
    assert isinstance(await connector.reconcile(changed, env.http), CannotTell)


async def test_permalink_falls_back_to_the_profile(
    platform: Platform, connector: GraphConnector, env: GraphEnv
) -> None:
    await env.fault(on="media", status=500)
    published = await deliver(connector, env.job("No permalink"), env.http)
    assert published.url == env.fake + platform.profile_path
    page = await env.http.get(published.url)
    assert page.status_code == 200 and "No permalink" in page.text


_IG = "https://ig.example"
_TH = "https://graph.threads.com"
_OPTION_NAMES = {"api_url", "version", "web_url", "authorize_url", "client_id", "client_secret"}


@pytest.mark.parametrize(
    ("integration", "kind", "real", "options", "option_names", "signs_in", "default_token"),
    [
        pytest.param(
            instagram.INTEGRATION,
            InstagramConnector,
            ("https://graph.instagram.com/v25.0", "https://www.instagram.com", "v25.0"),
            {"api_url": _IG, "version": "v26.0", "token_url": "https://t.ex/t"},
            _OPTION_NAMES | {"token_url"},
            ("https://www.instagram.com/oauth/authorize", "https://t.ex/t", f"{_IG}/v26.0",
             f"{_IG}/access_token"),
            "https://api.instagram.com/oauth/access_token",
            id="instagram",
        ),
        pytest.param(
            threads.INTEGRATION,
            ThreadsConnector,
            ("https://graph.threads.net/v1.0", "https://www.threads.net", "v1.0"),
            {"api_url": _TH, "version": "v2.0"},
            _OPTION_NAMES,
            ("https://threads.net/oauth/authorize", f"{_TH}/oauth/access_token", f"{_TH}/v2.0",
             f"{_TH}/access_token"),
            "https://graph.threads.net/oauth/access_token",
            id="threads",
        ),
    ],
)  # fmt: skip
def test_integration_targets(
    integration: PlatformIntegration,
    kind: type[GraphConnector],
    real: tuple[str, str, str],
    options: dict[str, str],
    option_names: set[str],
    signs_in: tuple[str, str, str, str],
    default_token: str,
) -> None:
    fake = f"http://soku.test/sandbox/{kind.platform}"
    sandbox = integration.make_connector(ConnectorTarget(fake))
    assert isinstance(sandbox, kind)
    assert (sandbox.base_url, sandbox.web_url) == (f"{fake}/{real[2]}", fake)
    made = integration.make_connector(ConnectorTarget(None))
    assert isinstance(made, kind) and (made.base_url, made.web_url) == real[:2]
    custom = integration.make_connector(ConnectorTarget(None, options))
    assert (
        isinstance(custom, kind) and custom.base_url == f"{options['api_url']}/{options['version']}"
    )
    assert integration.options == option_names
    assert integration.oauth is not None
    got = integration.oauth.endpoints(ConnectorTarget(None, options))
    assert (got.authorize_url, got.token_url, got.api_url, got.exchange_url) == signs_in
    assert integration.oauth.endpoints(ConnectorTarget(None)).token_url == default_token
