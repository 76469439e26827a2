"""The Snapchat connector against the Snapchat fake, both served over real HTTP.

Snapchat is not in the shared connector contract (`test_connector_contract.py`): it takes no
text-only post, and its API lists no posts, so reconcile cannot find one. What the contract
checks of the others (error kinds, resuming, refresh) is checked here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from soku.platforms import snapchat
from soku.platforms.base import ConnectorTarget
from soku.platforms.connector import CannotTell, ErrorKind, NotPublished, PlatformError, Published
from soku.platforms.snapchat_api import SnapchatApi
from soku.platforms.snapchat_connector import SnapchatConnector
from soku.platforms.snapchat_crypto import MediaKey
from soku.platforms.transport import platform_client
from tests.asgi_server import free_port
from tests.media_files import write_video
from tests.platforms import snapchat_world
from tests.platforms.connector_world import Sandboxes, deliver, failure, run_steps
from tests.platforms.snapchat_world import PART, PROFILE_ID, REFRESH, USERNAME, Env, connector


@pytest.fixture
async def env(sandboxes: Sandboxes) -> AsyncIterator[Env]:
    site = await sandboxes.site("snapchat", snapchat_world.serve)
    async with snapchat_world.fresh(site) as world:
        yield world


@pytest.fixture
def snap(env: Env) -> SnapchatConnector:
    return connector(env.fake)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parts_of(size: int) -> int:
    return -(-size // (PART - 16))


# --- the post shapes ---------------------------------------------------------------------------


async def test_a_video_goes_to_the_story_encrypted_in_parts(
    snap: SnapchatConnector, env: Env
) -> None:
    job = env.job("Not shown on a Story")
    published = await deliver(snap, job, env.http)
    [post] = await env.posts()
    assert (post["id"], post["kind"], post["username"]) == (
        published.platform_post_id,
        "story",
        USERNAME,
    )
    assert published.url == f"{env.fake}/@{USERNAME}"
    [media] = post["media"]
    clip = env.file("clip.mp4")
    assert (media["type"], media["sha256"], media["bytes"]) == ("VIDEO", sha256(clip), len(clip))
    assert media["parts"] == parts_of(len(clip)) > 1
    assert media["adds"] == list(range(1, media["parts"] + 1))
    assert post["body"] == {"media_id": media["id"]} and post["text"] is None
    assert (await env.calls())["publish"] == 1


@pytest.mark.parametrize("image", ["img1.jpg", "img2.png"])
async def test_an_image_goes_to_the_story(snap: SnapchatConnector, env: Env, image: str) -> None:
    published = await deliver(snap, env.job(image=image), env.http)
    [post] = await env.posts()
    assert post["id"] == published.platform_post_id
    [media] = post["media"]
    assert (media["type"], media["sha256"]) == ("IMAGE", sha256(env.file(image)))
    assert media["format"] == ("image/jpeg" if image.endswith("jpg") else "image/png")


async def test_a_video_to_spotlight_carries_the_text(env: Env) -> None:
    spotlight = connector(env.fake, video_target="spotlight", locale="fr_FR")
    published = await deliver(spotlight, env.job("Mon  clip\n#soku"), env.http)
    [post] = await env.posts()
    assert (post["id"], post["kind"], post["text"]) == (published.platform_post_id, "spotlight",
                                                        "Mon clip #soku")  # fmt: skip
    assert post["body"]["locale"] == "fr_FR" and post["body"]["skip_save_to_profile"] is False


async def test_an_image_still_goes_to_the_story_when_videos_go_to_spotlight(env: Env) -> None:
    spotlight = connector(env.fake, video_target="spotlight")
    await deliver(spotlight, env.job("Picture", image="img1.jpg"), env.http)
    assert [post["kind"] for post in await env.posts()] == ["story"]


async def test_the_profile_is_asked_for_when_the_account_names_none(env: Env) -> None:
    snap = connector(env.fake)
    job = env.job(profile=None, username=None)
    assert next(step.name for step in snap.steps(job)) == "profile"
    published = await deliver(snap, job, env.http)
    assert job.checkpoint["steps"]["profile"] == {"profile_id": PROFILE_ID, "username": USERNAME}
    assert published.url == f"{env.fake}/@{USERNAME}"
    assert [post["profile_id"] for post in await env.posts()] == [PROFILE_ID]


async def test_a_post_without_an_id_in_the_answer_is_named_by_its_media(
    snap: SnapchatConnector, env: Env
) -> None:
    await env.config(story_id_in_answer=False)
    job = env.job()
    published = await deliver(snap, job, env.http)
    assert published.platform_post_id == job.checkpoint["steps"]["finalize"]["media_id"]


async def test_no_key_is_kept_in_the_checkpoint(snap: SnapchatConnector, env: Env) -> None:
    job = env.job()
    saved = json.dumps(await run_steps(snap, job, env.http))
    sent = MediaKey.derive(job.delivery_id, job.post_id, 1).sent()
    assert sent["key"] not in saved and sent["iv"] not in saved
    again = MediaKey.derive(job.delivery_id, job.post_id, 1)
    assert again.sent() == sent  # derived again by a resuming worker
    assert MediaKey.derive(job.delivery_id, job.post_id, 2).sent()["key"] != sent["key"]


def test_an_upload_url_is_used_as_returned() -> None:
    api = SnapchatApi("https://businessapi.snapchat.com")
    assert api.at("https://upload.example/x?y=1") == "https://upload.example/x?y=1"
    assert api.at("/v1/a?action=ADD") == "https://businessapi.snapchat.com/v1/a?action=ADD"


def test_the_integration_reads_its_options() -> None:
    target = ConnectorTarget(None, {"api_url": "https://snap.example/", "part_bytes": "4096"})
    made = snapchat.INTEGRATION.make_connector(target)
    assert isinstance(made, SnapchatConnector) and made.api_url == "https://snap.example"
    wrong = ConnectorTarget(None, {"part_bytes": "1000"})
    with pytest.raises(PlatformError) as caught:
        snapchat.INTEGRATION.make_connector(wrong)
    assert (caught.value.kind, caught.value.code) == (ErrorKind.permanent, "invalid_options")


# --- errors ------------------------------------------------------------------------------------

ERRORS = [
    ({"error_code": "rate_limited", "retry_after": 7}, ErrorKind.rate_limited, "rate_limited", 429),
    ({"error_code": "token_expired"}, ErrorKind.token_expired, "token_expired", 401),
    ({"error_code": "forbidden"}, ErrorKind.permanent, "forbidden", 403),
    ({"status": 400}, ErrorKind.permanent, "invalid_request", 400),
    ({"error_code": "duplicate_content"}, ErrorKind.permanent, "duplicate_content", 400),
    ({"error_code": "envelope_error"}, ErrorKind.permanent, "invalid_request", 200),
    ({"error_code": "media_expired"}, ErrorKind.permanent, "media_expired", 400),
    ({"error_code": "posting_in_progress"}, ErrorKind.server_error, "posting_in_progress", 400),
    ({"status": 500}, ErrorKind.server_error, "server_error", 500),
    ({"status": 503, "retry_after": 3}, ErrorKind.server_error, "server_error", 503),
]


ERROR_IDS = [str(e[0].get("error_code") or e[0]["status"]) for e in ERRORS]


@pytest.mark.parametrize(("fault", "kind", "code", "status"), ERRORS, ids=ERROR_IDS)
async def test_publish_errors_map_to_kinds(
    snap: SnapchatConnector,
    env: Env,
    fault: dict[str, Any],
    kind: ErrorKind,
    code: str,
    status: int,
) -> None:
    job = env.job()
    await run_steps(snap, job, env.http)
    await env.fault(on="publish", **fault)
    error = await failure(snap.publish(job, env.http))
    assert (error.kind, error.code, error.http_status) == (kind, code, status)
    assert error.message.startswith("Snapchat answered"), error.message
    assert error.raw["request_status"] == "ERROR" and error.raw["display_message"] in error.message
    assert error.retry_after == fault.get("retry_after")
    assert await env.posts() == []
    assert isinstance(await snap.publish(job, env.http), Published)  # the fault is used up


async def test_media_still_processing_is_posted_once_it_is_ready(
    snap: SnapchatConnector, env: Env
) -> None:
    await env.config(processing_answers=2)
    published = await deliver(snap, env.job(), env.http)
    assert [post["id"] for post in await env.posts()] == [published.platform_post_id]
    assert (await env.calls())["publish"] == 3


async def test_media_processing_for_long_is_retried_later(env: Env) -> None:
    await env.config(processing_answers=5)
    snap = connector(env.fake, processing_retries=1)
    error = await failure(deliver(snap, env.job(), env.http))
    assert (error.kind, error.code, error.retry_after) == (
        ErrorKind.rate_limited,
        "media_processing",
        5.0,
    )
    assert await env.posts() == [] and (await env.calls())["publish"] == 2


async def test_the_fake_refuses_a_video_snapchat_would_refuse(
    snap: SnapchatConnector, env: Env
) -> None:
    write_video(env.folder / "short.mp4")  # 1 s of 32x32
    error = await failure(run_steps(snap, env.job(video="short.mp4"), env.http))
    assert (error.kind, error.code, error.http_status) == (
        ErrorKind.permanent,
        "invalid_media",
        400,
    )
    assert "5 to 60 s" in error.message


async def test_the_fake_refuses_an_image_that_is_not_jpeg_or_png(
    snap: SnapchatConnector, env: Env
) -> None:
    error = await failure(run_steps(snap, env.job(image="img4.gif"), env.http))
    assert (error.kind, error.code) == (ErrorKind.permanent, "invalid_media")


async def test_a_slow_answer_is_a_timeout(snap: SnapchatConnector, env: Env) -> None:
    await env.fault(on="create", delay=1)
    async with platform_client(4, 0.3) as impatient:
        error = await failure(run_steps(snap, env.job(), impatient))
    assert error.kind is ErrorKind.timeout


async def test_a_refused_connection(env: Env) -> None:
    port = free_port()
    error = await failure(run_steps(connector(f"http://127.0.0.1:{port}"), env.job(), env.http))
    assert (error.kind, error.code, error.origin) == (
        ErrorKind.connection, "connection_failed", f"http://127.0.0.1:{port}")  # fmt: skip


async def test_a_missing_token_needs_reauth(snap: SnapchatConnector, env: Env) -> None:
    error = await failure(run_steps(snap, env.job(access_token=None), env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "no_access_token")
    assert (await env.calls())["create"] == 0


async def test_another_profiles_token_is_forbidden(snap: SnapchatConnector, env: Env) -> None:
    await env.add_user(username="someone_else", access_token="other-token")
    error = await failure(run_steps(snap, env.job(access_token="other-token"), env.http))
    assert (error.kind, error.code, error.http_status) == (ErrorKind.permanent, "forbidden", 403)


# --- resuming ----------------------------------------------------------------------------------


async def test_another_worker_resumes_after_a_crash_mid_upload(env: Env) -> None:
    job = env.job("Resumed")
    saved = await run_steps(connector(env.fake), job, env.http, stop_after="part_1")
    assert list(saved["steps"])[-1] == "part_1"
    resumed = dataclasses.replace(job, checkpoint=saved)
    published = await deliver(connector(env.fake), resumed, env.http)
    [post] = await env.posts()
    assert post["id"] == published.platform_post_id
    clip = env.file("clip.mp4")
    assert post["media"][0]["sha256"] == sha256(clip)  # the parts chain across workers
    calls = await env.calls()
    assert (calls["create"], calls["add"], calls["finalize"]) == (1, parts_of(len(clip)), 1)


async def test_another_worker_resumes_after_a_failed_part(env: Env) -> None:
    first, job = connector(env.fake), env.job("Resumed")
    saved = await run_steps(first, job, env.http, stop_after="part_0")
    await env.fault(on="add", status=503)
    resumed = dataclasses.replace(job, checkpoint=saved)
    error = await failure(run_steps(first, resumed, env.http))
    assert (error.kind, error.http_status) == (ErrorKind.server_error, 503)
    assert list(resumed.checkpoint["steps"]) == ["media", "part_0"]
    await deliver(connector(env.fake), resumed, env.http)
    [post] = await env.posts()
    assert post["media"][0]["sha256"] == sha256(env.file("clip.mp4"))
    assert (await env.calls())["add"] == parts_of(len(env.file("clip.mp4"))) + 1


async def test_an_old_container_is_made_again_in_a_new_round(env: Env) -> None:
    job = env.job("Held back a day")
    saved = await run_steps(connector(env.fake), job, env.http)
    resumed = dataclasses.replace(job, checkpoint=saved)
    later = connector(env.fake, container_max_age=0)
    names = [step.name for step in later.steps(resumed)]
    assert names[0] == "r2_media" and names[-1] == "r2_finalize"
    published = await deliver(later, resumed, env.http)
    steps = resumed.checkpoint["steps"]
    assert steps["r2_finalize"]["media_id"] != steps["finalize"]["media_id"]
    [post] = await env.posts()
    assert (post["id"], post["media"][0]["id"]) == (published.platform_post_id,
                                                    steps["r2_finalize"]["media_id"])  # fmt: skip


async def test_finalize_waits_for_every_part(snap: SnapchatConnector, env: Env) -> None:
    job = env.job()
    saved = await run_steps(snap, job, env.http, stop_after="part_0")
    done = dataclasses.replace(job, checkpoint=saved)
    [finalize] = [s for s in snap.steps(done) if s.name == "finalize"]
    error = await failure(finalize.run(done, env.http))
    assert (error.kind, error.code) == (ErrorKind.server_error, "upload_incomplete")


# --- reconcile ---------------------------------------------------------------------------------


async def test_reconcile_cannot_tell_after_a_publish(snap: SnapchatConnector, env: Env) -> None:
    job = env.job(publishing_since=dt.datetime.now(dt.UTC))
    await deliver(snap, job, env.http)
    found = await snap.reconcile(job, env.http)
    assert isinstance(found, CannotTell) and "cannot list" in found.reason


async def test_reconcile_of_a_job_with_nothing_finalized(snap: SnapchatConnector, env: Env) -> None:
    job = env.job()
    await run_steps(snap, job, env.http, stop_after="part_0")
    assert await snap.reconcile(job, env.http) == NotPublished()


# --- refresh -----------------------------------------------------------------------------------


async def test_a_refresh_gives_a_token_of_an_hour(snap: SnapchatConnector, env: Env) -> None:
    account = env.job().account
    before = dt.datetime.now(dt.UTC)
    tokens = await snap.refresh(account, env.http)
    assert tokens.access_token not in (account.access_token, REFRESH)
    assert tokens.refresh_token == REFRESH and tokens.expires_at is not None
    assert abs(tokens.expires_at - before - dt.timedelta(seconds=3600)) < dt.timedelta(seconds=10)
    await deliver(snap, env.job("After refresh", access_token=tokens.access_token), env.http)
    assert [post["profile_id"] for post in await env.posts()] == [PROFILE_ID]


async def test_refresh_needs_its_token(snap: SnapchatConnector, env: Env) -> None:
    error = await failure(snap.refresh(env.job(refresh_token=None).account, env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "no_refresh_token")


@pytest.mark.parametrize(("status", "kind"), [(400, ErrorKind.reauth_required),
                                              (503, ErrorKind.server_error)])  # fmt: skip
async def test_a_failing_refresh(
    snap: SnapchatConnector, env: Env, status: int, kind: ErrorKind
) -> None:
    await env.fault(on="token", status=status)
    error = await failure(snap.refresh(env.job().account, env.http))
    assert error.kind is kind


async def test_refresh_sends_the_app_credentials(env: Env) -> None:
    credentials = {"client_id": "soku-app", "client_secret": "s3cret"}
    await env.config(**credentials)
    error = await failure(connector(env.fake).refresh(env.job().account, env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "invalid_client")
    named = connector(env.fake, **credentials)
    assert (await named.refresh(env.job().account, env.http)).access_token
