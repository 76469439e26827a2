"""The generic fake platform's contract: paths, status codes, shapes, headers, states, faults."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from soku.platforms import INTEGRATIONS
from soku.sandbox.generic import create_generic_fake

AUTH = {"Authorization": "Bearer sandbox-token"}
PUBLIC = "https://fake.example/sandbox/generic"


@pytest.fixture
async def fake() -> AsyncIterator[httpx.AsyncClient]:
    app = create_generic_fake(public_url=PUBLIC)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake.test") as http:
        yield http


async def upload(http: httpx.AsyncClient, kind: str = "image", user: str = "u1") -> dict[str, Any]:
    url = f"https://cdn.example.com/a.{'jpg' if kind == 'image' else 'mp4'}"
    response = await http.post(
        f"/v1/users/{user}/media", json={"url": url, "kind": kind}, headers=AUTH
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def publish(
    http: httpx.AsyncClient,
    text: str | None = "Hello",
    media_ids: list[str] | None = None,
    user: str = "u1",
) -> httpx.Response:
    body = {"text": text, "media_ids": media_ids or [], "platform": "x"}
    return await http.post(f"/v1/users/{user}/posts", json=body, headers=AUTH)


async def add_fault(http: httpx.AsyncClient, **fault: Any) -> None:
    response = await http.post("/_faults", json=fault)
    assert response.status_code == 201, response.text


def error_of(response: httpx.Response) -> tuple[int, str]:
    body = response.json()["error"]
    assert body["status"] == response.status_code
    assert body["message"]
    return response.status_code, body["code"]


async def test_refresh_rotates_tokens(fake: httpx.AsyncClient) -> None:
    form = {"grant_type": "refresh_token", "refresh_token": "r1"}
    first, second = [(await fake.post("/oauth/token", data=form)).json() for _ in range(2)]
    assert first["access_token"].startswith("sandbox-")
    assert first["refresh_token"].startswith("sandbox-refresh-")
    assert first["expires_in"] == 3600 and first["token_type"] == "bearer"
    assert first["access_token"] != second["access_token"]
    assert first["refresh_token"] != second["refresh_token"]


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"grant_type": "refresh_token"}, "invalid_grant"),
        ({"grant_type": "refresh_token", "refresh_token": ""}, "invalid_grant"),
        ({"grant_type": "password", "refresh_token": "r"}, "unsupported_grant_type"),
    ],
)
async def test_refresh_refuses_bad_grants(
    fake: httpx.AsyncClient, form: dict[str, str], code: str
) -> None:
    assert error_of(await fake.post("/oauth/token", data=form)) == (400, code)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/users/u1/media"),
        ("GET", "/v1/media/m_1"),
        ("POST", "/v1/users/u1/posts"),
        ("GET", "/v1/users/u1/posts"),
    ],
)
async def test_v1_needs_a_bearer_token(fake: httpx.AsyncClient, method: str, path: str) -> None:
    body = {"url": "https://cdn.example.com/a.jpg", "kind": "image", "platform": "x", "text": "t"}
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}):
        response = await fake.request(method, path, json=body, headers=headers)
        assert error_of(response) == (401, "invalid_token")


async def test_image_is_ready_at_once(fake: httpx.AsyncClient) -> None:
    media = await upload(fake)
    assert media["id"].startswith("m_") and media["status"] == "ready"
    status = (await fake.get(f"/v1/media/{media['id']}", headers=AUTH)).json()
    assert status == {"id": media["id"], "status": "ready", "check_after_secs": 0}


@pytest.mark.parametrize("polls", [0, 1, 3])
async def test_video_processes_for_the_configured_polls(
    fake: httpx.AsyncClient, polls: int
) -> None:
    await fake.post("/_config", json={"video_polls": polls})
    media = await upload(fake, "video")
    assert media["status"] == "processing"
    seen = [
        (await fake.get(f"/v1/media/{media['id']}", headers=AUTH)).json()["status"]
        for _ in range(polls + 2)
    ]
    assert seen == ["processing"] * polls + ["ready", "ready"]


async def test_unknown_media_is_404(fake: httpx.AsyncClient) -> None:
    assert error_of(await fake.get("/v1/media/m_404", headers=AUTH)) == (404, "not_found")


async def test_publish_answers_id_url_and_time(fake: httpx.AsyncClient) -> None:
    media = await upload(fake)
    response = await publish(fake, "Hi", [media["id"]])
    assert response.status_code == 201
    created = response.json()
    assert created["id"].startswith("x_")
    assert created["url"] == f"{PUBLIC}/p/{created['id']}"
    assert created["created_at"].endswith("Z")


async def test_publish_refuses_bad_media_and_empty_posts(fake: httpx.AsyncClient) -> None:
    video = await upload(fake, "video")
    other_users = await upload(fake, user="u2")
    assert error_of(await publish(fake, "t", [video["id"]])) == (409, "media_not_ready")
    assert error_of(await publish(fake, "t", ["m_999"])) == (400, "invalid_media")
    assert error_of(await publish(fake, "t", [other_users["id"]])) == (400, "invalid_media")
    assert error_of(await publish(fake, None)) == (400, "empty_post")
    assert error_of(await publish(fake, "")) == (400, "empty_post")
    response = await fake.post("/v1/users/u1/posts", json={"text": "no platform"}, headers=AUTH)
    assert error_of(response) == (400, "invalid_request")


async def test_listing_is_newest_first_with_since_and_limit(fake: httpx.AsyncClient) -> None:
    for text in ("one", "two", "three"):
        await publish(fake, text)
    await publish(fake, "elsewhere", user="u2")
    data = (await fake.get("/v1/users/u1/posts", headers=AUTH)).json()["data"]
    assert [post["text"] for post in data] == ["three", "two", "one"]
    assert set(data[0]) == {"id", "text", "media_ids", "platform", "created_at", "url"}
    limited = await fake.get("/v1/users/u1/posts", params={"limit": 2}, headers=AUTH)
    assert [post["text"] for post in limited.json()["data"]] == ["three", "two"]
    later = await fake.get(
        "/v1/users/u1/posts", params={"since": "2999-01-01T00:00:00Z"}, headers=AUTH
    )
    assert later.json()["data"] == []
    since = data[1]["created_at"]
    recent = await fake.get("/v1/users/u1/posts", params={"since": since}, headers=AUTH)
    assert {post["text"] for post in recent.json()["data"]} >= {"three", "two"}


@pytest.mark.parametrize("params", [{"limit": 101}, {"limit": 0}, {"since": "yesterday"}])
async def test_listing_refuses_bad_parameters(
    fake: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    response = await fake.get("/v1/users/u1/posts", params=params, headers=AUTH)
    assert error_of(response) == (400, "invalid_request")


async def test_post_page_shows_the_post_escaped(fake: httpx.AsyncClient) -> None:
    media = await upload(fake)
    created = (await publish(fake, "<script>x</script> & more", [media["id"]])).json()
    page = await fake.get(f"/p/{created['id']}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "&lt;script&gt;x&lt;/script&gt; &amp; more" in page.text
    assert "<script>" not in page.text
    assert media["id"] in page.text and "u1" in page.text
    missing = await fake.get("/p/x_404")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")


async def test_post_url_follows_the_mount_when_no_public_url() -> None:
    root = FastAPI()
    root.mount("/sandbox/generic", create_generic_fake())
    transport = httpx.ASGITransport(app=root)
    async with httpx.AsyncClient(transport=transport, base_url="http://soku.test") as http:
        response = await http.post(
            "/sandbox/generic/v1/users/u1/posts", json={"text": "t", "platform": "x"}, headers=AUTH
        )
        url = response.json()["url"]
        assert url.startswith("http://soku.test/sandbox/generic/p/x_")
        assert (await http.get(url)).status_code == 200


async def test_inspect_shows_posts_and_calls_then_resets(fake: httpx.AsyncClient) -> None:
    media = await upload(fake)
    await fake.get(f"/v1/media/{media['id']}", headers=AUTH)
    created = (await publish(fake, "Hi", [media["id"]])).json()
    await fake.get("/v1/users/u1/posts", headers=AUTH)
    await fake.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": "r"})
    posts = (await fake.get("/_inspect/posts")).json()["posts"]
    assert posts == [
        {
            "id": created["id"],
            "user_id": "u1",
            "platform": "x",
            "text": "Hi",
            "media_ids": [media["id"]],
            "media": [{"id": media["id"], "url": "https://cdn.example.com/a.jpg", "kind": "image"}],
            "created_at": created["created_at"],
            "url": created["url"],
        }
    ]
    calls = (await fake.get("/_inspect/calls")).json()
    assert calls == {"publish": 1, "media": 1, "media_status": 1, "refresh": 1, "list": 1}
    await fake.post("/_config", json={"video_polls": 5})
    await add_fault(fake, on="any", status=500)
    assert (await fake.delete("/_inspect")).status_code == 204
    assert (await fake.get("/_inspect/posts")).json() == {"posts": []}
    assert (await fake.get("/_faults")).json() == {"faults": []}
    assert (await fake.get("/_config")).json()["video_polls"] == 1
    assert set((await fake.get("/_inspect/calls")).json().values()) == {0}
    assert error_of(await fake.get(f"/v1/media/{media['id']}", headers=AUTH)) == (404, "not_found")


async def test_config_reads_back(fake: httpx.AsyncClient) -> None:
    assert (await fake.get("/_config")).json() == {
        "latency_ms": 0,
        "video_polls": 1,
        "rate_limit": 10000,
    }
    changed = await fake.post("/_config", json={"latency_ms": 30})
    assert changed.json()["latency_ms"] == 30
    started = time.monotonic()
    await fake.get("/v1/users/u1/posts", headers=AUTH)
    assert time.monotonic() - started >= 0.03
    assert error_of(await fake.post("/_config", json={"video_polls": -1})) == (
        400,
        "invalid_request",
    )


async def test_every_answer_carries_rate_limit_headers(fake: httpx.AsyncClient) -> None:
    first = await fake.get("/v1/users/u1/posts", headers=AUTH)
    second = await fake.get("/v1/users/u1/posts", headers=AUTH)
    assert first.headers["x-rate-limit-limit"] == "10000"
    assert first.headers["x-rate-limit-remaining"] == "9999"
    assert second.headers["x-rate-limit-remaining"] == "9998"
    assert int(first.headers["x-rate-limit-reset"]) > time.time()
    failed = await fake.get("/v1/media/m_404", headers=AUTH)
    assert failed.status_code == 404 and "x-rate-limit-remaining" in failed.headers
    refused = await publish(fake, None)
    assert refused.status_code == 400 and refused.headers["x-rate-limit-remaining"] == "9997"


async def test_rate_limit_answers_429_per_user(fake: httpx.AsyncClient) -> None:
    await fake.post("/_config", json={"rate_limit": 2})
    for _ in range(2):
        assert (await fake.get("/v1/users/u1/posts", headers=AUTH)).status_code == 200
    refused = await fake.get("/v1/users/u1/posts", headers=AUTH)
    assert error_of(refused) == (429, "rate_limited")
    assert refused.headers["x-rate-limit-remaining"] == "0"
    assert 0 < int(refused.headers["retry-after"]) <= 900
    assert (await fake.get("/v1/users/u2/posts", headers=AUTH)).status_code == 200


FAULTS = [
    ("publish", 429, "rate_limited"),
    ("publish", 500, "server_error"),
    ("publish", 503, "service_unavailable"),
    ("publish", 401, "token_expired"),
    ("publish", 401, "invalid_token"),
    ("publish", 400, "duplicate_content"),
    ("media", 500, "server_error"),
    ("media_status", 503, "server_error"),
    ("list", 500, "server_error"),
    ("refresh", 400, "invalid_grant"),
]


async def call(http: httpx.AsyncClient, on: str) -> httpx.Response:
    if on == "publish":
        return await publish(http)
    if on == "media":
        body = {"url": "https://cdn.example.com/a.jpg", "kind": "image"}
        return await http.post("/v1/users/u1/media", json=body, headers=AUTH)
    if on == "media_status":
        return await http.get("/v1/media/m_1", headers=AUTH)
    if on == "list":
        return await http.get("/v1/users/u1/posts", headers=AUTH)
    return await http.post(
        "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": "r"}
    )


@pytest.mark.parametrize(("on", "status", "code"), FAULTS)
async def test_fault_answers_its_status_and_code_once(
    fake: httpx.AsyncClient, on: str, status: int, code: str
) -> None:
    await upload(fake)  # m_1, for media_status
    await add_fault(fake, on=on, status=status, error_code=code)
    assert error_of(await call(fake, on)) == (status, code)
    assert (await fake.get("/_inspect/posts")).json()["posts"] == []
    assert (await call(fake, on)).is_success


async def test_fault_times_and_fifo_order(fake: httpx.AsyncClient) -> None:
    await add_fault(fake, on="publish", status=503, times=2)
    await add_fault(fake, on="any", status=500)
    pending = (await fake.get("/_faults")).json()["faults"]
    assert [(f["status"], f["times"]) for f in pending] == [(503, 2), (500, 1)]
    statuses = [(await publish(fake)).status_code for _ in range(4)]
    assert statuses == [503, 503, 500, 201]
    assert (await fake.get("/_faults")).json() == {"faults": []}


async def test_fault_matches_its_user_and_kind_only(fake: httpx.AsyncClient) -> None:
    await add_fault(fake, user_id="u2", on="publish", status=500)
    assert (await publish(fake, user="u1")).status_code == 201
    assert (await fake.get("/v1/users/u2/posts", headers=AUTH)).status_code == 200
    assert (await publish(fake, user="u2")).status_code == 500


async def test_fault_defaults_and_clearing(fake: httpx.AsyncClient) -> None:
    await add_fault(fake, on="list", error_code="token_expired")
    await add_fault(fake, on="list", status=429)
    assert error_of(await call(fake, "list")) == (401, "token_expired")
    assert error_of(await call(fake, "list")) == (429, "rate_limited")
    await add_fault(fake, on="list", status=500, times=3)
    assert (await fake.delete("/_faults")).status_code == 204
    assert (await call(fake, "list")).status_code == 200


async def test_a_code_of_the_testers_own_is_answered_as_given(fake: httpx.AsyncClient) -> None:
    await add_fault(fake, on="publish", error_code="policy_violation")
    await add_fault(fake, on="publish", error_code="policy_violation", status=422)
    first, second = await publish(fake), await publish(fake)
    assert error_of(first) == (400, "policy_violation")
    assert "policy_violation" in first.json()["error"]["message"]
    assert error_of(second) == (422, "policy_violation")


@pytest.mark.parametrize(
    "fault",
    [
        {"on": "media", "accept_then_delay": 1},
        {"on": "sometimes", "status": 500},
        {"on": "publish"},
        {"on": "publish", "status": 200},
        {"on": "publish", "status": 500, "times": 0},
    ],
)
async def test_bad_faults_are_refused(fake: httpx.AsyncClient, fault: dict[str, Any]) -> None:
    assert error_of(await fake.post("/_faults", json=fault)) == (400, "invalid_request")


async def test_retry_after_sets_the_headers(fake: httpx.AsyncClient) -> None:
    await add_fault(fake, on="publish", status=429, error_code="rate_limited", retry_after=30)
    response = await publish(fake)
    assert response.headers["retry-after"] == "30"
    assert abs(int(response.headers["x-rate-limit-reset"]) - (time.time() + 30)) <= 2


async def test_delay_then_timeout_stores_nothing(fake: httpx.AsyncClient) -> None:
    await add_fault(fake, on="publish", delay=0.2)
    started = time.monotonic()
    response = await publish(fake)
    assert time.monotonic() - started >= 0.2
    assert error_of(response) == (504, "timeout")
    assert (await fake.get("/_inspect/posts")).json()["posts"] == []


async def test_delay_with_a_status_answers_that_status(fake: httpx.AsyncClient) -> None:
    await add_fault(fake, on="media", delay=0.1, status=503)
    started = time.monotonic()
    assert (await call(fake, "media")).status_code == 503
    assert time.monotonic() - started >= 0.1


async def test_accept_then_delay_stores_the_post_first(fake: httpx.AsyncClient) -> None:
    await add_fault(fake, on="publish", accept_then_delay=0.3)
    pending = asyncio.create_task(publish(fake, "accepted"))
    await asyncio.sleep(0.1)
    stored = (await fake.get("/_inspect/posts")).json()["posts"]
    assert [post["text"] for post in stored] == ["accepted"]
    assert not pending.done()
    response = await pending
    assert response.status_code == 201 and response.json()["id"] == stored[0]["id"]


async def test_accept_then_delay_can_answer_an_error(fake: httpx.AsyncClient) -> None:
    await add_fault(fake, on="publish", accept_then_delay=0, status=500)
    assert error_of(await publish(fake, "stored anyway")) == (500, "server_error")
    assert len((await fake.get("/_inspect/posts")).json()["posts"]) == 1


async def test_processing_failed_fails_the_media(fake: httpx.AsyncClient) -> None:
    video = await upload(fake, "video")
    await add_fault(fake, on="media_status", error_code="processing_failed")
    status = (await fake.get(f"/v1/media/{video['id']}", headers=AUTH)).json()
    assert status["status"] == "failed" and status["error"]["code"] == "processing_failed"
    again = (await fake.get(f"/v1/media/{video['id']}", headers=AUTH)).json()
    assert again["status"] == "failed"
    assert error_of(await publish(fake, "t", [video["id"]])) == (400, "invalid_media")


async def test_runs_standalone_over_real_http() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "soku.sandbox",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        assert line.startswith("sandbox ready on http://127.0.0.1:")
        base = line.rsplit(" ", 1)[1].strip() + "/sandbox/generic"
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            created = await publish(http, "over the wire")
            assert created.status_code == 201
            url = created.json()["url"]
            assert url.startswith(base + "/p/")
            page = await http.get(url)
            assert "over the wire" in page.text
            for platform in INTEGRATIONS:  # each platform's own fake is there too
                calls = await http.get(f"{base.rsplit('/', 1)[0]}/{platform}/_inspect/calls")
                assert calls.status_code == 200 and set(calls.json().values()) == {0}
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)
