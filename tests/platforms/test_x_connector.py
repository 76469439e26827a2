"""The X connector against the X fake, both over real HTTP (uvicorn and a file server)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from soku.platforms.connector import ErrorKind, Job, NotPublished, Published
from soku.platforms.x_connector import XConnector
from soku.platforms.x_errors import map_error
from soku.sandbox.x import create_x_fake
from tests.asgi_server import free_port, serving
from tests.media_files import write_image, write_video
from tests.platforms.connector_world import (
    FakeControls,
    deliver,
    failure,
    fresh_fake,
    make_job,
    run_steps,
)

USERNAME, TOKEN, REFRESH = "soku_x", "x-access", "x-refresh"
ACCOUNT = dict(account_id="x_main", username=USERNAME, access_token=TOKEN, refresh_token=REFRESH)
CHUNK = 1024 * 1024
VIDEO_BYTES = 2 * CHUNK + 123_456  # three chunks
IMAGES = ("img1.jpg", "img2.png", "img3.webp", "img4.gif")


class _Files(BaseHTTPRequestHandler):
    """Serves a folder with byte ranges; under `/plain/` it ignores them, as some stores do."""

    server: _FileServer

    def do_GET(self) -> None:
        name = self.path.partition("?")[0].lstrip("/")
        plain = name.startswith("plain/")
        path = self.server.folder / name.removeprefix("plain/")
        self.server.requests.append((name, self.headers.get("Range")))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        start, end = 0, len(data)
        if wanted and not plain:
            start = int(wanted[1])
            end = min(int(wanted[2]) + 1 if wanted[2] else len(data), len(data))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        else:
            self.send_response(200)
        kinds = {".mp4": "video/mp4", ".gif": "image/gif", ".png": "image/png"}
        self.send_header("Content-Type", kinds.get(path.suffix, "application/octet-stream"))
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(data[start:end])

    def log_message(self, format: str, *args: object) -> None:
        return


class _FileServer(ThreadingHTTPServer):
    def __init__(self, folder: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Files)
        self.folder = folder
        self.requests: list[tuple[str, str | None]] = []
        self.base = f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture(scope="session")
async def fake_url() -> AsyncIterator[str]:
    async with serving(create_x_fake()) as url:
        yield url


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_FileServer]:
    folder = tmp_path_factory.mktemp("x_media")
    for index, name in enumerate(IMAGES, start=1):
        write_image(folder / name, (index * 50, 90, 160))
    write_video(folder / "clip.mp4", frames=20)
    with (folder / "clip.mp4").open("ab") as video:  # padded to several chunks
        video.write(os.urandom(VIDEO_BYTES - video.tell()))
    (folder / "huge.jpg").write_bytes(b"\xff\xd8\xff" + os.urandom(6 * 1024 * 1024))
    server = _FileServer(folder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@dataclasses.dataclass
class Env(FakeControls):
    """The test's world: the fake and a client like the engine's, the file server, the user."""

    files: _FileServer
    user_id: str

    def job(
        self,
        text: str | None = "Hello",
        images: tuple[str, ...] = (),
        video: str | None = None,
        **more: Any,
    ) -> Job:
        """`more`: `publishing_since`, or the account's fields this job changes."""
        return make_job(
            "x",
            {**ACCOUNT, "platform_user_id": self.user_id},
            text=text,
            image_urls=[f"{self.files.base}/{name}" for name in images],
            video_urls=[f"{self.files.base}/{video}"] if video else [],
            **more,
        )

    def sha256(self, name: str) -> str:
        return hashlib.sha256((self.files.folder / name).read_bytes()).hexdigest()


@pytest.fixture
async def env(fake_url: str, files: _FileServer) -> AsyncIterator[Env]:
    """A fresh fake that knows the account's user and tokens; no status-check waits."""
    async with fresh_fake(fake_url) as fake:
        user = await fake.add_user(username=USERNAME, access_token=TOKEN, refresh_token=REFRESH)
        world = Env(fake.http, fake_url, files, user["data"]["id"])
        await world.config(check_after_secs=0)
        files.requests.clear()
        yield world


@pytest.fixture
def connector(fake_url: str) -> XConnector:
    return XConnector(fake_url, web_url=fake_url, chunk_bytes=CHUNK)


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


async def test_resume_after_a_crash_mid_video(env: Env) -> None:
    first = XConnector(env.fake, web_url=env.fake, chunk_bytes=CHUNK)
    job = env.job("Resumed film", video="clip.mp4")
    saved = await run_steps(first, job, env.http, stop_after="append_1")
    assert list(saved["steps"]) == ["init", "append_0", "append_1"]
    env.files.requests.clear()
    second = XConnector(env.fake, web_url=env.fake, chunk_bytes=CHUNK)  # another worker
    resumed = dataclasses.replace(job, checkpoint=saved)
    published = await deliver(second, resumed, env.http)
    [post] = await env.posts()
    assert post["id"] == published.platform_post_id
    assert post["media"][0]["appends"] == [0, 1, 2]  # no chunk appended twice
    assert [r for _, r in env.files.requests] == [f"bytes={2 * CHUNK}-{VIDEO_BYTES - 1}"]
    calls = await env.calls()
    assert (calls["initialize"], calls["append"], calls["finalize"]) == (1, 3, 1)


async def test_a_finalize_whose_result_was_lost(connector: XConnector, env: Env) -> None:
    job = env.job("Finalized twice", video="clip.mp4")
    saved = await run_steps(connector, job, env.http, stop_after="append_2")
    finalize = next(step for step in connector.steps(job) if step.name == "finalize")
    await finalize.run(job, env.http)  # went through; the worker died before saving it
    resumed = dataclasses.replace(job, checkpoint=saved)
    await deliver(connector, resumed, env.http)
    assert resumed.checkpoint["steps"]["finalize"]["processing_info"]["state"] == "in_progress"
    assert len(await env.posts()) == 1 and (await env.calls())["finalize"] == 2


async def test_user_looked_up_when_the_account_lacks_it(connector: XConnector, env: Env) -> None:
    job = env.job("Who am I", username=None, platform_user_id="sbx_1")
    assert [step.name for step in connector.steps(job)] == ["user"]
    published = await deliver(connector, job, env.http)
    assert job.checkpoint["steps"]["user"] == {"id": env.user_id, "username": USERNAME}
    assert published.url == f"{env.fake}/{USERNAME}/status/{published.platform_post_id}"
    found = await connector.reconcile(job, env.http)
    assert isinstance(found, Published) and found.url == published.url


async def test_reconcile_finds_the_post(connector: XConnector, env: Env) -> None:
    await deliver(connector, env.job("Some other post"), env.http)
    since = dt.datetime.now(dt.UTC)
    for job in (
        env.job("Find me & https://example.com/x", publishing_since=since),
        env.job("With pictures", images=IMAGES[:2], publishing_since=since),
        env.job(None, images=IMAGES[2:3]),
    ):
        published = await deliver(connector, job, env.http)
        found = await connector.reconcile(job, env.http)
        assert isinstance(found, Published), job.text
        assert (found.platform_post_id, found.url) == (published.platform_post_id, published.url)


async def test_reconcile_matches_text_as_x_renders_it(env: Env) -> None:
    job = env.job("Tom & Jerry <3 https://example.com/x", images=IMAGES[:1])
    connector = XConnector(env.fake, web_url=env.fake)
    published = await deliver(connector, job, env.http)
    job.checkpoint["steps"]["upload_0"]["media_key"] = None  # match on the text alone
    found = await connector.reconcile(job, env.http)
    assert isinstance(found, Published) and found.platform_post_id == published.platform_post_id


async def test_reconcile_says_not_published(connector: XConnector, env: Env) -> None:
    await deliver(connector, env.job("Other text"), env.http)
    assert await connector.reconcile(env.job("Never sent"), env.http) == NotPublished()
    future = dt.datetime(2999, 1, 1, tzinfo=dt.UTC)
    later = env.job("Other text", publishing_since=future)
    assert await connector.reconcile(later, env.http) == NotPublished()
    pictured = env.job("Other text", images=IMAGES[:1])
    await run_steps(connector, pictured, env.http)  # uploaded, never posted
    assert await connector.reconcile(pictured, env.http) == NotPublished()


async def test_reconcile_after_an_accepted_publish_timed_out(
    connector: XConnector, env: Env
) -> None:
    await env.fault(on="publish", accept_then_delay=1)
    job = env.job("Did it go?", publishing_since=dt.datetime.now(dt.UTC))
    async with httpx.AsyncClient(timeout=0.2) as impatient:
        error = await failure(connector.publish(job, impatient))
    assert error.kind is ErrorKind.timeout
    assert isinstance(await connector.reconcile(job, env.http), Published)


async def test_a_failed_listing_raises(connector: XConnector, env: Env) -> None:
    await env.fault(on="list", status=503, retry_after=7)
    error = await failure(connector.reconcile(env.job(), env.http))
    assert (error.kind, error.http_status, error.retry_after) == (ErrorKind.server_error, 503, 7)


@pytest.mark.parametrize(
    ("fault", "kind", "code"),
    [
        ({"status": 500}, ErrorKind.server_error, "server_error"),
        ({"error_code": "token_expired"}, ErrorKind.token_expired, "token_expired"),
        ({"error_code": "duplicate_content"}, ErrorKind.permanent, "duplicate_content"),
        ({"error_code": "forbidden"}, ErrorKind.permanent, "forbidden"),
        (
            {"error_code": "unsupported_authentication"},
            ErrorKind.reauth_required,
            "unsupported_authentication",
        ),
        ({"status": 400}, ErrorKind.permanent, "invalid_request"),
    ],
)
async def test_publish_errors_map_to_kinds(
    connector: XConnector, env: Env, fault: dict[str, Any], kind: ErrorKind, code: str
) -> None:
    await env.fault(on="publish", **fault)
    error = await failure(connector.publish(env.job(), env.http))
    assert (error.kind, error.code) == (kind, code)
    assert error.raw["status"] == error.http_status and error.raw["title"]
    assert error.retry_after is None and error.message.startswith("X answered")


async def test_a_real_duplicate_is_permanent(connector: XConnector, env: Env) -> None:
    await deliver(connector, env.job("Only once"), env.http)
    error = await failure(connector.publish(env.job("Only once"), env.http))
    assert (error.kind, error.code, error.http_status) == (
        ErrorKind.permanent,
        "duplicate_content",
        403,
    )
    assert error.raw["detail"] == "You are not allowed to create a Tweet with duplicate content."


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


async def test_timeout_and_connection_errors(connector: XConnector, env: Env) -> None:
    await env.fault(on="media", delay=1)
    job = env.job(images=IMAGES[:1])
    async with httpx.AsyncClient(timeout=0.3) as impatient:
        error = await failure(connector.steps(job)[0].run(job, impatient))
    assert error.kind is ErrorKind.timeout
    closed = XConnector(f"http://127.0.0.1:{free_port()}")
    error = await failure(closed.publish(env.job(), env.http))
    assert (error.kind, error.code) == (ErrorKind.connection, "connection_failed")


async def test_processing_failure(connector: XConnector, env: Env) -> None:
    await env.fault(on="status", error_code="processing_failed")
    error = await failure(run_steps(connector, env.job(video="clip.mp4"), env.http))
    assert (error.kind, error.code) == (ErrorKind.processing_failed, "processing_failed")
    assert "Unsupported video format" in error.message and error.raw["state"] == "failed"


async def test_media_problems(connector: XConnector, env: Env) -> None:
    too_big = await failure(run_steps(connector, env.job(images=("huge.jpg",)), env.http))
    assert (too_big.kind, too_big.code) == (ErrorKind.permanent, "media_too_large")
    missing = await failure(run_steps(connector, env.job(video="gone.mp4"), env.http))
    assert (missing.kind, missing.code, missing.http_status) == (
        ErrorKind.permanent,
        "media_unavailable",
        404,
    )


async def test_missing_token_needs_reauth(connector: XConnector, env: Env) -> None:
    error = await failure(connector.publish(env.job(access_token=None), env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "no_access_token")
    assert (await env.calls())["publish"] == 0


async def test_refresh_rotates_the_refresh_token(connector: XConnector, env: Env) -> None:
    account = env.job().account
    before = dt.datetime.now(dt.UTC)
    first = await connector.refresh(account, env.http)
    assert first.refresh_token and first.refresh_token != REFRESH
    assert first.expires_at is not None
    assert dt.timedelta(seconds=7190) < first.expires_at - before < dt.timedelta(seconds=7210)
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


async def test_refresh_sends_the_client_id(connector: XConnector, env: Env) -> None:
    await env.config(client_id="soku-app")
    error = await failure(connector.refresh(env.job().account, env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "unauthorized_client")
    named = XConnector(env.fake, client_id="soku-app")
    assert (await named.refresh(env.job().account, env.http)).access_token
    error = await failure(named.refresh(env.job(refresh_token=None).account, env.http))
    assert (error.kind, error.code) == (ErrorKind.reauth_required, "no_refresh_token")
    await env.fault(on="token", status=503)
    error = await failure(named.refresh(env.job().account, env.http))
    assert error.kind is ErrorKind.server_error
