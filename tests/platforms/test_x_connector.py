"""The X connector against the X fake, both over real HTTP (uvicorn and a file server).

What every connector does (reconcile, error kinds, resuming, refresh) is in
`test_connector_contract.py`, with X's data in `x_world.PROFILE`.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import hashlib
import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from soku.platforms.connector import ErrorKind, Job, Published
from soku.platforms.x_connector import XConnector
from soku.platforms.x_errors import map_error
from tests.platforms.connector_world import Sandboxes, deliver, failure, run_steps
from tests.platforms.x_world import CHUNK, IMAGES, PROFILE, REFRESH, USERNAME, VIDEO_BYTES, Env
from tests.platforms.x_world import connector as x_connector


@pytest.fixture
async def env(sandboxes: Sandboxes) -> AsyncIterator[Env]:
    async with PROFILE.world(sandboxes) as world:
        yield world


@pytest.fixture
def connector(env: Env) -> XConnector:
    return x_connector(env.fake)


async def test_text_post(connector: XConnector, env: Env) -> None:
    job = env.job("Just words")
    assert list(connector.steps(job)) == []
    published = await deliver(connector, job, env.http)
    assert re.fullmatch(r"[0-9]{19}", published.platform_post_id)
    assert published.url == f"{env.fake}/{USERNAME}/status/{published.platform_post_id}"
    [post] = await env.posts()
    assert (post["id"], post["text"], post["media"]) == (
        published.platform_post_id,
        "Just words",
        [],
    )
    page = await env.http.get(published.url)
    assert page.status_code == 200 and "Just words" in page.text


@pytest.mark.parametrize("count", [1, 4])
async def test_image_posts(connector: XConnector, env: Env, count: int) -> None:
    job = env.job("Pictures", images=IMAGES[:count])
    assert [step.name for step in connector.steps(job)] == [f"upload_{n}" for n in range(count)]
    published = await deliver(connector, job, env.http)
    [post] = await env.posts()
    assert post["id"] == published.platform_post_id and post["text"] == "Pictures"
    assert [m["sha256"] for m in post["media"]] == [env.sha256(name) for name in IMAGES[:count]]
    uploaded = [job.checkpoint["steps"][f"upload_{n}"]["media_id"] for n in range(count)]
    assert [m["id"] for m in post["media"]] == uploaded
    assert {m["type"] for m in post["media"]} == {"photo"}  # a GIF among photos is a photo
    assert (await env.http.get(str(published.url))).status_code == 200


async def test_video_post(connector: XConnector, env: Env) -> None:
    await env.config(video_polls=3)
    job = env.job("A film", video="clip.mp4")
    assert [step.name for step in connector.steps(job)] == ["init", "finalize", "wait_processing"]
    published = await deliver(connector, job, env.http)
    names = ["init", "append_0", "append_1", "append_2", "finalize", "wait_processing"]
    assert [step.name for step in connector.steps(job)] == names == list(job.checkpoint["steps"])
    last = {"segment_index": 2, "bytes": VIDEO_BYTES - 2 * CHUNK, "appended": 3}
    assert job.checkpoint["steps"]["append_2"] == last
    [post] = await env.posts()
    [media] = post["media"]
    assert (media["type"], media["state"], media["appends"]) == ("video", "succeeded", [0, 1, 2])
    data = (env.files.folder / "clip.mp4").read_bytes()
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    assert media["segments"] == [hashlib.sha256(chunk).hexdigest() for chunk in chunks]
    assert (await env.calls())["status"] == 4  # three in_progress answers, then succeeded
    ranges = [r for name, r in env.files.requests if name == "clip.mp4"]
    assert ranges == [
        "bytes=0-0",
        f"bytes=0-{CHUNK - 1}",
        f"bytes={CHUNK}-{2 * CHUNK - 1}",
        f"bytes={2 * CHUNK}-{VIDEO_BYTES - 1}",
    ]
    assert published.url == f"{env.fake}/{USERNAME}/status/{post['id']}"


async def test_video_from_a_store_without_ranges(connector: XConnector, env: Env) -> None:
    await deliver(connector, env.job("Plain store", video="plain/clip.mp4"), env.http)
    [post] = await env.posts()
    data = (env.files.folder / "clip.mp4").read_bytes()
    assert post["media"][0]["segments"][1] == hashlib.sha256(data[CHUNK : 2 * CHUNK]).hexdigest()


async def test_a_resumed_video_reads_only_the_rest_of_the_file(
    connector: XConnector, env: Env
) -> None:
    """The chunks are read by byte ranges: another worker reads only the ones not appended."""
    job = env.job("Resumed film", video="clip.mp4")
    saved = await run_steps(connector, job, env.http, stop_after="append_1")
    env.files.requests.clear()
    resumed = dataclasses.replace(job, checkpoint=saved)
    await deliver(x_connector(env.fake), resumed, env.http)
    [post] = await env.posts()
    assert post["media"][0]["appends"] == [0, 1, 2]
    assert [r for _, r in env.files.requests] == [f"bytes={2 * CHUNK}-{VIDEO_BYTES - 1}"]


async def test_a_finalize_whose_result_was_lost(connector: XConnector, env: Env) -> None:
    job = env.job("Finalized twice", video="clip.mp4")
    saved = await run_steps(connector, job, env.http, stop_after="append_2")
    finalize = next(step for step in connector.steps(job) if step.name == "finalize")
    await finalize.run(job, env.http)  # went through; the worker died before saving it
    resumed = dataclasses.replace(job, checkpoint=saved)
    await deliver(connector, resumed, env.http)
    assert resumed.checkpoint["steps"]["finalize"]["processing_info"]["state"] == "in_progress"
    assert len(await env.posts()) == 1 and (await env.calls())["finalize"] == 2


def names(connector: XConnector, job: Job) -> list[str]:
    return [step.name for step in connector.steps(job)]


async def test_expired_media_are_uploaded_again(connector: XConnector, env: Env) -> None:
    """A delivery held back past its uploads' lifetime (24 h on X) uploads them again."""
    await env.config(media_expires_secs=1)
    job = env.job("Held back", images=IMAGES[:2])
    await run_steps(connector, job, env.http)
    first = [job.checkpoint["steps"][f"upload_{n}"]["media_id"] for n in range(2)]
    await env.config(media_expires_secs=86400)  # for the uploads to come
    await asyncio.sleep(1.1)
    stale = dataclasses.replace(job, checkpoint=copy.deepcopy(job.checkpoint))
    refused = await failure(connector.publish(stale, env.http))  # the fake knows they expired
    assert (refused.kind, refused.http_status) == (ErrorKind.permanent, 400)
    assert refused.message.endswith("was invalid: Your media IDs are invalid.")
    assert names(connector, job) == ["r2_upload_0", "r2_upload_1"]
    published = await deliver(connector, job, env.http)
    [post] = await env.posts()
    again = [job.checkpoint["steps"][f"r2_upload_{n}"]["media_id"] for n in range(2)]
    assert post["id"] == published.platform_post_id and [m["id"] for m in post["media"]] == again
    assert not set(first) & set(again)
    assert names(connector, job) == ["r2_upload_0", "r2_upload_1"]  # the new round is fresh
    found = await connector.reconcile(job, env.http)  # on the new round's media keys
    assert isinstance(found, Published) and found.platform_post_id == published.platform_post_id


async def test_a_video_near_expiry_is_uploaded_again(env: Env) -> None:
    """Within the margin of expiry counts as expired: the whole upload is made again."""
    await env.config(media_expires_secs=60)
    connector = x_connector(env.fake, media_margin=120)
    job = env.job("Old film", video="clip.mp4")
    await run_steps(connector, job, env.http)
    await env.config(media_expires_secs=86400)
    assert names(connector, job) == ["r2_init", "r2_finalize", "r2_wait_processing"]
    await deliver(connector, job, env.http)
    steps = job.checkpoint["steps"]
    assert [name for name in steps if name.startswith("r2_")] == [
        "r2_init", "r2_append_0", "r2_append_1", "r2_append_2", "r2_finalize",
        "r2_wait_processing",
    ]  # fmt: skip
    [post] = await env.posts()
    assert [m["id"] for m in post["media"]] == [steps["r2_init"]["media_id"]]
    assert steps["r2_init"]["media_id"] != steps["init"]["media_id"]
    assert post["media"][0]["appends"] == [0, 1, 2]


async def test_user_looked_up_when_the_account_lacks_it(connector: XConnector, env: Env) -> None:
    job = env.job("Who am I", username=None, platform_user_id="sbx_1")
    assert [step.name for step in connector.steps(job)] == ["user"]
    published = await deliver(connector, job, env.http)
    assert job.checkpoint["steps"]["user"] == {"id": env.user_id, "username": USERNAME}
    assert published.url == f"{env.fake}/{USERNAME}/status/{published.platform_post_id}"
    found = await connector.reconcile(job, env.http)
    assert isinstance(found, Published) and found.url == published.url


async def test_reconcile_matches_text_as_x_renders_it(env: Env) -> None:
    job = env.job("Tom & Jerry <3 https://example.com/x", images=IMAGES[:1])
    connector = XConnector(env.fake, web_url=env.fake)
    published = await deliver(connector, job, env.http)
    job.checkpoint["steps"]["upload_0"]["media_key"] = None  # match on the text alone
    found = await connector.reconcile(job, env.http)
    assert isinstance(found, Published) and found.platform_post_id == published.platform_post_id


async def test_rate_limits_carry_the_reset(connector: XConnector, env: Env) -> None:
    await env.fault(on="publish", status=429, retry_after=42)
    error = await failure(connector.publish(env.job(), env.http))
    assert (error.kind, error.code, error.http_status) == (
        ErrorKind.rate_limited,
        "rate_limited",
        429,
    )
    assert error.retry_after is not None and 40 <= error.retry_after <= 43
    await env.config(rate_limit=2)  # the refused call above counts in the window too
    await deliver(connector, env.job("First"), env.http)
    error = await failure(connector.publish(env.job("Second"), env.http))
    assert error.kind is ErrorKind.rate_limited
    assert error.retry_after is not None and 0 < error.retry_after <= 900


def test_retry_after_from_the_daily_windows() -> None:
    now = int(time.time())
    headers = {
        "x-rate-limit-remaining": "12",
        "x-rate-limit-reset": str(now + 60),
        "x-user-limit-24hour-remaining": "0",
        "x-user-limit-24hour-reset": str(now + 3600),
    }
    error = map_error(httpx.Response(429, headers=headers, json={"title": "Too Many Requests"}))
    assert error.retry_after is not None and 3590 < error.retry_after <= 3600
    dated = {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}
    assert map_error(httpx.Response(503, headers=dated)).retry_after == 0
    assert map_error(httpx.Response(402, json={})).code == "credits_depleted"


def test_messages_say_which_parameter_was_wrong() -> None:
    """X's 400 `detail` is generic; its `errors` say what was wrong, and the message says it."""
    errors = [{"parameters": {"text": []}, "message": "Your Tweet text is too long."}]
    problem = {
        "title": "Invalid Request",
        "type": "https://api.x.com/2/problems/invalid-request",
        "detail": "One or more parameters to your request was invalid.",
        "errors": errors,
    }
    error = map_error(httpx.Response(400, json=problem))
    assert error.message == (
        "X answered 400 (Invalid Request): One or more parameters to your request was invalid: "
        "Your Tweet text is too long."
    )
    legacy = map_error(
        httpx.Response(403, json={"errors": [{"code": 187, "message": "Status is a duplicate."}]})
    )
    assert legacy.message == "X answered 403: Status is a duplicate."
    same = {**problem, "errors": [{"message": problem["detail"]}]}
    assert map_error(httpx.Response(400, json=same)).message.count("was invalid") == 1


async def test_media_problems(connector: XConnector, env: Env) -> None:
    too_big = await failure(run_steps(connector, env.job(images=("huge.jpg",)), env.http))
    assert (too_big.kind, too_big.code) == (ErrorKind.permanent, "media_too_large")
    missing = await failure(run_steps(connector, env.job(video="gone.mp4"), env.http))
    assert (missing.kind, missing.code, missing.http_status) == (
        ErrorKind.permanent,
        "media_unavailable",
        404,
    )


async def test_refresh_rotates_the_refresh_token(connector: XConnector, env: Env) -> None:
    account = env.job().account
    first = await connector.refresh(account, env.http)
    assert first.refresh_token and first.refresh_token != REFRESH
    reused = await failure(connector.refresh(account, env.http))  # the old one is used up
    assert (reused.kind, reused.code, reused.http_status) == (
        ErrorKind.reauth_required,
        "invalid_request",
        400,
    )
    renewed = dataclasses.replace(
        account, access_token=first.access_token, refresh_token=first.refresh_token
    )
    second = await connector.refresh(renewed, env.http)
    assert second.refresh_token not in (REFRESH, first.refresh_token)
    await deliver(connector, env.job("After refresh", access_token=second.access_token), env.http)
    [post] = await env.posts()
    assert post["user_id"] == env.user_id  # the same user throughout
