"""The Facebook fake's contract, checked against facebook.md: paths, params, shapes, ids,
video states, Graph error bodies and codes, usage headers and faults.

A fake that drifts from the Graph API fails here, before the connector is fooled by it.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from soku.sandbox.facebook import create_facebook_fake
from tests.media_files import MediaServer

PAGE, TOKEN = "1122334455", "page-token"
AUTH = {"Authorization": f"OAuth {TOKEN}"}
PUBLIC = "https://fake.example/sandbox/facebook"
GRAPH_ID = re.compile(r"^[0-9]{15,}$")
POST_ID = re.compile(rf"^{PAGE}_[0-9]{{15,}}$")


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServer]:
    server = MediaServer(Path(tmp_path_factory.mktemp("fb_fake_media")))
    yield server
    server.close()


@pytest.fixture
async def fake() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_facebook_fake(public_url=PUBLIC))
    async with httpx.AsyncClient(transport=transport, base_url="http://fake.test") as http:
        yield http


def assert_graph_error(response: httpx.Response, code: int, subcode: int | None = None) -> str:
    """The Graph envelope: message, type, code, [error_subcode], fbtrace_id; the message back."""
    error = response.json()["error"]
    assert error["code"] == code and error.get("error_subcode") == subcode, error
    assert set(error) <= {"message", "type", "code", "error_subcode", "fbtrace_id"}
    assert error["message"] and error["type"] and error["fbtrace_id"]
    return str(error["message"])


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


async def feed(http: httpx.AsyncClient, **form: Any) -> httpx.Response:
    return await http.post(f"/v25.0/{PAGE}/feed", data=form, headers=AUTH)


async def photo(http: httpx.AsyncClient, url: str, published: bool = False) -> dict[str, Any]:
    form = {"url": url, "published": str(published).lower()}
    response = await http.post(f"/v25.0/{PAGE}/photos", data=form, headers=AUTH)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_text_post_shape_and_usage_headers(fake: httpx.AsyncClient) -> None:
    response = await feed(fake, message="Hello Facebook")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id"} and POST_ID.match(body["id"])
    usage = json.loads(response.headers["x-app-usage"])
    assert set(usage) == {"call_count", "total_cputime", "total_time"}
    [entry] = json.loads(response.headers["x-business-use-case-usage"])[PAGE]
    assert entry["type"] == "pages" and "estimated_time_to_regain_access" in entry
    asked = await fake.post(
        f"/v25.0/{PAGE}/feed", params={"fields": "id,permalink_url"}, data={"message": "Two"},
        headers=AUTH,
    )  # fmt: skip
    local = asked.json()["id"].partition("_")[2]
    assert asked.json()["permalink_url"] == f"{PUBLIC}/{PAGE}/posts/{local}"
    page = await fake.get(f"/{PAGE}/posts/{local}")
    assert page.status_code == 200 and "Two" in page.text
    assert (await fake.get(f"/{PAGE}/posts/1")).status_code == 404


async def test_token_forms_versions_and_params(fake: httpx.AsyncClient) -> None:
    calls = [
        fake.post(f"/v25.0/{PAGE}/feed", params={"access_token": TOKEN, "message": "query"}),
        fake.post(f"/v19.0/{PAGE}/feed", data={"access_token": TOKEN, "message": "form"}),
        fake.post(f"/v25.0/{PAGE}/feed", json={"access_token": TOKEN, "message": "json"}),
        fake.post(f"/v25.0/{PAGE}/feed", data={"message": "bearer"},
                  headers={"Authorization": f"Bearer {TOKEN}"}),
    ]  # fmt: skip
    for call in calls:
        response = await call
        assert response.status_code == 200 and POST_ID.match(response.json()["id"])
    missing = await fake.post(f"/v25.0/{PAGE}/feed", data={"message": "no token"})
    assert missing.status_code == 400 and assert_graph_error(missing, 2500)
    unversioned = await fake.post(f"/v25/{PAGE}/feed", data={"message": "x"}, headers=AUTH)
    assert "Unknown path components" in assert_graph_error(unversioned, 2500)
    other_page = await fake.post("/v25.0/999/feed", data={"message": "x"}, headers=AUTH)
    assert other_page.status_code == 403 and assert_graph_error(other_page, 200)


async def test_text_limit_and_empty_posts(fake: httpx.AsyncClient) -> None:
    assert (await feed(fake, message="a" * 63_206)).status_code == 200
    too_long = await feed(fake, message="b" * 63_207)
    assert too_long.status_code == 400 and assert_graph_error(too_long, 100)
    assert_graph_error(await feed(fake), 100)


async def test_duplicate_status_is_506(fake: httpx.AsyncClient) -> None:
    assert (await feed(fake, message="Same")).status_code == 200
    again = await feed(fake, message="Same")
    assert again.status_code == 400
    assert assert_graph_error(again, 506) == "Duplicate status message"


async def test_photos_published_and_not(fake: httpx.AsyncClient, media: MediaServer) -> None:
    published = await photo(fake, media.url("img1.jpg"), published=True)
    assert set(published) == {"id", "post_id"} and GRAPH_ID.match(published["id"])
    assert POST_ID.match(published["post_id"])
    unpublished = await photo(fake, media.url("img2.png"))
    assert set(unpublished) == {"id"} and GRAPH_ID.match(unpublished["id"])
    files = {"source": ("a.png", png(), "image/png")}
    sent = await fake.post(f"/v25.0/{PAGE}/photos", data={"published": "false"}, files=files,
                           headers=AUTH)  # fmt: skip
    assert sent.status_code == 200 and set(sent.json()) == {"id"}
    missing = await fake.post(f"/v25.0/{PAGE}/photos", data={"published": "true"}, headers=AUTH)
    assert assert_graph_error(missing, 324)
    for name in ("page.html", "nothing.jpg"):  # a web page, a 404: Facebook cannot use either
        response = await fake.post(
            f"/v25.0/{PAGE}/photos", data={"url": media.url(name)}, headers=AUTH
        )
        assert response.status_code == 400 and assert_graph_error(response, 324)
    await fake.post("/_config", json={"fetch_media": False})
    assert (await photo(fake, "https://nowhere.invalid/x.jpg"))["id"]
    posts = (await fake.get("/_inspect/posts")).json()["posts"]
    assert [(p["id"], [m["kind"] for m in p["media"]]) for p in posts] == [
        (published["post_id"], ["photo"])
    ]


async def test_attached_media(fake: httpx.AsyncClient) -> None:
    await fake.post("/_config", json={"fetch_media": False})
    ids = [(await photo(fake, f"https://media.example/{n}.jpg"))["id"] for n in range(4)]
    form = {f"attached_media[{i}]": json.dumps({"media_fbid": m}) for i, m in enumerate(ids[:2])}
    indexed = await feed(fake, message="Form album", **form)
    assert indexed.status_code == 200 and POST_ID.match(indexed.json()["id"])
    body = {"message": "JSON album", "attached_media": [{"media_fbid": m} for m in ids[2:]]}
    as_json = await fake.post(f"/v25.0/{PAGE}/feed", json=body, headers=AUTH)
    assert as_json.status_code == 200
    reused = await feed(fake, message="Again", **form)  # each photo attaches once only
    assert "attached_media[0]" in assert_graph_error(reused, 100)
    unknown = await feed(fake, message="?", **{"attached_media[0]": '{"media_fbid":"42"}'})
    assert assert_graph_error(unknown, 100)
    many = [(await photo(fake, f"https://media.example/m{n}.jpg"))["id"] for n in range(11)]
    too_many = {f"attached_media[{i}]": json.dumps({"media_fbid": m}) for i, m in enumerate(many)}
    assert "at most 10" in assert_graph_error(await feed(fake, message="11", **too_many), 100)
    listed = await fake.get(
        f"/v25.0/{PAGE}/published_posts", params={"fields": "id,attachments"}, headers=AUTH
    )
    [newest, oldest] = listed.json()["data"]
    [album] = oldest["attachments"]["data"]
    assert album["media_type"] == "album"
    subs = [s["target"]["id"] for s in album["subattachments"]["data"]]
    assert subs == ids[:2] and newest["id"] == as_json.json()["id"]


async def test_video_states_and_publishing(fake: httpx.AsyncClient, media: MediaServer) -> None:
    await fake.post("/_config", json={"video_polls": 2, "video_seconds": None})
    form = {"file_url": media.url("clip.mp4"), "description": "Film", "published": "false"}
    created = await fake.post(f"/v25.0/{PAGE}/videos", data=form, headers=AUTH)
    assert created.status_code == 200 and set(created.json()) == {"id"}
    video_id = created.json()["id"]
    assert GRAPH_ID.match(video_id)
    states = []
    for _ in range(3):
        read = await fake.get(f"/v25.0/{video_id}", params={"fields": "status"}, headers=AUTH)
        status = read.json()["status"]
        assert {"video_status", "uploading_phase", "processing_phase", "publishing_phase"} <= set(
            status
        )
        states.append(status["video_status"])
    assert states == ["processing", "processing", "ready"]
    assert (await fake.get("/_inspect/posts")).json()["posts"] == []
    done = await fake.post(f"/v25.0/{video_id}", data={"published": "true"}, headers=AUTH)
    assert done.json() == {"success": True}
    fields = {"fields": "id,published,permalink_url"}
    node = (await fake.get(f"/v25.0/{video_id}", params=fields, headers=AUTH)).json()
    assert node == {"id": video_id, "published": True,
                    "permalink_url": f"/{PAGE}/videos/{video_id}/"}  # fmt: skip
    assert (await fake.get(f"/{PAGE}/videos/{video_id}/")).status_code == 200
    assert (await fake.get(f"/reel/{video_id}")).status_code == 200
    unknown = await fake.get(f"/v25.0/{video_id}", params={"fields": "nope"}, headers=AUTH)
    assert "nonexisting field (nope)" in assert_graph_error(unknown, 100)


async def test_video_errors(fake: httpx.AsyncClient, media: MediaServer) -> None:
    await fake.post("/_config", json={"video_seconds": None})  # status reads drive processing
    form = {"file_url": media.url("gone.mp4"), "published": "false"}
    video_id = (await fake.post(f"/v25.0/{PAGE}/videos", data=form, headers=AUTH)).json()["id"]
    status = (await fake.get(f"/v25.0/{video_id}?fields=status", headers=AUTH)).json()["status"]
    assert (status["video_status"], status["uploading_phase"]["status"]) == ("error", "error")
    await fake.post("/_faults", json={"on": "status", "error_code": "processing_failed"})
    form["file_url"] = media.url("clip.mp4")
    video_id = (await fake.post(f"/v25.0/{PAGE}/videos", data=form, headers=AUTH)).json()["id"]
    status = (await fake.get(f"/v25.0/{video_id}?fields=status", headers=AUTH)).json()["status"]
    assert (status["video_status"], status["processing_phase"]["status"]) == ("error", "error")
    refused = await fake.post(f"/v25.0/{video_id}", data={"published": "true"}, headers=AUTH)
    assert assert_graph_error(refused, 100)


@pytest.mark.parametrize(
    ("error_code", "status", "code", "subcode"),
    [
        ("rate_limited", 400, 4, None),
        ("user_rate_limited", 400, 17, None),
        ("page_rate_limited", 400, 32, None),
        ("token_expired", 400, 190, 463),
        ("token_invalid", 400, 190, 467),
        ("duplicate_content", 400, 506, None),
        ("permission_denied", 403, 200, None),
        ("server_error", 500, 1, None),
    ],
)
async def test_injected_faults_are_graph_errors(
    fake: httpx.AsyncClient, error_code: str, status: int, code: int, subcode: int | None
) -> None:
    fault = {"on": "publish", "error_code": error_code, "retry_after": 12, "user_id": PAGE}
    assert (await fake.post("/_faults", json=fault)).status_code == 201
    response = await feed(fake, message="Faulty")
    assert response.status_code == status and response.headers["retry-after"] == "12"
    assert_graph_error(response, code, subcode)
    assert (await feed(fake, message="Fine")).status_code == 200  # used up


async def test_faults_per_page_and_bad_specs(fake: httpx.AsyncClient) -> None:
    await fake.post("/_faults", json={"on": "any", "status": 503, "user_id": "other"})
    assert (await feed(fake, message="Not for me")).status_code == 200
    bad = await fake.post("/_faults", json={"on": "photo", "accept_then_delay": 1})
    assert bad.status_code == 400 and assert_graph_error(bad, 100)
    await fake.post("/_faults", json={"on": "publish", "accept_then_delay": 0})
    assert (await feed(fake, message="Accepted")).status_code == 200


async def test_page_rate_limit(fake: httpx.AsyncClient) -> None:
    await fake.post("/_config", json={"rate_limit": 1})
    assert (await feed(fake, message="One")).status_code == 200
    limited = await feed(fake, message="Two")
    assert limited.status_code == 400 and assert_graph_error(limited, 80001)
    [entry] = json.loads(limited.headers["x-business-use-case-usage"])[PAGE]
    assert entry["call_count"] == 100 and entry["estimated_time_to_regain_access"] >= 1


async def test_listing_since_limit_and_paging(fake: httpx.AsyncClient) -> None:
    ids = [(await feed(fake, message=f"Post {n}")).json()["id"] for n in range(3)]
    params = {"fields": "id,message,created_time,permalink_url", "limit": "2"}
    first = (await fake.get(f"/v25.0/{PAGE}/published_posts", params=params, headers=AUTH)).json()
    assert [p["id"] for p in first["data"]] == ids[:0:-1]  # newest first
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$", first["data"][0]["created_time"])
    params["after"] = first["paging"]["cursors"]["after"]
    assert first["paging"]["next"].startswith(f"{PUBLIC}/v25.0/{PAGE}/published_posts?")
    second = (await fake.get(f"/v25.0/{PAGE}/feed", params=params, headers=AUTH)).json()
    assert [p["id"] for p in second["data"]] == ids[:1] and "next" not in second["paging"]
    later = {"since": "4102444800"}  # 2100-01-01
    empty = (await fake.get(f"/v25.0/{PAGE}/published_posts", params=later, headers=AUTH)).json()
    assert empty == {"data": []}
    missing = await fake.get("/v25.0/123_456", headers=AUTH)
    assert "Unsupported get request" in assert_graph_error(missing, 100, 33)


async def test_me_accounts_lists_registered_pages(fake: httpx.AsyncClient) -> None:
    body = {"id": PAGE, "name": "Soku Page", "user_token": "user-token"}
    registered = (await fake.post("/_pages", json=body)).json()
    assert registered["id"] == PAGE and registered["access_token"]
    auth = {"Authorization": "OAuth user-token"}
    listed = (await fake.get("/v25.0/me/accounts", headers=auth)).json()["data"]
    [entry] = listed
    assert (entry["id"], entry["name"]) == (PAGE, "Soku Page")
    assert "CREATE_CONTENT" in entry["tasks"] and entry["access_token"]
    new_auth = {"Authorization": f"OAuth {entry['access_token']}"}
    posted = await fake.post(f"/v25.0/{PAGE}/feed", data={"message": "hi"}, headers=new_auth)
    assert posted.status_code == 200


async def test_me_accounts_pages_by_cursor(fake: httpx.AsyncClient) -> None:
    pages = [str(1000 + n) for n in range(5)]
    for page in pages:
        body = {"id": page, "name": f"Page {page}", "user_token": "user-token"}
        assert (await fake.post("/_pages", json=body)).status_code == 201
    auth = {"Authorization": "OAuth user-token"}
    first = (await fake.get("/v25.0/me/accounts", params={"limit": "2"}, headers=auth)).json()
    assert [entry["id"] for entry in first["data"]] == pages[:2]
    assert first["paging"]["next"].startswith(f"{PUBLIC}/v25.0/me/accounts?")
    assert "user-token" not in first["paging"]["next"]
    listed, after = [entry["id"] for entry in first["data"]], first["paging"]["cursors"]["after"]
    while after:
        params = {"limit": "2", "after": after}
        answer = (await fake.get("/v25.0/me/accounts", params=params, headers=auth)).json()
        listed += [entry["id"] for entry in answer["data"]]
        after = answer["paging"]["cursors"]["after"] if "next" in answer["paging"] else None
    assert listed == pages
    everything = (await fake.get("/v25.0/me/accounts", headers=auth)).json()
    assert len(everything["data"]) == 5 and "next" not in everything["paging"]  # 25 by default
    too_many = await fake.get("/v25.0/me/accounts", params={"limit": "101"}, headers=auth)
    assert "limit" in assert_graph_error(too_many, 100)
    assert (await fake.post("/_config", json={"padding": {"accounts": 10}})).status_code == 200
    padded = (await fake.get("/v25.0/me/accounts", headers=auth)).json()
    assert padded["padding"] == "x" * 10 and len(padded["data"]) == 5


async def test_inspect_and_reset(fake: httpx.AsyncClient) -> None:
    post_id = (await feed(fake, message="Look")).json()["id"]
    [post] = (await fake.get("/_inspect/posts")).json()["posts"]
    assert (post["id"], post["page"], post["text"], post["media"]) == (post_id, PAGE, "Look", [])
    assert post["url"] == f"{PUBLIC}/{PAGE}/posts/{post_id.partition('_')[2]}"
    assert (await fake.get(f"/{post_id}")).status_code == 200
    assert (await fake.get("/_inspect/calls")).json()["publish"] == 1
    assert (await fake.delete("/_inspect")).status_code == 204
    assert (await fake.get("/_inspect/posts")).json() == {"posts": []}


async def test_made_up_tokens_and_page_ids_are_adopted(fake: httpx.AsyncClient) -> None:
    auth = {"Authorization": "OAuth sbx-token-1"}
    form = {"message": "Sandbox"}
    created = await fake.post("/v25.0/sbx_page_1/feed", data=form, headers=auth)
    post_id = created.json()["id"]
    assert re.fullmatch(r"sbx_page_1_[0-9]{15,}", post_id)
    [post] = (await fake.get("/_inspect/posts")).json()["posts"]
    assert post["page"] == "sbx_page_1"
    assert (await fake.get(post["url"].removeprefix(PUBLIC))).status_code == 200
    read = await fake.get(f"/v25.0/{post_id}", params={"fields": "message"}, headers=auth)
    assert read.json() == {"id": post_id, "message": "Sandbox"}


async def test_a_video_processes_in_the_background(
    fake: httpx.AsyncClient, media: MediaServer
) -> None:
    """Published at upload, a video's post appears once Facebook has processed it, whether
    or not anyone reads its status."""
    await fake.post("/_config", json={"video_seconds": 0.3})
    form = {"file_url": media.url("clip.mp4"), "description": "Background", "published": "true"}
    video_id = (await fake.post(f"/v25.0/{PAGE}/videos", data=form, headers=AUTH)).json()["id"]
    assert (await fake.get("/_inspect/posts")).json()["posts"] == []
    await asyncio.sleep(0.4)
    [post] = (await fake.get("/_inspect/posts")).json()["posts"]
    assert post["text"] == "Background" and post["media"][0]["id"] == video_id
