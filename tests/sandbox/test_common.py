"""What the fakes share: fetching media as Meta's platforms do, within the allowed origin."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from soku.platforms import INTEGRATIONS
from soku.sandbox.common import fetch_media
from tests.media_files import MediaServer


async def test_fetches_any_url_when_standalone(media_server: MediaServer) -> None:
    url = media_server.url("clip.mp4")
    got = await fetch_media(url, max_bytes=10**8, keep=True, public_url="")
    async with httpx.AsyncClient() as http:
        expected = (await http.get(url)).content
    assert got.ok and got.size == len(expected) and got.data == expected
    assert got.sha256 == hashlib.sha256(expected).hexdigest()
    kept = await fetch_media(url, max_bytes=10**8, keep=False, public_url="")
    assert kept.ok and kept.data == b"" and kept.sha256 == got.sha256


async def test_a_mounted_fake_fetches_only_from_its_own_origin(media_server: MediaServer) -> None:
    url = media_server.url("img1.jpg")
    elsewhere = await fetch_media(
        url, max_bytes=10**8, keep=False, public_url="http://soku.example/sandbox/threads"
    )
    assert not elsewhere.ok and elsewhere.size == 0
    assert elsewhere.detail == "the sandbox fetches only this service's own media URLs"
    same = await fetch_media(
        url, max_bytes=10**8, keep=False, public_url=f"{media_server.base}/sandbox/threads"
    )
    assert same.ok and same.size > 0


async def test_refusals_say_why(media_server: MediaServer) -> None:
    too_big = await fetch_media(
        media_server.url("clip.mp4"), max_bytes=10, keep=True, public_url=""
    )
    assert (too_big.ok, too_big.detail) == (False, "the file is too large")
    missing = await fetch_media(
        media_server.url("nope.png"), max_bytes=10, keep=True, public_url=""
    )
    assert (missing.ok, missing.detail) == (False, "HTTP 404")
    other = await fetch_media("ftp://example.com/a.png", max_bytes=10, keep=True, public_url="")
    assert (other.ok, other.detail) == (False, "the URL is not an http(s) URL")


async def test_the_service_mounts_meta_fakes_that_fetch_only_its_own_media(
    media_server: MediaServer,
) -> None:
    """A Threads container made on the mounted fake with someone else's URL is refused."""
    public = "http://soku.example/sandbox/threads"
    app = INTEGRATIONS["threads"].create_sandbox(public, public)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://soku.example") as fake:
        params = {"media_type": "IMAGE", "image_url": media_server.url("img1.jpg")}
        made = await fake.post(
            "/v1.0/me/threads", params=params, headers={"Authorization": "Bearer t"}
        )
    assert made.status_code == 400, made.text
    assert "could not be fetched" in made.json()["error"]["message"]


@pytest.mark.parametrize("fake", ["threads", "facebook"])
async def test_the_standalone_fakes_fetch_media_from_anywhere_even_with_a_public_url(
    media_server: MediaServer, fake: str
) -> None:
    """`python -m soku.sandbox --public-url U` serves the fakes apart from the service, whose
    media live elsewhere: a URL that is not U's must still be fetched."""
    from soku.sandbox.__main__ import build_app

    app = build_app("http://sandbox.example:8765")  # no --media-origin
    transport = httpx.ASGITransport(app=app)
    auth = {"Authorization": "Bearer t"}
    image = media_server.url("img1.jpg")
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.example") as http:
        if fake == "threads":
            params = {"media_type": "IMAGE", "image_url": image}
            made = await http.post("/sandbox/threads/v1.0/me/threads", params=params, headers=auth)
        else:
            form = {"url": image, "published": "false"}
            page = "/sandbox/facebook/v25.0/1122334455"
            made = await http.post(f"{page}/photos", data=form, headers=auth)
    assert made.status_code == 200, made.text
    assert made.json()["id"]


async def test_the_standalone_fakes_fetch_only_from_the_media_origin_given(
    media_server: MediaServer,
) -> None:
    """`--media-origin U`: the Threads fake refuses a URL of another origin (no fetching of
    internal addresses on behalf of whoever can reach the sandbox)."""
    from soku.sandbox.__main__ import build_app

    app = build_app("http://sandbox.example:8765", media_origin="http://soku.example:8000")
    transport = httpx.ASGITransport(app=app)
    params = {"media_type": "IMAGE", "image_url": media_server.url("img1.jpg")}
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.example") as http:
        made = await http.post(
            "/sandbox/threads/v1.0/me/threads", params=params, headers={"Authorization": "Bearer t"}
        )
    assert made.status_code == 400, made.text
    assert "could not be fetched" in made.json()["error"]["message"]
