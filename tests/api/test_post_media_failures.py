"""What a caller is told when a post's media fails: which URL, why, in words that help."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from soku.context import AppContext
from soku.posts import service
from soku.posts.media_intake import MediaPlan
from tests.api.helpers import assert_error
from tests.conftest import Caller
from tests.media_files import MediaServer

pytestmark = pytest.mark.asyncio


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A URL whose server takes the connection and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)  # the handshake completes in the backlog; nothing is ever read
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/slow.jpg"


def image_post(urls: list[str]) -> dict[str, Any]:
    content = {"text": "pics", "mediaType": "image", "imageUrls": urls, "platform": ["x"]}
    return {"post": {"content": content}}


async def test_a_url_that_never_answers_is_the_one_named(
    client: httpx.AsyncClient,
    backend: AppContext,
    caller: Caller,
    media_server: MediaServer,
    silent_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(backend.settings, "media_fetch_timeout_seconds", 0.5)
    urls = [media_server.url("img1.jpg?slow=1"), silent_url]
    response = await client.post("/v1/posts", json=image_post(urls), headers=caller.headers)
    error = assert_error(response, 400, "upload_failed")
    assert (error["details"]["url"], error["details"]["reason"]) == (silent_url, "timeout")
    assert error["details"]["failures"] == [{"url": silent_url, "reason": "timeout"}]
    assert silent_url in error["message"] and media_server.url("img1.jpg") not in error["message"]


async def test_a_stored_file_that_is_gone_answers_404_before_any_byte(
    client: httpx.AsyncClient, backend: AppContext, caller: Caller, media_server: MediaServer
) -> None:
    view = (
        await client.post(
            "/v1/media", json={"url": media_server.url("img2.png")}, headers=caller.headers
        )
    ).json()
    path = urlsplit(view["url"]).path
    await backend.media_store.delete(f"sha256/{view['sha256']}.png")  # lost by the store
    for headers in ({}, {"Range": "bytes=0-9"}):
        assert_error(await client.get(path, headers=headers), 404, "not_found")


async def test_files_of_the_wrong_kind_are_all_listed_in_plain_words(
    client: httpx.AsyncClient, caller: Caller, media_server: MediaServer
) -> None:
    videos = [media_server.url("clip.mp4?k=1"), media_server.url("clip.mp4?k=2")]
    urls = [media_server.url("img1.jpg?k=1"), *videos]
    response = await client.post("/v1/posts", json=image_post(urls), headers=caller.headers)
    error = assert_error(response, 400, "upload_failed")
    assert error["message"] == (
        f"{videos[0]} is a video (video/mp4), but this is an image post."
        " And 1 more (see details.failures)."
    )
    assert error["details"]["failures"] == [
        {"url": url, "reason": "unsupported_format"} for url in videos
    ]
    video_post = {
        "post": {"content": {"videoUrl": media_server.url("img2.png?k=1"), "platform": ["x"]}}
    }
    response = await client.post("/v1/posts", json=video_post, headers=caller.headers)
    message = assert_error(response, 400, "upload_failed")["message"]
    assert message.endswith("is an image (image/png), but this is a video post.")


async def test_images_and_a_video_without_media_type_are_not_blamed_on_media_type(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    content = {
        "text": "both",
        "imageUrls": ["https://a.example/1.png"],
        "videoUrl": "https://a.example/v.mp4",
        "platform": ["x"],
    }
    response = await client.post(
        "/v1/posts", json={"post": {"content": content}}, headers=caller.headers
    )
    error = assert_error(response, 400, "validation_error")
    assert error["details"]["field"] == "post.content.imageUrls"
    assert error["message"] == (
        "imageUrls and videoUrl can't be given together: a post has images or one video."
    )


async def _uploaded(
    client: httpx.AsyncClient, caller: Caller, media_server: MediaServer
) -> dict[str, Any]:
    response = await client.post(
        "/v1/media/upload", files=upload_of(media_server), headers=caller.headers
    )
    assert response.status_code == 201, response.text
    view: dict[str, Any] = response.json()
    return view


async def test_a_deleted_media_url_is_not_found_not_a_blocked_address(
    client: httpx.AsyncClient,
    backend: AppContext,
    caller: Caller,
    media_server: MediaServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(backend.settings, "media_allow_private", False)  # the default
    view = await _uploaded(client, caller, media_server)
    deleted = await client.delete(f"/v1/media/{view['id']}", headers=caller.headers)
    assert deleted.status_code == 204
    response = await client.post(
        "/v1/posts", json=image_post([view["url"]]), headers=caller.headers
    )
    error = assert_error(response, 400, "upload_failed")
    assert (error["details"]["url"], error["details"]["reason"]) == (view["url"], "not_found")
    assert error["message"] == (
        f"{view['url']} is not stored here: its media was deleted, or the URL is mistyped."
    )


def upload_of(media_server: MediaServer) -> dict[str, tuple[str, bytes, str]]:
    data = httpx.get(media_server.url("img3.webp")).content
    return {"file": ("img3.webp", data, "image/webp")}


@pytest.mark.parametrize(
    ("urls", "field", "reason", "message"),
    [
        (
            ["https://a.example/1.png", "https://a.example/2.mp4"],
            "post.content.mediaUrls",
            "mixed_media",
            "post.content.mediaUrls mixes images (https://a.example/1.png) and videos "
            "(https://a.example/2.mp4): a post has images or one video.",
        ),
        (
            ["https://a.example/1.png", "https://a.example/media?id=2"],
            "post.content.mediaType",
            "required",
            "Set mediaType (image or video): the kind of https://a.example/media?id=2 can't "
            "be told from its URL.",
        ),
    ],
)
async def test_media_urls_whose_kind_is_unsettled_say_why(
    client: httpx.AsyncClient,
    caller: Caller,
    urls: list[str],
    field: str,
    reason: str,
    message: str,
) -> None:
    """Without mediaType, mixed images and videos are not asked for a mediaType (none would
    do); a URL whose name does not tell its kind is named."""
    content = {"text": "mixed", "mediaUrls": urls, "platform": ["x"]}
    response = await client.post(
        "/v1/posts", json={"post": {"content": content}}, headers=caller.headers
    )
    error = assert_error(response, 400, "validation_error")
    assert (error["details"]["field"], error["details"]["reason"]) == (field, reason)
    assert error["message"] == message


async def test_a_url_that_cannot_be_sent_back_is_not_named_in_the_kind_problem(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    """An unpaired surrogate in a URL (JSON's \\u escapes carry one) has its invalid_url
    problem; the kind problem does not repeat it, or the answer could not be encoded (a 500
    the fuzz test found)."""
    body = '{"post": {"content": {"text": "t", "platform": ["x"], "mediaUrls": ["https://a.example/1.png", "https://a.example/\\ud800.mp4"]}}}'  # noqa: E501
    headers = {**caller.headers, "Content-Type": "application/json"}
    response = await client.post("/v1/posts", content=body, headers=headers)
    error = assert_error(response, 400, "validation_error")
    fields = {p["field"]: p for p in error["details"]["errors"]}
    assert fields["post.content.mediaUrls[1]"]["reason"] == "invalid_url"
    assert fields["post.content.mediaType"]["message"] == (
        "Set mediaType (image or video): the kinds of the mediaUrls can't be told from them."
    )


async def test_media_deleted_while_its_post_is_accepted_is_not_found(
    client: httpx.AsyncClient,
    caller: Caller,
    media_server: MediaServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The media is looked up before the post's transaction; a DELETE that lands in between
    (and sees no post using it yet) must not leave the post naming media that is gone."""
    view = await _uploaded(client, caller, media_server)
    take_media = service.take_media

    async def deleted_meanwhile(*args: Any) -> MediaPlan:
        plan = await take_media(*args)
        deleted = await client.delete(f"/v1/media/{view['id']}", headers=caller.headers)
        assert deleted.status_code == 204, deleted.text
        return plan

    monkeypatch.setattr(service, "take_media", deleted_meanwhile)
    response = await client.post(
        "/v1/posts", json=image_post([view["url"]]), headers=caller.headers
    )
    error = assert_error(response, 400, "upload_failed")
    assert (error["details"]["url"], error["details"]["reason"]) == (view["url"], "not_found")
