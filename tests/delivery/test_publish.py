"""Immediate posts through the engine: text to several platforms, images, a video."""

from __future__ import annotations

import uuid

import httpx
import pytest
from pydantic import ValidationError

from soku.delivery.engine import DRAFT_CACHE_SIZE, Engine
from soku.delivery.models import DeliveryStatus
from tests.delivery.harness import Harness, by_platform, image_post, text_post, video_post
from tests.media_files import MediaServer

PLATFORMS = ("x", "threads", "linkedin")


async def test_immediate_post_published(env: Harness) -> None:
    caller = await env.caller([(p, f"{p}_main") for p in PLATFORMS])
    env.start_worker()
    body = text_post(*PLATFORMS, text="Hello from the engine")
    post_id = await env.create(caller, body)
    view = await env.wait_status(caller, post_id, "published")

    text = body["post"]["content"]["text"]
    fake_posts = await env.fake_posts()
    assert len(fake_posts) == len(PLATFORMS)  # exactly one post per delivery
    for platform, delivery in by_platform(view).items():
        assert delivery["status"] == "published"
        assert delivery["attempts"] == 1
        assert delivery["error"] is None
        assert delivery["publishedAt"] is not None
        user_id = await env.platform_user(caller, platform)
        [on_fake] = await env.fake_posts(user_id)
        assert (on_fake["text"], on_fake["platform"]) == (text, platform)
        assert delivery["platformPostId"] == on_fake["id"]
        assert delivery["url"] == on_fake["url"]
        page = await env.fake.get(delivery["url"])
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        [attempt] = await env.attempts(delivery["id"])
        assert attempt.outcome == "published"
        assert attempt.http_status is None and attempt.error is None
        assert attempt.started_at <= attempt.finished_at  # type: ignore[operator]
        assert attempt.response is not None and attempt.response["id"] == on_fake["id"]
        assert attempt.worker == env.workers[0][0].engine.owner
        stored = await env.delivery(delivery["id"])
        assert stored.status == DeliveryStatus.published
        assert (stored.lease_owner, stored.lease_expires_at) == (None, None)
        assert "publish_started" not in stored.checkpoint
    assert (await env.calls())["publish"] == len(PLATFORMS)


async def test_image_post_uploads_then_publishes(env: Harness, media_server: MediaServer) -> None:
    caller = await env.caller([("x", "x_main"), ("facebook", "fb_main")])
    env.start_worker()
    body = image_post(media_server, "x", "facebook", count=3)
    post_id = await env.create(caller, body)
    view = await env.wait_status(caller, post_id, "published")

    stored_prefix = f"{env.ctx.settings.public_base_url}/media/"
    for platform, delivery in by_platform(view).items():
        [on_fake] = await env.fake_posts(await env.platform_user(caller, platform))
        urls = [m["url"] for m in on_fake["media"]]
        # the platform is handed our stored copies, in the post's order
        assert len(set(urls)) == 3
        assert all(url.startswith(stored_prefix) for url in urls)
        for url, original in zip(urls, body["post"]["content"]["imageUrls"], strict=True):
            served = await env.api.get(url.removeprefix(env.ctx.settings.public_base_url))
            assert served.status_code == 200
            async with httpx.AsyncClient(timeout=10) as direct:
                assert served.content == (await direct.get(original)).content
        assert {m["kind"] for m in on_fake["media"]} == {"image"}
        assert delivery["platformPostId"] == on_fake["id"]
        stored = await env.delivery(delivery["id"])
        steps = stored.checkpoint["steps"]
        assert sorted(steps) == ["upload_0", "upload_1", "upload_2"]
        assert on_fake["media_ids"] == [steps[f"upload_{n}"]["media_id"] for n in range(3)]
    calls = await env.calls()
    assert (calls["media"], calls["publish"]) == (6, 2)


async def test_video_post_waits_for_processing(env: Harness, media_server: MediaServer) -> None:
    caller = await env.caller([("youtube", "yt_main")])
    await env.fake.post("/_config", json={"video_polls": 3})
    env.start_worker()
    post_id = await env.create(caller, video_post(media_server, "youtube"))
    view = await env.wait_status(caller, post_id, "published")

    [delivery] = view["deliveries"]
    [on_fake] = await env.fake_posts()
    assert [m["kind"] for m in on_fake["media"]] == ["video"]
    assert delivery["platformPostId"] == on_fake["id"]
    stored = await env.delivery(delivery["id"])
    assert stored.checkpoint["steps"]["upload_0"]["status"] == "processing"
    assert stored.checkpoint["steps"]["wait_media"]["status"] == "ready"
    calls = await env.calls()
    assert (calls["media"], calls["media_status"], calls["publish"]) == (1, 4, 1)
    [attempt] = await env.attempts(delivery["id"])
    assert attempt.outcome == "published"


async def test_a_posts_content_is_checked_once_and_kept_for_its_deliveries(
    engine: Engine,
) -> None:
    post, other = uuid.uuid4(), uuid.uuid4()
    content = {"text": "kept", "platform": ["x", "threads"]}
    first = engine.draft(post, content)
    assert (first.text, first.media_type) == ("kept", "text")
    # the post's next delivery gets the same draft without reading the content again
    assert engine.draft(post, {"broken": True}) is first
    images = {"mediaUrls": ["https://e.example/a.png"], "mediaType": "image", "platform": ["x"]}
    assert engine.draft(other, images).image_urls == ("https://e.example/a.png",)
    for _ in range(DRAFT_CACHE_SIZE):  # a full cache starts over: memory stays bounded
        engine.draft(uuid.uuid4(), content)
    with pytest.raises(ValidationError):
        engine.draft(post, {"broken": True})
