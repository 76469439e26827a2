"""The Templates API: every template drawn at every size and stored as media, both paths,
the checks on the body and config, idempotency, and the listing; on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from soku.context import AppContext
from soku.templates import pictures
from soku.templates.catalog import ASPECT_SIZES, TEMPLATES
from tests.api.helpers import assert_error, reasons
from tests.conftest import Caller, make_caller
from tests.media_files import MediaServer

pytestmark = pytest.mark.asyncio
CONFIGS = {
    "og-blog-post": {
        "title": "Webhooks, signed and retried",
        "subtitle": "An outbox",
        "author": "Ada",
        "siteName": "soku.dev",
    },
    "tweetImage": {"text": "Eight platforms, one call. " * 8, "name": "Ada", "handle": "@ada"},
    "quote": {"quote": "Simplicity is prerequisite for reliability.", "attribution": "Dijkstra"},
}


async def render(
    client: httpx.AsyncClient, caller: Caller, path: str = "/v1/templates", **body: Any
) -> httpx.Response:
    return await client.post(path, json=body, headers=caller.headers)


async def stored_image(client: httpx.AsyncClient, url: str) -> Image.Image:
    response = await client.get(urlsplit(url).path)  # the stored file, served by this app
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(response.content))


@pytest.mark.parametrize("slug", list(TEMPLATES))
@pytest.mark.parametrize("aspect", [None, *ASPECT_SIZES])
async def test_every_template_at_every_size(
    client: httpx.AsyncClient, caller: Caller, slug: str, aspect: str | None
) -> None:
    body: dict[str, Any] = {"templateSlug": slug, "config": CONFIGS[slug]}
    if aspect:
        body["aspectRatio"] = aspect
    response = await render(client, caller, **body)
    assert response.status_code == 201, response.text
    media = response.json()
    size = ASPECT_SIZES[aspect] if aspect else TEMPLATES[slug].size
    assert (media["kind"], media["contentType"]) == ("image", "image/png")
    assert (media["width"], media["height"]) == size
    image = await stored_image(client, media["url"])
    assert image.size == size and image.format == "PNG"
    assert len(image.convert("L").getcolors() or []) > 2  # text was drawn, not a flat canvas
    shown = await client.get(f"/v1/media/{media['id']}", headers=caller.headers)
    assert shown.json()["id"] == media["id"]  # the user's own media, as an upload is


async def test_themes_and_colours_change_the_image(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    def body(**style: str) -> dict[str, Any]:
        return {"templateSlug": "quote", "config": {**CONFIGS["quote"], **style}}

    light = (await render(client, caller, **body())).json()
    dark = (await render(client, caller, **body(theme="dark"))).json()
    red = (await render(client, caller, **body(accentColor="#FF0000"))).json()
    assert len({light["sha256"], dark["sha256"], red["sha256"]}) == 3
    corner = (await stored_image(client, dark["url"])).convert("RGB").getpixel((2, 2))
    assert corner == (15, 23, 42)  # the dark theme's background
    reds = (await stored_image(client, red["url"])).convert("RGB").getcolors(1 << 20) or []
    assert any(colour == (255, 0, 0) for _count, colour in reds)


async def test_the_alias_path_and_idempotency(client: httpx.AsyncClient, caller: Caller) -> None:
    body = {"templateSlug": "og-blog-post", "config": {"title": f"Same {uuid.uuid4()}"}}
    first = await render(client, caller, **body)
    again = await render(client, caller, "/v1/media/render-og", **body)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content  # the stored answer: no second media row
    key = {"Idempotency-Key": f"tpl-{uuid.uuid4()}"}
    keyed = await client.post("/v1/templates", json=body, headers={**caller.headers, **key})
    assert keyed.status_code == 201 and keyed.json()["id"] != first.json()["id"]
    other = {**body, "config": {"title": "Another"}}
    clash = await client.post("/v1/templates", json=other, headers={**caller.headers, **key})
    assert_error(clash, 409, "idempotency_conflict")


def quote(aspect: str | None = None, **config: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"templateSlug": "quote", "config": config}
    return {**body, "aspectRatio": aspect} if aspect else body


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"templateSlug": "nope", "config": {}}, "templateSlug", "invalid_value"),
        (quote(), "config.quote", "required"),
        (quote(quote="  "), "config.quote", "required"),
        (quote(quote=3), "config.quote", "invalid_type"),
        (quote(quote="x" * 501), "config.quote", "too_long"),
        (quote(quote="x", title="y"), "config.title", "unknown_field"),
        (quote(quote="x", theme="blue"), "config.theme", "invalid_value"),
        (quote(quote="x", accentColor="red"), "config.accentColor", "invalid_value"),
        (quote("16:9", quote="x"), "aspectRatio", "invalid_value"),
        ({"templateSlug": "quote", "config": []}, "config", "invalid_type"),
        ({"config": {"quote": "x"}}, "templateSlug", "required"),
        ({**quote(quote="x"), "size": 3}, "size", "unknown_field"),
    ],
)
async def test_bad_bodies_are_validation_errors(
    client: httpx.AsyncClient, caller: Caller, body: dict[str, Any], field: str, reason: str
) -> None:
    error = assert_error(await render(client, caller, **body), 400, "validation_error")
    assert (field, reason) in reasons(error), error


async def test_all_config_problems_at_once(client: httpx.AsyncClient, caller: Caller) -> None:
    body = {"templateSlug": "tweetImage", "config": {"theme": "sepia", "extra": "1"}}
    error = assert_error(await render(client, caller, **body), 400, "validation_error")
    assert reasons(error) == {
        ("config.extra", "unknown_field"),
        ("config.text", "required"),
        ("config.theme", "invalid_value"),
    }


async def test_listing_describes_every_template(client: httpx.AsyncClient, caller: Caller) -> None:
    response = await client.get("/v1/templates", headers=caller.headers)
    assert response.status_code == 200
    listed = {t["slug"]: t for t in response.json()["data"]}
    assert set(listed) == set(TEMPLATES)
    og = listed["og-blog-post"]
    assert og["size"] == {"width": 1200, "height": 630}
    assert og["aspectRatios"] == ["1:1", "4:5", "9:16"]
    title = next(p for p in og["parameters"] if p["name"] == "title")
    assert (title["required"], title["maxLength"]) == (True, 200)
    theme = next(p for p in og["parameters"] if p["name"] == "theme")
    assert (theme["choices"], theme["default"]) == (["light", "dark"], "light")
    assert_error(await client.get("/v1/templates"), 401, "unauthorized")


async def test_rendering_has_its_own_rate_limit(
    client: httpx.AsyncClient, backend: AppContext
) -> None:
    caller = await make_caller(backend, plan="standard", accounts=[])
    body = {"templateSlug": "quote", "config": {"quote": "Limits"}}
    answers = [await render(client, caller, **body) for _ in range(21)]
    assert [a.status_code for a in answers[:20]] == [201] * 20  # one rendering, then replays
    error = assert_error(answers[20], 429, "rate_limit_exceeded")
    assert answers[20].headers["retry-after"]
    assert error["message"]


AVATAR_CENTRE = (210, 210)  # tweetImage at 1080: the picture's circle at (150, 150), side 120


def near(found: Any, wanted: tuple[int, int, int], slack: int = 12) -> bool:
    return all(abs(a - b) <= slack for a, b in zip(found, wanted, strict=True))


async def test_avatar_from_own_stored_media(client: httpx.AsyncClient, caller: Caller) -> None:
    picture = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 30, 40)).save(picture, "PNG")
    files = {"file": ("me.png", picture.getvalue(), "image/png")}
    uploaded = await client.post("/v1/media/upload", files=files, headers=caller.headers)
    assert uploaded.status_code == 201, uploaded.text
    config = {"text": "With my picture", "name": "Ada", "avatar": uploaded.json()["url"]}
    response = await render(client, caller, templateSlug="tweetImage", config=config)
    assert response.status_code == 201, response.text
    image = (await stored_image(client, response.json()["url"])).convert("RGB")
    assert near(image.getpixel(AVATAR_CENTRE), (200, 30, 40))
    without = {**config, "avatar": None}
    plain = await render(client, caller, templateSlug="tweetImage", config=without)
    image = (await stored_image(client, plain.json()["url"])).convert("RGB")
    assert near(image.getpixel((160, 210)), (37, 99, 235))  # initials on the accent colour


async def test_avatar_fetched_like_a_media_url(
    client: httpx.AsyncClient, caller: Caller, media_server: MediaServer
) -> None:
    config = {"title": "Fetched", "author": "Ada", "avatar": media_server.url("img2.png")}
    response = await render(client, caller, templateSlug="og-blog-post", config=config)
    assert response.status_code == 201, response.text
    image = (await stored_image(client, response.json()["url"])).convert("RGB")
    side = 630 // 22 * 2  # the byline's picture, bottom left
    assert near(image.getpixel((80 + side // 2, 630 - 80 - side // 2)), (80, 100, 200))


async def test_avatar_problems_are_upload_failed(
    client: httpx.AsyncClient, caller: Caller, backend: AppContext, media_server: MediaServer
) -> None:
    def tweet(avatar: str) -> dict[str, Any]:
        return {"templateSlug": "tweetImage", "config": {"text": "x", "avatar": avatar}}

    video = assert_error(
        await render(client, caller, **tweet(media_server.url("clip.mp4"))), 400, "upload_failed"
    )
    assert video["details"]["reason"] == "unsupported_format"
    page = assert_error(
        await render(client, caller, **tweet(media_server.url("page.html"))), 400, "upload_failed"
    )
    assert page["details"]["url"] == media_server.url("page.html")
    missing = assert_error(
        await render(client, caller, **tweet(media_server.url("gone.png"))), 400, "upload_failed"
    )
    assert "404" in missing["message"]
    other = await make_caller(backend, accounts=[])
    picture = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(picture, "PNG")
    files = {"file": ("p.png", picture.getvalue(), "image/png")}
    theirs = (await client.post("/v1/media/upload", files=files, headers=other.headers)).json()
    refused = assert_error(
        await render(client, caller, **tweet(theirs["url"])), 400, "upload_failed"
    )
    assert refused["details"]["reason"] == "not_found"
    bad = assert_error(
        await render(client, caller, **tweet("file:///etc/passwd")), 400, "validation_error"
    )
    assert ("config.avatar", "invalid_url") in reasons(bad)


def hostile_pictures(folder: Path) -> None:
    """A PNG whose IHDR is cut short (Pillow raises ValueError, not OSError) and a PNG of
    5000x4000 pixels that is a few kilobytes on disk."""
    picture = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(picture, "PNG")
    broken = bytearray(picture.getvalue())
    broken[11] = 12  # the IHDR chunk's length: 13 bytes, said to be 12
    (folder / "broken.png").write_bytes(bytes(broken))
    Image.new("L", (5000, 4000)).save(folder / "huge.png", optimize=True)


async def test_hostile_pictures_are_upload_failed(
    client: httpx.AsyncClient, caller: Caller, tmp_path: Path
) -> None:
    hostile_pictures(tmp_path)
    server = MediaServer(tmp_path)
    try:
        for name, words in (("broken.png", "IHDR"), ("huge.png", "5000x4000")):
            config = {"text": "x", "name": "Ada", "avatar": server.url(name)}
            response = await render(client, caller, templateSlug="tweetImage", config=config)
            error = assert_error(response, 400, "upload_failed")
            assert error["details"]["reason"] == "unsupported_format"
            assert words in error["message"]
    finally:
        server.close()


async def test_own_stored_media_that_cannot_be_a_picture(
    client: httpx.AsyncClient,
    caller: Caller,
    media_server: MediaServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    video = await client.post(
        "/v1/media", json={"url": media_server.url("clip.mp4")}, headers=caller.headers
    )
    assert video.status_code == 201, video.text
    body = {"templateSlug": "tweetImage", "config": {"text": "x", "avatar": video.json()["url"]}}
    error = assert_error(await render(client, caller, **body), 400, "upload_failed")
    assert (error["details"]["reason"], error["message"]) == (
        "unsupported_format",
        f"{video.json()['url']} is not an image.",
    )
    image = await client.post(
        "/v1/media", json={"url": media_server.url("img1.jpg")}, headers=caller.headers
    )
    monkeypatch.setattr(pictures, "MAX_PICTURE_BYTES", image.json()["bytes"] - 1)
    body = {"templateSlug": "tweetImage", "config": {"text": "y", "avatar": image.json()["url"]}}
    error = assert_error(await render(client, caller, **body), 400, "upload_failed")
    assert error["details"]["reason"] == "too_large"


async def test_a_16_bit_grey_avatar_keeps_its_grey(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    deep = Image.new("I;16", (64, 64))
    deep.putdata([30000] * 64 * 64)  # 46 % grey in 16 bits: 116 in 8
    picture = io.BytesIO()
    deep.save(picture, "PNG")
    files = {"file": ("grey16.png", picture.getvalue(), "image/png")}
    uploaded = await client.post("/v1/media/upload", files=files, headers=caller.headers)
    assert uploaded.status_code == 201, uploaded.text
    config = {"text": "Grey", "name": "Ada", "avatar": uploaded.json()["url"]}
    response = await render(client, caller, templateSlug="tweetImage", config=config)
    assert response.status_code == 201, response.text
    image = (await stored_image(client, response.json()["url"])).convert("RGB")
    assert near(image.getpixel(AVATAR_CENTRE), (116, 116, 116))
