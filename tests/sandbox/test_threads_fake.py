"""The Threads fake's contract, checked against threads.md: paths, params, shapes, states, errors.

A fake that drifts from the Threads API fails here, before the connector is fooled by it.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from soku.sandbox.threads import create_threads_fake
from tests.media_files import MediaServer
from tests.sandbox.graph_calls import AUTH, NUMERIC, TIMESTAMP, TOKEN, GraphCalls, graph_error

PUBLIC = "https://fake.example/sandbox/threads"
UNREACHABLE = "http://127.0.0.1:9/gone"


@pytest.fixture
async def fake() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_threads_fake(public_url=PUBLIC))
    async with httpx.AsyncClient(transport=transport, base_url="http://fake.test") as http:
        await http.post("/_config", json={"fetch_media": False})
        yield http


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MediaServer, Path]]:
    folder = tmp_path_factory.mktemp("threads_fake_media")
    server = MediaServer(folder)
    yield server, folder
    server.close()


CALLS = GraphCalls("/v1.0", "threads", "threads_publish", "id,status,error_message")
create, container, status, publish = CALLS.create, CALLS.container, CALLS.status, CALLS.publish


async def test_text_container_then_publish(fake: httpx.AsyncClient) -> None:
    container_id = await container(fake, media_type="TEXT", text="Hello Threads")
    assert await status(fake, container_id) == {"id": container_id, "status": "FINISHED"}
    bare = await fake.get(f"/v1.0/{container_id}", headers=AUTH)
    assert bare.json() == {"id": container_id}  # only the fields asked for
    published = await publish(fake, container_id)
    assert published.status_code == 200 and set(published.json()) == {"id"}
    media_id = published.json()["id"]
    assert media_id != container_id and NUMERIC.match(media_id)
    assert (await status(fake, container_id))["status"] == "PUBLISHED"
    params = {"fields": "id,permalink"}
    thread = (await fake.get(f"/v1.0/{media_id}", params=params, headers=AUTH)).json()
    assert set(thread) == {"id", "permalink"} and thread["id"] == media_id
    assert re.fullmatch(rf"{PUBLIC}/@sandbox_\d{{6}}/post/D[\w-]{{10}}", thread["permalink"])
    page = await fake.get(thread["permalink"].removeprefix(PUBLIC))
    assert page.status_code == 200 and "Hello Threads" in page.text
    graph_error(await publish(fake, container_id), 400, 100, 4279009)  # published once only


async def test_params_and_tokens_any_way_graph_takes_them(fake: httpx.AsyncClient) -> None:
    query = {"media_type": "TEXT", "text": "In the query", "access_token": TOKEN}
    assert (await fake.post("/v1.0/me/threads", params=query)).status_code == 200
    form = {"media_type": "TEXT", "text": "In the form", "access_token": TOKEN}
    assert (await fake.post("/v1.0/me/threads", data=form)).status_code == 200
    body = {"media_type": "TEXT", "text": "As JSON"}
    assert (await fake.post("/v1.0/me/threads", json=body, headers=AUTH)).status_code == 200
    texts = [c["text"] for c in (await fake.get("/_inspect/containers")).json()["containers"]]
    assert texts == ["In the query", "In the form", "As JSON"]
    me = (await fake.get("/v1.0/me", params={"fields": "id,username"}, headers=AUTH)).json()
    users = {c["user_id"] for c in (await fake.get("/_inspect/containers")).json()["containers"]}
    assert users == {me["id"]} and set(me) == {"id", "username"}
    by_id = await fake.post(f"/v1.0/{me['id']}/threads", data=body, headers=AUTH)
    assert by_id.status_code == 200
    missing = await fake.post("/v1.0/me/threads", data=body)
    graph_error(missing, 400, 2500)


async def test_versions_and_unknown_paths(fake: httpx.AsyncClient) -> None:
    params = {"media_type": "TEXT", "text": "v"}
    assert (await fake.post("/v19.0/me/threads", data=params, headers=AUTH)).status_code == 200
    graph_error(await fake.post("/v1/me/threads", data=params, headers=AUTH), 400, 2500)
    await fake.post("/_config", json={"version": "v1.0"})
    graph_error(await fake.post("/v2.0/me/threads", data=params, headers=AUTH), 400, 2500)
    graph_error(await fake.get("/v1.0/me/nothing/here", headers=AUTH), 400, 2500)


async def test_someone_elses_objects(fake: httpx.AsyncClient) -> None:
    container_id = await container(fake, media_type="TEXT", text="Mine")
    other = {"Authorization": "Bearer someone-else"}
    message = graph_error(await fake.get(f"/v1.0/{container_id}", headers=other), 400, 100, 33)
    assert message.startswith("Unsupported get request.")
    me = (await fake.get("/v1.0/me", headers=AUTH)).json()
    graph_error(await fake.get(f"/v1.0/{me['id']}/threads", headers=other), 400, 100, 33)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"media_type": "STORY", "text": "x"}, "media_type"),
        ({"media_type": "TEXT"}, "text"),
        ({"media_type": "TEXT", "text": "x" * 501}, "at most 500 characters"),
        ({"media_type": "IMAGE"}, "image_url"),
        ({"media_type": "VIDEO", "video_url": "ftp://x/y.mp4"}, "video_url"),
        ({"media_type": "TEXT", "text": "x", "is_carousel_item": "true"}, "carousel items"),
        ({"media_type": "CAROUSEL", "children": "1"}, "2 to 20"),
    ],
)
async def test_invalid_containers(
    fake: httpx.AsyncClient, params: dict[str, str], words: str
) -> None:
    message = graph_error(await create(fake, **params), 400, 100)
    assert words in message


async def test_text_length_counts_emoji_as_bytes(fake: httpx.AsyncClient) -> None:
    assert (await create(fake, media_type="TEXT", text="😀" * 125)).status_code == 200  # 500
    graph_error(await create(fake, media_type="TEXT", text="😀" * 126), 400, 100)


async def test_video_states(fake: httpx.AsyncClient) -> None:
    await fake.post("/_config", json={"video_polls": 2})
    video = await container(fake, media_type="VIDEO", video_url="https://cdn.test/a.mp4")
    early = await publish(fake, video)
    assert "not available" in graph_error(early, 400, 9007, 2207027)
    states = [(await status(fake, video))["status"] for _ in range(3)]
    assert states == ["IN_PROGRESS", "IN_PROGRESS", "FINISHED"]
    assert (await publish(fake, video)).status_code == 200


async def test_container_errors_and_expiry(fake: httpx.AsyncClient) -> None:
    fault = {
        "on": "create",
        "error_code": "processing_failed",
        "container_error": "INVALID_BIT_RATE",
    }
    await fake.post("/_faults", json=fault)
    failed = await container(fake, media_type="VIDEO", video_url="https://cdn.test/a.mp4")
    assert await status(fake, failed) == {
        "id": failed,
        "status": "ERROR",
        "error_message": "INVALID_BIT_RATE",
    }
    graph_error(await publish(fake, failed), 400, 100, 4279009)
    await fake.post("/_config", json={"container_lifetime_secs": 0})
    expired = await container(fake, media_type="TEXT", text="Too late")
    assert (await status(fake, expired))["status"] == "EXPIRED"
    graph_error(await publish(fake, expired), 400, 100, 4279009)


async def test_media_is_fetched(fake: httpx.AsyncClient, media: tuple[MediaServer, Path]) -> None:
    server, folder = media
    await fake.post("/_config", json={"fetch_media": True})
    image = await container(fake, media_type="IMAGE", image_url=server.url("img2.png"), text="P")
    assert (await status(fake, image))["status"] == "FINISHED"
    missing = await create(fake, media_type="IMAGE", image_url=server.url("none.png"))
    assert "could not be fetched from this URI" in graph_error(missing, 400, 100, 2207052)
    not_image = await create(fake, media_type="IMAGE", image_url=server.url("page.html"))
    graph_error(not_image, 400, 100, 2207052)
    video = await container(fake, media_type="VIDEO", video_url=UNREACHABLE)
    assert (await status(fake, video))["status"] == "IN_PROGRESS"
    assert (await status(fake, video))["error_message"] == "FAILED_DOWNLOADING_VIDEO"
    await publish(fake, image)
    [post] = (await fake.get("/_inspect/posts")).json()["posts"]
    [item] = post["media"]
    assert item["sha256"] == hashlib.sha256((folder / "img2.png").read_bytes()).hexdigest()
    assert (item["kind"], item["content_type"]) == ("IMAGE", "image/png")


async def test_carousel(fake: httpx.AsyncClient) -> None:
    urls = [f"https://cdn.test/{n}.jpg" for n in range(3)]
    plain = await container(fake, media_type="IMAGE", image_url=urls[0])
    kids = [
        await container(fake, media_type="IMAGE", image_url=url, is_carousel_item="true")
        for url in urls
    ]
    refused = await create(fake, media_type="CAROUSEL", children=f"{kids[0]},{plain}")
    graph_error(refused, 400, 100)
    graph_error(await publish(fake, kids[0]), 400, 100)  # an item goes out with its carousel
    album = await container(fake, media_type="CAROUSEL", children=",".join(kids), text="Album")
    media_id = (await publish(fake, album)).json()["id"]
    fields = {"fields": "id,media_type,children,text,timestamp,shortcode"}
    thread = (await fake.get(f"/v1.0/{media_id}", params=fields, headers=AUTH)).json()
    assert thread["media_type"] == "CAROUSEL_ALBUM" and thread["text"] == "Album"
    assert thread["children"] == {"data": [{"id": kid} for kid in kids]}
    assert TIMESTAMP.match(thread["timestamp"])
    [post] = (await fake.get("/_inspect/posts")).json()["posts"]
    assert [m["url"] for m in post["media"]] == urls and post["media_type"] == "CAROUSEL_ALBUM"


async def test_user_threads_listing(fake: httpx.AsyncClient) -> None:
    empty = await fake.get("/v1.0/me/threads", headers=AUTH)
    assert empty.json() == {"data": []}
    ids = []
    for n in range(3):
        made = await container(fake, media_type="TEXT", text=f"Post {n}")
        ids.append((await publish(fake, made)).json()["id"])
    params = {"fields": "id,text,timestamp,permalink,media_type", "limit": "2"}
    page = (await fake.get("/v1.0/me/threads", params=params, headers=AUTH)).json()
    assert [t["id"] for t in page["data"]] == ids[:0:-1]  # newest first
    first = page["data"][0]
    assert set(first) == {"id", "text", "timestamp", "permalink", "media_type"}
    assert (first["text"], first["media_type"]) == ("Post 2", "TEXT_POST")
    assert set(page["paging"]["cursors"]) == {"before", "after"} and page["paging"]["next"]
    rest = {**params, "after": page["paging"]["cursors"]["after"]}
    last = (await fake.get("/v1.0/me/threads", params=rest, headers=AUTH)).json()
    assert [t["id"] for t in last["data"]] == ids[:1] and "next" not in last["paging"]
    later = {"since": str(int(time.time()) + 60)}
    assert (await fake.get("/v1.0/me/threads", params=later, headers=AUTH)).json() == {"data": []}
    early = {"since": "1600000000"}
    graph_error(await fake.get("/v1.0/me/threads", params=early, headers=AUTH), 400, 100)
    too_many = {"limit": "101"}
    graph_error(await fake.get("/v1.0/me/threads", params=too_many, headers=AUTH), 400, 100)


async def test_publishing_limit_and_quota(fake: httpx.AsyncClient) -> None:
    params = {"fields": "quota_usage,config,reply_quota_usage,reply_config"}
    path = "/v1.0/me/threads_publishing_limit"
    before = (await fake.get(path, params=params, headers=AUTH)).json()
    assert before == {"data": [{
        "quota_usage": 0, "config": {"quota_total": 250, "quota_duration": 86400},
        "reply_quota_usage": 0, "reply_config": {"quota_total": 1000, "quota_duration": 86400},
    }]}  # fmt: skip
    await fake.post("/_config", json={"quota_total": 1})
    await publish(fake, await container(fake, media_type="TEXT", text="One"))
    over = await publish(fake, await container(fake, media_type="TEXT", text="Two"))
    graph_error(over, 400, 9, 2207042)
    usage = (await fake.get(path, params={"fields": "quota_usage"}, headers=AUTH)).json()
    assert usage == {"data": [{"quota_usage": 1}]}


async def test_refresh_long_lived_token(fake: httpx.AsyncClient) -> None:
    params = {"grant_type": "th_refresh_token", "access_token": TOKEN}
    response = await fake.get("/refresh_access_token", params=params)
    tokens = response.json()
    assert response.status_code == 200
    assert set(tokens) == {"access_token", "token_type", "expires_in"}
    assert (tokens["token_type"], tokens["expires_in"]) == ("bearer", 5183944)
    mine = (await fake.get("/v1.0/me", headers=AUTH)).json()
    renewed = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await fake.get("/v1.0/me", headers=renewed)).json() == mine
    versioned = await fake.get("/v1.0/refresh_access_token", params=params)
    assert versioned.status_code == 200
    wrong = {**params, "grant_type": "refresh_token"}
    graph_error(await fake.get("/refresh_access_token", params=wrong), 400, 100)
    await fake.post("/_users", json={"username": "lapsed", "access_token": "old", "expires_in": 0})
    lapsed = {**params, "access_token": "old"}
    graph_error(await fake.get("/refresh_access_token", params=lapsed), 400, 190, 463)
    await fake.post("/_config", json={"refresh_min_age_secs": 86400})
    graph_error(await fake.get("/refresh_access_token", params=params), 400, 100)


@pytest.mark.parametrize(
    ("fault", "status", "code", "subcode"),
    [
        ({"error_code": "rate_limited", "retry_after": 42}, 400, 4, None),
        ({"error_code": "user_rate_limited"}, 400, 17, None),
        ({"error_code": "token_expired"}, 400, 190, 463),
        ({"error_code": "duplicate_content"}, 400, 506, None),
        ({"status": 500}, 500, 1, None),
        ({"status": 503, "retry_after": 5}, 503, 2, None),
        ({"delay": 0.01}, 504, 2, None),
    ],
)
async def test_injected_faults(
    fake: httpx.AsyncClient, fault: dict[str, Any], status: int, code: int, subcode: int | None
) -> None:
    made = await container(fake, media_type="TEXT", text="Faulty")
    added = await fake.post("/_faults", json={"on": "publish", **fault})
    assert added.status_code == 201
    response = await publish(fake, made)
    graph_error(response, status, code, subcode)
    if "retry_after" in fault:
        assert response.headers["retry-after"] == str(fault["retry_after"])
    assert (await publish(fake, made)).status_code == 200  # used up
    assert (await fake.get("/_inspect/calls")).json()["publish"] == 2


async def test_faults_per_user_and_kind(fake: httpx.AsyncClient) -> None:
    me = (await fake.get("/v1.0/me", headers=AUTH)).json()
    await fake.post("/_faults", json={"on": "any", "user_id": me["id"], "status": 500})
    other = {"Authorization": "Bearer other"}
    assert (await fake.get("/v1.0/me", headers=other)).status_code == 200
    graph_error(await create(fake, media_type="TEXT", text="x"), 500, 1)
    bad = await fake.post("/_faults", json={"on": "create", "accept_then_delay": 1})
    graph_error(bad, 400, 100)


async def test_accepted_then_slow_publish_is_kept(fake: httpx.AsyncClient) -> None:
    made = await container(fake, media_type="TEXT", text="Slow but real")
    await fake.post("/_faults", json={"on": "publish", "accept_then_delay": 0.05})
    assert (await publish(fake, made)).status_code == 200
    assert len((await fake.get("/_inspect/posts")).json()["posts"]) == 1


async def test_usage_header_pages_and_reset(fake: httpx.AsyncClient) -> None:
    made = await create(fake, media_type="TEXT", text="Look <here>")
    assert '"call_count"' in made.headers["x-app-usage"]
    media_id = (await publish(fake, made.json()["id"])).json()["id"]
    [post] = (await fake.get("/_inspect/posts")).json()["posts"]
    assert post["id"] == media_id and post["url"].startswith(f"{PUBLIC}/@")
    page = await fake.get(post["url"].removeprefix(PUBLIC))
    assert page.status_code == 200 and "Look &lt;here&gt;" in page.text
    profile = await fake.get(f"/@{post['user']['username']}")
    assert profile.status_code == 200 and "Look &lt;here&gt;" in profile.text
    assert (await fake.get("/@anyone/post/Dnothing0000")).status_code == 404
    assert (await fake.delete("/_inspect")).status_code == 204
    assert (await fake.get("/_inspect/posts")).json() == {"posts": []}
    assert (await fake.get(post["url"].removeprefix(PUBLIC))).status_code == 404
