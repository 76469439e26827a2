"""The Instagram fake's contract, checked against instagram.md over real HTTP: paths, params,
shapes, states, the refusals of the error table, the sign-in, and the knobs.

A fake that drifts from the Instagram API fails here, before the connector is fooled by it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from soku.sandbox.instagram import create_instagram_fake
from tests.asgi_server import serving
from tests.media_files import MediaServer, write_image
from tests.sandbox.graph_calls import AUTH, TIMESTAMP, TOKEN, GraphCalls, graph_error


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MediaServer, Path]]:
    folder = tmp_path_factory.mktemp("instagram_fake_media")
    server = MediaServer(folder)
    write_image(folder / "wide.jpg", (1, 2, 3), size=(400, 100))
    write_image(folder / "tall.jpg", (1, 2, 3), size=(100, 400))
    yield server, folder
    server.close()


@pytest.fixture(scope="module")
async def served() -> AsyncIterator[str]:
    async with serving(create_instagram_fake()) as url:
        yield url


@pytest.fixture
async def fake(served: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served, timeout=10) as http:
        assert (await http.delete("/_inspect")).status_code == 204
        yield http


def url_of(media: tuple[MediaServer, Path], name: str) -> str:
    return media[0].url(name)


CALLS = GraphCalls("/v25.0", "media", "media_publish", "id,status_code,status")
create, container, status, publish = CALLS.create, CALLS.container, CALLS.status, CALLS.publish


async def test_an_image_then_publish_and_its_permalink(
    fake: httpx.AsyncClient, media: tuple[MediaServer, Path]
) -> None:
    made = await container(fake, image_url=url_of(media, "img1.jpg"), caption="Hi #sandbox")
    assert await status(fake, made) == {"id": made, "status_code": "FINISHED", "status": "Finished"}
    published = await publish(fake, made)
    assert published.status_code == 200, published.text
    media_id = published.json()["id"]
    fields = "id,caption,media_type,media_product_type,permalink,timestamp,shortcode"
    got = await fake.get(f"/v25.0/{media_id}", params={"fields": fields}, headers=AUTH)
    body = got.json()
    assert (body["caption"], body["media_type"], body["media_product_type"]) == (
        "Hi #sandbox",
        "IMAGE",
        "FEED",
    )
    assert TIMESTAMP.match(body["timestamp"]) and body["permalink"].endswith(
        f"/p/{body['shortcode']}/"
    )
    page = await fake.get(body["permalink"])
    assert page.status_code == 200 and "Hi #sandbox" in page.text
    assert (await status(fake, made))["status_code"] == "PUBLISHED"
    graph_error(await publish(fake, made), 400, 24, 2207006)  # published once only


async def test_a_reel_is_processed_before_it_can_be_published(
    fake: httpx.AsyncClient, media: tuple[MediaServer, Path]
) -> None:
    await fake.post("/_config", json={"video_polls": 2})
    made = await container(fake, media_type="REELS", video_url=url_of(media, "clip.mp4"))
    graph_error(await publish(fake, made), 400, 9007, 2207027)  # not ready yet
    assert (await status(fake, made))["status_code"] == "IN_PROGRESS"
    assert (await status(fake, made))["status_code"] == "IN_PROGRESS"
    assert (await status(fake, made))["status_code"] == "FINISHED"
    media_id = (await publish(fake, made)).json()["id"]
    fields = {"fields": "media_type,media_product_type,permalink"}
    got = await fake.get(f"/v25.0/{media_id}", params=fields, headers=AUTH)
    assert (got.json()["media_type"], got.json()["media_product_type"]) == ("VIDEO", "REELS")
    assert "/reel/" in got.json()["permalink"]


async def test_a_video_it_cannot_fetch_or_read_ends_in_error(
    fake: httpx.AsyncClient, media: tuple[MediaServer, Path]
) -> None:
    await fake.post("/_config", json={"video_polls": 0})
    gone = await container(fake, media_type="REELS", video_url=url_of(media, "missing.mp4"))
    assert (await status(fake, gone))["status_code"] == "ERROR"
    assert "2207052" in (await status(fake, gone))["status"]
    page = await container(fake, media_type="REELS", video_url=url_of(media, "page.html"))
    assert "2207026" in (await status(fake, page))["status"]


async def test_a_carousel(fake: httpx.AsyncClient, media: tuple[MediaServer, Path]) -> None:
    await fake.post("/_config", json={"video_polls": 0})
    image = await container(fake, image_url=url_of(media, "img1.jpg"), is_carousel_item="true")
    video = await container(
        fake, media_type="VIDEO", video_url=url_of(media, "clip.mp4"), is_carousel_item="true"
    )
    album = await container(fake, media_type="CAROUSEL", children=f"{image},{video}", caption="Two")
    graph_error(await publish(fake, image), 400, 100)  # an item goes out with its carousel
    assert (await publish(fake, album)).status_code == 200
    [post] = (await fake.get("/_inspect/posts")).json()["posts"]
    assert [m["kind"] for m in post["media"]] == ["IMAGE", "VIDEO"]
    assert post["media_type"] == "CAROUSEL" and post["caption"] == "Two"


async def test_carousel_rules(fake: httpx.AsyncClient, media: tuple[MediaServer, Path]) -> None:
    one = await container(fake, image_url=url_of(media, "img1.jpg"), is_carousel_item="true")
    graph_error(await create(fake, media_type="CAROUSEL", children=one), 400, 100, 2207028)
    eleven = ",".join([one] * 11)
    graph_error(await create(fake, media_type="CAROUSEL", children=eleven), 400, 100, 2207028)
    clip = url_of(media, "clip.mp4")
    reel_item = await create(fake, media_type="REELS", video_url=clip, is_carousel_item="true")
    graph_error(reel_item, 400, 100)  # reels are not carousel items
    captioned = await create(
        fake, image_url=url_of(media, "img1.jpg"), is_carousel_item="true", caption="no"
    )
    graph_error(captioned, 400, 100)


async def test_images_instagram_refuses(
    fake: httpx.AsyncClient, media: tuple[MediaServer, Path]
) -> None:
    cases = {
        "img2.png": (36001, 2207005),  # JPEG only
        "page.html": (36001, 2207005),
        "wide.jpg": (36003, 2207009),  # 4:1
        "tall.jpg": (36003, 2207009),  # 1:4
        "missing.jpg": (9004, 2207052),
    }
    for name, (code, subcode) in cases.items():
        graph_error(await create(fake, image_url=url_of(media, name)), 400, code, subcode)
    await fake.post("/_config", json={"max_image_bytes": 100})
    graph_error(await create(fake, image_url=url_of(media, "img1.jpg")), 400, 36000, 2207004)
    await fake.post("/_config", json={"jpeg_only": False, "max_image_bytes": 10**6})
    assert (await create(fake, image_url=url_of(media, "img2.png"))).status_code == 200


async def test_captions_instagram_refuses(
    fake: httpx.AsyncClient, media: tuple[MediaServer, Path]
) -> None:
    image = url_of(media, "img1.jpg")
    graph_error(await create(fake, image_url=image, caption="x" * 2201), 400, 36004, 2207010)
    mentions = " ".join(f"@user{n}" for n in range(21))
    graph_error(await create(fake, image_url=image, caption=mentions), 400, 100, 2207040)
    tags = " ".join(f"#tag{n}" for n in range(31))
    graph_error(await create(fake, image_url=image, caption=tags), 400, 100, 2207040)
    await fake.post("/_config", json={"max_hashtags": 5})  # what one third-party page says
    six = " ".join(f"#tag{n}" for n in range(6))
    graph_error(await create(fake, image_url=image, caption=six), 400, 100, 2207040)


async def test_bad_requests_get_the_graph_envelope(fake: httpx.AsyncClient) -> None:
    graph_error(await create(fake, media_type="GIF", image_url="http://x/y.gif"), 400, 100, 2207023)
    graph_error(await create(fake, media_type="REELS"), 400, 100)  # no video_url
    graph_error(await create(fake, media_type="VIDEO", video_url="http://x/y.mp4"), 400, 100)
    graph_error(await publish(fake, ""), 400, 100)
    graph_error(await publish(fake, "12345"), 400, 100, 33)
    graph_error(await fake.get("/v25.0/me/nothing/here", headers=AUTH), 400, 2500)
    graph_error(await fake.get("/v25.0/me"), 400, 2500)  # no token
    as_json = {**AUTH, "content-type": "application/json"}
    graph_error(await fake.post("/v25.0/me/media", content=b"{", headers=as_json), 400, 100)


async def test_listing_and_quota(fake: httpx.AsyncClient, media: tuple[MediaServer, Path]) -> None:
    await fake.post("/_config", json={"quota_total": 2})
    for caption in ("one", "two"):
        made = await container(fake, image_url=url_of(media, "img1.jpg"), caption=caption)
        assert (await publish(fake, made)).status_code == 200
    third = await container(fake, image_url=url_of(media, "img1.jpg"), caption="three")
    graph_error(await publish(fake, third), 400, 9, 2207042)
    limit = await fake.get(
        "/v25.0/me/content_publishing_limit", params={"fields": "quota_usage,config"}, headers=AUTH
    )
    assert limit.json() == {
        "data": [{"quota_usage": 2, "config": {"quota_total": 2, "quota_duration": 86400}}]
    }
    first = await fake.get(
        "/v25.0/me/media", params={"fields": "id,caption", "limit": "1"}, headers=AUTH
    )
    assert [m["caption"] for m in first.json()["data"]] == ["two"]  # newest first
    after = first.json()["paging"]["cursors"]["after"]
    rest = await fake.get(
        "/v25.0/me/media", params={"fields": "caption", "after": after}, headers=AUTH
    )
    assert [m["caption"] for m in rest.json()["data"]] == ["one"]
    later = await fake.get("/v25.0/me/media", params={"since": "4102444800"}, headers=AUTH)
    assert later.json() == {"data": []}


async def test_tokens_refresh_and_faults(fake: httpx.AsyncClient) -> None:
    await fake.post("/_users", json={"username": "old", "access_token": "old", "expires_in": 0})
    graph_error(await fake.get("/v25.0/me", headers={"Authorization": "Bearer old"}), 400, 190, 463)
    params = {"grant_type": "ig_refresh_token", "access_token": TOKEN}
    fresh = await fake.get("/refresh_access_token", params=params)
    assert fresh.json()["token_type"] == "bearer" and fresh.json()["expires_in"] == 5183944
    wrong = await fake.get("/refresh_access_token", params={**params, "grant_type": "x"})
    graph_error(wrong, 400, 100)
    await fake.post(
        "/_faults", json={"on": "create", "error_code": "rate_limited", "retry_after": 9}
    )
    limited = await create(fake, image_url="http://127.0.0.1:9/a.jpg")
    graph_error(limited, 400, 4)
    assert limited.headers["retry-after"] == "9"
    await fake.post("/_faults", json={"on": "publish", "error_code": "publishing_limit"})
    graph_error(await publish(fake, "1"), 400, 9, 2207042)
    await fake.post("/_faults", json={"on": "publish", "error_code": "restricted"})
    graph_error(await publish(fake, "1"), 400, 4, 2207051)
    assert (await fake.get("/_inspect/calls")).json()["publish"] == 2


@pytest.mark.parametrize("shape", ["nested", "flat"])
async def test_sign_in(fake: httpx.AsyncClient, shape: str) -> None:
    await fake.post("/_config", json={"token_answer": shape})
    query = {
        "client_id": "app", "redirect_uri": "https://soku.test/cb", "response_type": "code",
        "scope": "instagram_business_basic,instagram_business_content_publish", "state": "s1",
    }  # fmt: skip
    page = await fake.get("/oauth/authorize", params=query)
    assert page.status_code == 200 and "Instagram" in page.text
    allowed = await fake.post(
        "/oauth/authorize", data={**query, "login": "shop.ig", "decision": "allow"}
    )
    assert allowed.status_code == 303
    code = re.search(r"code=([^&]+)", allowed.headers["location"])
    assert code and "state=s1" in allowed.headers["location"]
    form = {"client_id": "app", "client_secret": "secret", "grant_type": "authorization_code",
            "redirect_uri": "https://soku.test/cb", "code": code[1]}  # fmt: skip
    answer = (await fake.post("/oauth/access_token", data=form)).json()
    row = answer["data"][0] if shape == "nested" else answer
    assert set(row) == {"access_token", "user_id", "permissions"}
    graph_error(await fake.post("/oauth/access_token", data=form), 400, 100, 36009)  # used once
    exchange = {"grant_type": "ig_exchange_token", "client_secret": "secret",
                "access_token": row["access_token"]}  # fmt: skip
    lasting = (await fake.get("/access_token", params=exchange)).json()
    assert lasting["expires_in"] == 5183944
    me = await fake.get(
        "/v25.0/me",
        params={"fields": "user_id,username"},
        headers={"Authorization": f"Bearer {lasting['access_token']}"},
    )
    assert me.json()["username"] == "shop.ig" and me.json()["user_id"] == str(row["user_id"])
