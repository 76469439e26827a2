"""POST /v1/posts with a file a target platform would refuse: a 400 at once, naming the
platform, the field and the limit, and nothing stored."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from soku.context import AppContext
from soku.media.models import Media
from tests.api.helpers import assert_error
from tests.conftest import Caller
from tests.media_files import MediaServer, write_image, write_video

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServer]:
    """The usual files, plus a 1 s clip at 10 fps (32x32) and a 2:1 JPEG."""
    folder = tmp_path_factory.mktemp("limits")
    server = MediaServer(folder)
    write_video(folder / "short.mp4")
    write_image(folder / "wide.jpg", (10, 120, 40), size=(200, 100))
    yield server
    server.close()


def post(content: dict[str, Any]) -> dict[str, Any]:
    return {"post": {"content": {"text": "limits", **content}}}


async def media_count(ctx: AppContext, caller: Caller) -> int:
    async with ctx.db.read() as session:
        query = select(func.count()).where(Media.user_id == caller.user_id)
        return (await session.execute(query)).scalar_one()


async def test_a_png_to_instagram_is_refused_naming_the_platform_and_field(
    backend: AppContext, client: httpx.AsyncClient, caller: Caller, files: MediaServer
) -> None:
    urls = [files.url("img1.jpg"), files.url("img2.png")]
    body = post({"imageUrls": urls, "platform": ["facebook", "instagram"]})
    response = await client.post("/v1/posts", json=body, headers=caller.headers)
    error = assert_error(response, 400, "validation_error")
    assert error["message"] == "Instagram takes JPEG images only; post.content.imageUrls[1] is PNG."
    assert error["details"]["errors"] == [
        {
            "platform": "instagram",
            "field": "post.content.imageUrls[1]",
            "reason": "media_format_not_supported",
            "message": error["message"],
        }
    ]
    assert await media_count(backend, caller) == 0  # the fetched files were not kept
    body = post({"imageUrls": urls, "platform": ["facebook", "x"]})
    taken = await client.post("/v1/posts", json=body, headers=caller.headers)
    assert taken.status_code == 201, taken.text


async def test_every_platform_s_refusal_of_a_clip_is_listed(
    client: httpx.AsyncClient, caller: Caller, files: MediaServer
) -> None:
    body = post({"mediaUrls": [files.url("short.mp4")], "platform": ["threads", "linkedin"]})
    response = await client.post("/v1/posts", json=body, headers=caller.headers)
    error = assert_error(response, 400, "validation_error")
    found = [(e["platform"], e["field"], e["reason"]) for e in error["details"]["errors"]]
    assert found == [
        ("threads", "post.content.mediaUrls[0]", "frame_rate_not_supported"),
        ("linkedin", "post.content.mediaUrls[0]", "video_too_short"),
    ]
    assert error["message"] == (
        "2 problems in the request: Threads takes videos at 23 to 60 frames per second; "
        "post.content.mediaUrls[0] has 10; LinkedIn takes videos of 3 s or more; "
        "post.content.mediaUrls[0] lasts 1 s."
    )


@pytest.mark.parametrize(
    ("platform", "content", "field"),
    [
        ("linkedin", {"videoUrl": "short.mp4"}, "post.content.videoUrl"),
        (
            "instagram",
            {"imageUrls": ["img1.jpg"], "mediaUrls": ["wide.jpg"]},
            "post.content.mediaUrls[0]",
        ),
    ],
)
async def test_a_refusal_names_the_field_the_file_came_from(
    client: httpx.AsyncClient,
    caller: Caller,
    files: MediaServer,
    platform: str,
    content: dict[str, Any],
    field: str,
) -> None:
    """The files are checked in the post's order (the video, or the images then mediaUrls),
    and each refusal names the request field its URL was given in."""
    named = {
        key: [files.url(v) for v in value] if isinstance(value, list) else files.url(value)
        for key, value in content.items()
    }
    response = await client.post(
        "/v1/posts", json=post({**named, "platform": [platform]}), headers=caller.headers
    )
    error = assert_error(response, 400, "validation_error")
    assert error["details"]["field"] == field, error


async def test_a_stored_file_is_checked_as_a_fetched_one(
    client: httpx.AsyncClient, caller: Caller, files: MediaServer
) -> None:
    stored = await client.post(
        "/v1/media", json={"url": files.url("wide.jpg")}, headers=caller.headers
    )
    assert stored.status_code == 201, stored.text
    own = stored.json()["url"]
    body = post({"mediaType": "image", "mediaUrls": [own], "platform": ["instagram"]})
    response = await client.post("/v1/posts", json=body, headers=caller.headers)
    error = assert_error(response, 400, "validation_error")
    assert (error["details"]["field"], error["details"]["reason"]) == (
        "post.content.mediaUrls[0]",
        "aspect_ratio_not_supported",
    )
    assert "200x100 (2:1)" in error["message"]


async def test_the_clip_every_platform_takes_is_taken_by_all_eight(
    client: httpx.AsyncClient, caller: Caller, files: MediaServer
) -> None:
    platforms = ["instagram", "tiktok", "youtube", "facebook", "x", "threads", "linkedin"]
    body = post({"videoUrl": files.url("clip.mp4"), "platform": [*platforms, "snapchat"]})
    response = await client.post("/v1/posts", json=body, headers=caller.headers)
    assert response.status_code == 201, response.text
