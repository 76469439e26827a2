"""The X fake's contract, checked against x.md: paths, shapes, codes, headers, states, faults.

A fake that drifts from the X API v2 fails here, before the connector is fooled by it.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image

from soku.sandbox.x import create_x_fake

TOKEN = "user-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PUBLIC = "https://fake.example/sandbox/x"
SNOWFLAKE = re.compile(r"^[0-9]{19}$")
RATE_HEADERS = ("x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset")
DUPLICATE = {
    "detail": "You are not allowed to create a Tweet with duplicate content.",
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
}


@pytest.fixture
async def fake() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_x_fake(public_url=PUBLIC))
    async with httpx.AsyncClient(transport=transport, base_url="http://fake.test") as http:
        yield http


def png(size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


async def upload_image(http: httpx.AsyncClient, data: bytes | None = None) -> dict[str, Any]:
    files = {"media": ("a.png", data or png(), "image/png")}
    form = {"media_category": "tweet_image"}
    response = await http.post("/2/media/upload", data=form, files=files, headers=AUTH)
    assert response.status_code == 200, response.text
    return dict(response.json()["data"])


async def upload_video(http: httpx.AsyncClient, chunks: list[bytes]) -> str:
    body = {"media_type": "video/mp4", "total_bytes": sum(map(len, chunks))}
    body["media_category"] = "tweet_video"
    started = await http.post("/2/media/upload/initialize", json=body, headers=AUTH)
    assert started.status_code == 200, started.text
    media_id = str(started.json()["data"]["id"])
    for index, chunk in enumerate(chunks):
        await append(http, media_id, index, chunk)
    return media_id


async def append(http: httpx.AsyncClient, media_id: str, index: int, chunk: bytes) -> None:
    files = {"media": ("blob", chunk, "application/octet-stream")}
    path = f"/2/media/upload/{media_id}/append"
    response = await http.post(path, data={"segment_index": str(index)}, files=files, headers=AUTH)
    assert response.status_code == 200, response.text
    assert set(response.json()["data"]) == {"expires_at"}


async def status(http: httpx.AsyncClient, media_id: str) -> dict[str, Any]:
    params = {"command": "STATUS", "media_id": media_id}
    response = await http.get("/2/media/upload", params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    return dict(response.json()["data"])


async def tweet(http: httpx.AsyncClient, text: str | None, *media_ids: str) -> httpx.Response:
    body: dict[str, Any] = {"text": text} if text is not None else {}
    if media_ids:
        body["media"] = {"media_ids": list(media_ids)}
    return await http.post("/2/tweets", json=body, headers=AUTH)


async def me(http: httpx.AsyncClient) -> dict[str, Any]:
    return dict((await http.get("/2/users/me", headers=AUTH)).json()["data"])


def assert_problem(response: httpx.Response, status: int, title: str) -> dict[str, Any]:
    body = dict(response.json())
    assert response.status_code == status == body["status"], body
    assert body["title"] == title and body["detail"] and body["type"], body
    assert response.headers["content-type"] == "application/json"
    return body


async def test_bearer_token_is_required(fake: httpx.AsyncClient) -> None:
    for call in (fake.get("/2/users/me"), fake.post("/2/tweets", json={"text": "Hi"})):
        response = await call
        body = assert_problem(response, 401, "Unauthorized")
        assert body == {"title": "Unauthorized", "type": "about:blank", "status": 401,
                        "detail": "Unauthorized"}  # fmt: skip


async def test_users_me_and_registered_users(fake: httpx.AsyncClient) -> None:
    adopted = await me(fake)
    assert set(adopted) == {"id", "name", "username"} and SNOWFLAKE.match(adopted["id"])
    assert await me(fake) == adopted  # the same token names the same user
    body = {"username": "soku_test", "name": "Soku", "access_token": "known"}
    registered = (await fake.post("/_users", json=body)).json()["data"]
    answer = await fake.get("/2/users/me", headers={"Authorization": "Bearer known"})
    assert answer.json() == {"data": registered}
    assert registered["username"] == "soku_test" and registered["id"] != adopted["id"]


async def test_text_post_shape_and_rate_headers(fake: httpx.AsyncClient) -> None:
    response = await tweet(fake, "  Hello X  ")
    assert response.status_code == 201
    data = response.json()["data"]
    assert SNOWFLAKE.match(data["id"])
    assert data == {"id": data["id"], "text": "Hello X", "edit_history_tweet_ids": [data["id"]]}
    assert all(name in response.headers for name in RATE_HEADERS)
    assert response.headers["x-rate-limit-limit"] == "100"  # POST /2/tweets per user / 15 min
    assert response.headers["x-rate-limit-remaining"] == "99"
    assert int(response.headers["x-rate-limit-reset"]) > time.time()


async def test_duplicate_text_is_refused_per_user(fake: httpx.AsyncClient) -> None:
    assert (await tweet(fake, "Same words")).status_code == 201
    refused = await tweet(fake, "Same words ")
    assert refused.status_code == 403 and refused.json() == DUPLICATE
    other = {"Authorization": "Bearer someone-else"}
    assert (await fake.post("/2/tweets", json={"text": "Same words"}, headers=other)).is_success


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        ({}, "text"),
        ({"text": "x", "media": {"media_ids": ["1", "2", "3", "4", "5"]}}, "media.media_ids"),
        ({"text": "x", "media": {"media_ids": ["not-a-number"]}}, "media.media_ids.0"),
        ({"text": "x", "media": {"media_ids": ["123"]}}, "media.media_ids"),
        ({"text": "x", "unknown_field": True}, "unknown_field"),
    ],
)
async def test_invalid_posts_are_400_problems(
    fake: httpx.AsyncClient, body: dict[str, Any], parameter: str
) -> None:
    response = await fake.post("/2/tweets", json=body, headers=AUTH)
    problem = assert_problem(response, 400, "Invalid Request")
    assert problem["type"] == "https://api.x.com/2/problems/invalid-request"
    assert parameter in problem["errors"][0]["parameters"]


async def test_image_upload_shape(fake: httpx.AsyncClient) -> None:
    data = png((40, 30))
    media = await upload_image(fake, data)
    assert SNOWFLAKE.match(media["id"]) and media["media_key"] == f"3_{media['id']}"
    assert media["size"] == len(data) and media["expires_after_secs"] == 86400
    assert media["image"] == {"image_type": "image/png", "w": 40, "h": 30}
    created = await tweet(fake, "A picture", media["id"])
    assert created.status_code == 201
    assert re.fullmatch(r"A picture https://t\.co/\w{10}", created.json()["data"]["text"])
    [post] = (await fake.get("/_inspect/posts")).json()["posts"]
    assert post["text"] == "A picture"
    assert post["media"][0]["sha256"] == hashlib.sha256(data).hexdigest()
    assert post["url"] == f"{PUBLIC}/{post['username']}/status/{post['id']}"


async def test_image_upload_refusals(fake: httpx.AsyncClient) -> None:
    files = {"media": ("a.png", png(), "image/png")}
    response = await fake.post("/2/media/upload", files=files, headers=AUTH)
    assert (
        "media_category"
        in assert_problem(response, 400, "Invalid Request")["errors"][0]["parameters"]
    )
    files = {"media": ("a.png", b"not an image", "image/png")}
    form = {"media_category": "tweet_image"}
    response = await fake.post("/2/media/upload", data=form, files=files, headers=AUTH)
    assert_problem(response, 400, "Invalid Request")


async def test_chunked_video_processing_states(fake: httpx.AsyncClient) -> None:
    await fake.post("/_config", json={"video_polls": 2, "check_after_secs": 3})
    media_id = await upload_video(fake, [b"a" * 10, b"b" * 10, b"c" * 5])
    final = await fake.post(f"/2/media/upload/{media_id}/finalize", headers=AUTH)
    data = final.json()["data"]
    assert data["media_key"] == f"7_{media_id}" and data["size"] == 25
    assert data["video"] == {"video_type": "video/mp4"}
    assert data["processing_info"] == {"state": "pending", "check_after_secs": 3}
    early = await tweet(fake, "Too early", media_id)
    assert_problem(early, 400, "Invalid Request")
    states = [(await status(fake, media_id))["processing_info"] for _ in range(3)]
    assert [info["state"] for info in states] == ["in_progress", "in_progress", "succeeded"]
    assert states[0]["check_after_secs"] == 3 and 0 < states[0]["progress_percent"] < 100
    assert states[2] == {"state": "succeeded", "progress_percent": 100}
    assert (await tweet(fake, "A film", media_id)).status_code == 201
    [media] = (await fake.get("/_inspect/posts")).json()["posts"][0]["media"]
    assert media["appends"] == [0, 1, 2] and media["type"] == "video"


async def test_status_without_command_and_unknown_media(fake: httpx.AsyncClient) -> None:
    media_id = await upload_video(fake, [b"x" * 4])
    await fake.post(f"/2/media/upload/{media_id}/finalize", headers=AUTH)
    plain = await fake.get("/2/media/upload", params={"media_id": media_id}, headers=AUTH)
    assert plain.json()["data"]["processing_info"]["state"] in ("in_progress", "succeeded")
    unknown = await fake.get("/2/media/upload", params={"media_id": "123"}, headers=AUTH)
    assert_problem(unknown, 400, "Invalid Request")


async def test_chunked_upload_refusals(fake: httpx.AsyncClient) -> None:
    body = {"media_type": "video/avi", "total_bytes": 10, "media_category": "tweet_video"}
    bad_type = await fake.post("/2/media/upload/initialize", json=body, headers=AUTH)
    assert_problem(bad_type, 400, "Invalid Request")
    media_id = await upload_video(fake, [b"abc"])
    files = {"media": ("blob", b"x", "application/octet-stream")}
    path = f"/2/media/upload/{media_id}/append"
    late = await fake.post(path, data={"segment_index": "1000"}, files=files, headers=AUTH)
    assert_problem(late, 400, "Invalid Request")
    missing = await fake.post(path, data={"segment_index": "1"}, headers=AUTH)
    assert_problem(missing, 400, "Invalid Request")
    assert (await fake.post(f"/2/media/upload/{media_id}/finalize", headers=AUTH)).is_success
    twice = await fake.post(f"/2/media/upload/{media_id}/finalize", headers=AUTH)
    assert_problem(twice, 400, "Invalid Request")


async def test_finalize_checks_total_bytes(fake: httpx.AsyncClient) -> None:
    body = {"media_type": "video/mp4", "total_bytes": 10, "media_category": "tweet_video"}
    media_id = (await fake.post("/2/media/upload/initialize", json=body, headers=AUTH)).json()[
        "data"
    ]["id"]
    await append(fake, media_id, 0, b"12345")
    response = await fake.post(f"/2/media/upload/{media_id}/finalize", headers=AUTH)
    assert (
        "size mismatch" in assert_problem(response, 400, "Invalid Request")["errors"][0]["message"]
    )


async def test_processing_failure(fake: httpx.AsyncClient) -> None:
    await fake.post("/_faults", json={"on": "status", "error_code": "processing_failed"})
    media_id = await upload_video(fake, [b"x" * 4])
    await fake.post(f"/2/media/upload/{media_id}/finalize", headers=AUTH)
    info = (await status(fake, media_id))["processing_info"]
    assert info["state"] == "failed" and info["error"]["message"]
    assert_problem(await tweet(fake, "Broken", media_id), 400, "Invalid Request")


async def test_user_timeline(fake: httpx.AsyncClient) -> None:
    user = await me(fake)
    empty = await fake.get(f"/2/users/{user['id']}/tweets", headers=AUTH)
    assert empty.json() == {"meta": {"result_count": 0}}
    image = await upload_image(fake)
    first = (await tweet(fake, "Read https://example.com/a & more", image["id"])).json()["data"]
    second = (await tweet(fake, "Plain")).json()["data"]
    params = {"max_results": "5", "tweet.fields": "created_at,attachments"}
    listing = (await fake.get(f"/2/users/{user['id']}/tweets", params=params, headers=AUTH)).json()
    assert [t["id"] for t in listing["data"]] == [second["id"], first["id"]]
    assert listing["meta"] == {"result_count": 2, "newest_id": second["id"],
                               "oldest_id": first["id"]}  # fmt: skip
    shown = listing["data"][1]
    assert re.fullmatch(r"Read https://t\.co/\w{10} &amp; more https://t\.co/\w{10}", shown["text"])
    assert shown["attachments"] == {"media_keys": [image["media_key"]]}
    assert shown["created_at"].endswith("Z") and "attachments" not in listing["data"][0]
    later = {"start_time": "2999-01-01T00:00:00Z"}
    assert (await fake.get(f"/2/users/{user['id']}/tweets", params=later, headers=AUTH)).json() == {
        "meta": {"result_count": 0}
    }


async def test_timeline_pages_and_bounds(fake: httpx.AsyncClient) -> None:
    user = await me(fake)
    for n in range(7):
        await tweet(fake, f"Post {n}")
    path = f"/2/users/{user['id']}/tweets"
    page = (await fake.get(path, params={"max_results": "5"}, headers=AUTH)).json()
    assert page["meta"]["result_count"] == 5 and page["meta"]["next_token"]
    rest = {"max_results": "5", "pagination_token": page["meta"]["next_token"]}
    assert [
        t["text"] for t in (await fake.get(path, params=rest, headers=AUTH)).json()["data"]
    ] == [
        "Post 1",
        "Post 0",
    ]
    for wrong in ("4", "101"):
        response = await fake.get(path, params={"max_results": wrong}, headers=AUTH)
        assert_problem(response, 400, "Invalid Request")


async def test_rate_limit_window(fake: httpx.AsyncClient) -> None:
    await fake.post("/_config", json={"rate_limit": 2})
    assert (await me(fake))["id"]
    await me(fake)
    response = await fake.get("/2/users/me", headers=AUTH)
    assert_problem(response, 429, "Too Many Requests")
    assert response.headers["x-rate-limit-remaining"] == "0"
    assert 0 < int(response.headers["x-rate-limit-reset"]) - time.time() <= 900


async def test_refresh_rotates_tokens(fake: httpx.AsyncClient) -> None:
    form = {"grant_type": "refresh_token", "refresh_token": "first-refresh"}
    response = await fake.post("/2/oauth2/token", data=form)
    tokens = response.json()
    assert response.status_code == 200
    assert set(tokens) == {"token_type", "expires_in", "access_token", "scope", "refresh_token"}
    assert (tokens["token_type"], tokens["expires_in"]) == ("bearer", 7200)
    reused = await fake.post("/2/oauth2/token", data=form)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_request"
    rotated = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    again = (await fake.post("/2/oauth2/token", data=rotated)).json()
    owner = {"Authorization": f"Bearer {tokens['access_token']}"}
    later = {"Authorization": f"Bearer {again['access_token']}"}
    first_user = (await fake.get("/2/users/me", headers=owner)).json()["data"]
    assert (await fake.get("/2/users/me", headers=later)).json()["data"] == first_user


async def test_refresh_client_and_grant_checks(fake: httpx.AsyncClient) -> None:
    await fake.post("/_config", json={"client_id": "app-1"})
    form = {"grant_type": "refresh_token", "refresh_token": "r"}
    anonymous = await fake.post("/2/oauth2/token", data=form)
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "unauthorized_client"
    named = await fake.post("/2/oauth2/token", data={**form, "client_id": "app-1"})
    assert named.status_code == 200
    code = await fake.post("/2/oauth2/token", data={"grant_type": "authorization_code"})
    assert code.status_code == 401 and code.json()["error"] == "unauthorized_client"
    other = await fake.post("/2/oauth2/token", data={"grant_type": "password"})
    assert other.status_code == 400 and other.json()["error"] == "unsupported_grant_type"


async def test_issued_tokens_expire(fake: httpx.AsyncClient) -> None:
    await fake.post("/_config", json={"token_lifetime_secs": 0})
    form = {"grant_type": "refresh_token", "refresh_token": "r"}
    tokens = (await fake.post("/2/oauth2/token", data=form)).json()
    response = await fake.get(
        "/2/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert_problem(response, 401, "Unauthorized")


@pytest.mark.parametrize(
    ("fault", "status", "title"),
    [
        ({"status": 429, "retry_after": 42}, 429, "Too Many Requests"),
        ({"error_code": "token_expired"}, 401, "Unauthorized"),
        ({"error_code": "duplicate_content"}, 403, "Forbidden"),
        ({"error_code": "unsupported_authentication"}, 403, "Unsupported Authentication"),
        ({"status": 500}, 500, "Internal Server Error"),
        ({"status": 503, "retry_after": 5}, 503, "Service Unavailable"),
    ],
)
async def test_injected_faults(
    fake: httpx.AsyncClient, fault: dict[str, Any], status: int, title: str
) -> None:
    added = await fake.post("/_faults", json={"on": "publish", **fault})
    assert added.status_code == 201
    response = await tweet(fake, "Faulty")
    assert_problem(response, status, title)
    if status == 429:
        assert response.headers["x-rate-limit-remaining"] == "0"
        assert 40 <= int(response.headers["x-rate-limit-reset"]) - time.time() <= 43
    if status == 503:
        assert response.headers["retry-after"] == "5"
    assert (await tweet(fake, "Faulty")).status_code == 201  # used up
    assert (await fake.get("/_inspect/calls")).json()["publish"] == 2


async def test_accepted_then_slow_publish_is_kept(fake: httpx.AsyncClient) -> None:
    await fake.post("/_faults", json={"on": "publish", "accept_then_delay": 0.05})
    assert (await tweet(fake, "Slow but real")).status_code == 201
    assert len((await fake.get("/_inspect/posts")).json()["posts"]) == 1
    invalid = await fake.post("/_faults", json={"on": "status", "accept_then_delay": 1})
    assert invalid.status_code == 400


async def test_permalink_page_and_reset(fake: httpx.AsyncClient) -> None:
    post = (await tweet(fake, "Look <here>")).json()["data"]
    page = await fake.get(f"/anyone/status/{post['id']}")
    assert page.status_code == 200 and "Look &lt;here&gt;" in page.text
    assert (await fake.get("/anyone/status/1")).status_code == 404
    assert (await fake.get("/2/nothing")).json()["errors"][0]["code"] == 34
    assert (await fake.delete("/_inspect")).status_code == 204
    assert (await fake.get("/_inspect/posts")).json() == {"posts": []}
    assert (await fake.get(f"/anyone/status/{post['id']}")).status_code == 404
