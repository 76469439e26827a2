"""POST /v1/posts: the page's examples, every validation rule, targeting."""

from __future__ import annotations

import uuid

import httpx
import pytest

from soku.context import AppContext
from tests.api.helpers import assert_error, in_future, reasons, text_post
from tests.conftest import Caller, make_caller
from tests.media_files import MediaServer

pytestmark = pytest.mark.asyncio


async def post(client: httpx.AsyncClient, caller: Caller, body: object) -> httpx.Response:
    return await client.post("/v1/posts", json=body, headers=caller.headers)


async def get(client: httpx.AsyncClient, caller: Caller, post_id: str) -> dict[str, object]:
    response = await client.get(f"/v1/posts/{post_id}", headers=caller.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


# --- the page's examples --------------------------------------------------------------


async def test_example_text_post_immediately(client: httpx.AsyncClient, caller: Caller) -> None:
    body = text_post("threads", "x", "linkedin", text="Just shipped a new feature. Check it out!")
    response = await post(client, caller, body)
    assert response.status_code == 201, response.text
    assert set(response.json()) == {"postSubmissionId"}
    post_id = response.json()["postSubmissionId"]
    assert str(uuid.UUID(post_id)) == post_id
    shown = await get(client, caller, post_id)
    assert shown["status"] == "queued"
    assert [(d["platform"], d["accountId"], d["status"]) for d in shown["deliveries"]] == [
        ("threads", "threads_main", "queued"),
        ("x", "x_main", "queued"),
        ("linkedin", "linkedin_main", "queued"),
    ]


async def test_example_video_to_specific_accounts(
    backend: AppContext, client: httpx.AsyncClient, media_server: MediaServer
) -> None:
    """The page's example, with the video served locally (posts fetch their media)."""
    caller = await make_caller(
        backend,
        accounts=[
            ("instagram", "ig_main"),
            ("instagram", "ig_brand"),
            ("tiktok", "tt_brand"),
            ("youtube", "yt_main"),
        ],
    )
    body = {
        "post": {
            "content": {
                "text": "New product walkthrough",
                "mediaType": "video",
                "videoUrl": media_server.url("clip.mp4"),
                "platform": [
                    {"platform": "instagram", "accountId": "ig_main"},
                    {"platform": "tiktok", "accountId": "tt_brand"},
                    "youtube",
                ],
            }
        }
    }
    response = await post(client, caller, body)
    assert response.status_code == 201, response.text
    shown = await get(client, caller, response.json()["postSubmissionId"])
    assert [(d["platform"], d["accountId"]) for d in shown["deliveries"]] == [
        ("instagram", "ig_main"),
        ("tiktok", "tt_brand"),
        ("youtube", "yt_main"),
    ]
    assert shown["content"] == body["post"]["content"]


async def test_example_multiple_images(
    client: httpx.AsyncClient, caller: Caller, media_server: MediaServer
) -> None:
    body = {
        "post": {
            "content": {
                "text": "Behind the scenes from today's shoot",
                "mediaType": "image",
                "imageUrls": media_server.images(3, "jpg"),  # Instagram takes JPEG only
                "platform": ["instagram", "facebook"],
            }
        }
    }
    response = await post(client, caller, body)
    assert response.status_code == 201, response.text


async def test_example_scheduled_post(client: httpx.AsyncClient, caller: Caller) -> None:
    when = in_future(3600)
    response = await post(
        client,
        caller,
        text_post("threads", "x", text="Monday motivation incoming.", scheduledTime=when),
    )
    assert response.status_code == 201, response.text
    shown = await get(client, caller, response.json()["postSubmissionId"])
    assert shown["status"] == "scheduled"
    assert {d["status"] for d in shown["deliveries"]} == {"scheduled"}
    assert shown["scheduledTime"].startswith(when[:19])


async def test_example_scheduled_time_from_the_page_is_now_in_the_past(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    body = text_post("threads", "x", scheduledTime="2026-03-02T09:00:00.000Z")
    error = assert_error(await post(client, caller, body), 400, "validation_error")
    assert error["details"]["field"] == "scheduledTime"
    assert error["details"]["reason"] == "in_past"


# --- body shape and types --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({}, "post", "required"),
        ({"post": {}}, "post.content", "required"),
        ({"post": {"content": {"text": "hi"}}}, "post.content.platform", "required"),
        (
            {"post": {"content": {"text": 5, "platform": ["x"]}}},
            "post.content.text",
            "invalid_type",
        ),
        (
            {"post": {"content": {"text": "hi", "platform": "x"}}},
            "post.content.platform",
            "invalid_type",
        ),
        (
            {"post": {"content": {"text": "hi", "platform": ["x"], "mediaType": "gif"}}},
            "post.content.mediaType",
            "invalid_value",
        ),
        (
            {"post": {"content": {"text": "hi", "platform": ["x"], "imageUrls": "http://a/b.png"}}},
            "post.content.imageUrls",
            "invalid_type",
        ),
        (
            {"post": {"content": {"text": "hi", "platform": ["x"], "colour": "red"}}},
            "post.content.colour",
            "unknown_field",
        ),
        (
            {"post": {"content": {"text": "hi", "platform": ["x"]}}, "scheduledTime": 1700000000},
            "scheduledTime",
            "invalid_type",
        ),
        ([1, 2], "body", "invalid_type"),
    ],
)
async def test_shape_errors_name_the_field(
    client: httpx.AsyncClient, caller: Caller, body: object, field: str, reason: str
) -> None:
    error = assert_error(await post(client, caller, body), 400, "validation_error")
    assert (field, reason) in reasons(error), error


async def test_platform_entry_of_wrong_kind_is_one_clear_problem(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    body = {"post": {"content": {"text": "hi", "platform": [42]}}}
    error = assert_error(await post(client, caller, body), 400, "validation_error")
    assert [p["field"] for p in error["details"]["errors"]] == ["post.content.platform[0]"]


@pytest.mark.parametrize(
    ("target", "field", "reason"),
    [
        ({"accountId": "x_main"}, "post.content.platform[0].platform", "required"),
        ({"platform": "x", "accountId": 5}, "post.content.platform[0].accountId", "invalid_type"),
        ({"platform": "x", "acount": "a"}, "post.content.platform[0].acount", "unknown_field"),
    ],
)
async def test_a_malformed_target_object_is_one_problem_about_the_object(
    client: httpx.AsyncClient, caller: Caller, target: dict[str, object], field: str, reason: str
) -> None:
    body = {"post": {"content": {"text": "hi", "platform": [target]}}}
    error = assert_error(await post(client, caller, body), 400, "validation_error")
    assert [(p["field"], p["reason"]) for p in error["details"]["errors"]] == [(field, reason)]
    assert error["message"].startswith(field) and "platform name" not in error["message"]


async def test_several_problems_are_joined_with_clean_punctuation(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    content = {"text": "hi", "platform": [42, ["x"]]}
    error = assert_error(
        await post(client, caller, {"post": {"content": content}}), 400, "validation_error"
    )
    messages = [p["message"].rstrip(".") for p in error["details"]["errors"]]
    assert len(messages) == 2
    assert error["message"] == "2 problems in the request: " + "; ".join(messages) + "."
    assert ".;" not in error["message"] and not error["message"].endswith("..")


async def test_a_long_list_of_problems_is_cut_after_five() -> None:
    from soku.errors import ValidationFailed

    problems = [{"field": f"f{i}", "reason": "r", "message": f"f{i} is wrong."} for i in range(7)]
    message = ValidationFailed.from_problems(problems).message
    assert message == (
        "7 problems in the request: f0 is wrong; f1 is wrong; f2 is wrong; f3 is wrong; "
        "f4 is wrong; and 2 more (see details.errors)."
    )


async def test_a_flood_of_problems_lists_the_first_hundred(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    """One platform named 5,000 times: 4,999 problems, but not 4,999 listed."""
    body = {"post": {"content": {"text": "Hi", "platform": ["x"] * 5000}}}
    response = await post(client, caller, body)
    error = assert_error(response, 400, "validation_error")
    assert error["message"].startswith("4999 problems in the request: ")
    assert (len(error["details"]["errors"]), error["details"]["omitted"]) == (100, 4899)
    assert len(response.content) < 20_000


async def test_every_problem_in_one_response(client: httpx.AsyncClient, caller: Caller) -> None:
    body = {
        "post": {
            "content": {
                "text": "x" * 600,
                "mediaType": "text",
                "platform": ["x", "threads", "myspace", "x", "instagram"],
            }
        },
        "scheduledTime": "tomorrow",
    }
    error = assert_error(await post(client, caller, body), 400, "validation_error")
    assert reasons(error) >= {
        ("post.content.platform[2]", "unknown_platform"),
        ("post.content.platform[3]", "duplicate_target"),
        ("scheduledTime", "invalid_format"),
        ("x", "text_too_long"),
        ("threads", "text_too_long"),
        ("instagram", "text_only_not_supported"),
    }
    assert error["details"]["field"] == "post.content.platform[2]"


@pytest.mark.parametrize(
    ("content", "field", "reason"),
    [
        ({"platform": []}, "post.content.platform", "empty"),
        ({"platform": ["x"]}, "post.content.text", "required"),
        ({"platform": ["x"], "text": "   "}, "post.content.text", "required"),
        (
            {"platform": [{"platform": "x", "accountId": ""}], "text": "hi"},
            "post.content.platform[0].accountId",
            "empty",
        ),
        (
            {"platform": [{"platform": "vine"}], "text": "hi"},
            "post.content.platform[0].platform",
            "unknown_platform",
        ),
        (
            {"platform": ["x", {"platform": "x"}], "text": "hi"},
            "post.content.platform[1].platform",
            "duplicate_target",
        ),
        (
            {
                "platform": ["x"],
                "text": "hi",
                "mediaType": "text",
                "imageUrls": ["https://a.example/1.png"],
            },
            "post.content.mediaType",
            "media_not_allowed",
        ),
        (
            {"platform": ["x"], "text": "hi", "mediaType": "image"},
            "post.content.imageUrls",
            "required",
        ),
        (
            {
                "platform": ["x"],
                "mediaType": "image",
                "imageUrls": ["https://a.example/1.png"],
                "videoUrl": "https://a.example/v.mp4",
            },
            "post.content.videoUrl",
            "conflicts_with_media_type",
        ),
        ({"platform": ["x"], "mediaType": "video"}, "post.content.videoUrl", "required"),
        (
            {
                "platform": ["x"],
                "mediaType": "video",
                "videoUrl": "https://a.example/v.mp4",
                "imageUrls": ["https://a.example/1.png"],
            },
            "post.content.imageUrls",
            "conflicts_with_media_type",
        ),
        (
            {"platform": ["x"], "mediaType": "image", "imageUrls": ["ftp://a.example/1.png"]},
            "post.content.imageUrls[0]",
            "invalid_url",
        ),
        (
            {"platform": ["x"], "mediaType": "image", "imageUrls": ["https:///nohost.png"]},
            "post.content.imageUrls[0]",
            "invalid_url",
        ),
        (
            # urlsplit drops the line break; an HTTP client would refuse the URL
            {"platform": ["x"], "mediaType": "image", "imageUrls": ["https://a.exa\r\nmple/1.png"]},
            "post.content.imageUrls[0]",
            "invalid_url",
        ),
        (
            {"platform": ["x"], "mediaType": "video", "videoUrl": "javascript:alert(1)"},
            "post.content.videoUrl",
            "invalid_url",
        ),
        (
            {"platform": ["x"], "mediaType": "image", "mediaUrls": ["file:///etc/passwd"]},
            "post.content.mediaUrls[0]",
            "invalid_url",
        ),
        (
            {"platform": ["x"], "mediaUrls": ["https://a.example/a", "https://a.example/b.mp4"]},
            "post.content.mediaType",
            "required",
        ),
        (
            {
                "platform": ["facebook"],
                "mediaType": "image",
                "imageUrls": [f"https://a.example/{i}.png" for i in range(36)],
            },
            "post.content",
            "too_many_media",
        ),
    ],
)
async def test_content_rules(
    client: httpx.AsyncClient, caller: Caller, content: dict[str, object], field: str, reason: str
) -> None:
    error = assert_error(
        await post(client, caller, {"post": {"content": content}}), 400, "validation_error"
    )
    assert (field, reason) in reasons(error), error


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2030-01-01T09:00:00", "missing_offset"),
        ("2030-01-01", "missing_offset"),
        ("next monday", "invalid_format"),
        ("", "invalid_format"),
        ("2020-01-01T00:00:00Z", "in_past"),
    ],
)
async def test_scheduled_time_rules(
    client: httpx.AsyncClient, caller: Caller, value: str, reason: str
) -> None:
    error = assert_error(
        await post(client, caller, text_post("x", scheduledTime=value)), 400, "validation_error"
    )
    assert error["details"]["field"] == "scheduledTime"
    assert error["details"]["reason"] == reason


async def test_scheduled_time_needs_the_minimum_lead(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    error = assert_error(
        await post(client, caller, text_post("x", scheduledTime=in_future(30))),
        400,
        "validation_error",
    )
    assert error["details"]["reason"] == "too_soon"
    ok = await post(client, caller, text_post("x", scheduledTime=in_future(90)))
    assert ok.status_code == 201, ok.text


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2031-05-06T09:30:00+02:00", "2031-05-06T07:30:00"),  # an offset: stored in UTC
        ("2031-05-06t09:30:00z", "2031-05-06T09:30:00"),  # lowercase, as RFC 3339 allows
    ],
)
async def test_scheduled_time_is_stored_in_utc(
    client: httpx.AsyncClient, caller: Caller, given: str, stored: str
) -> None:
    response = await post(client, caller, text_post("x", scheduledTime=given))
    assert response.status_code == 201, response.text
    shown = await get(client, caller, response.json()["postSubmissionId"])
    assert str(shown["scheduledTime"]).startswith(stored)


# --- each platform's content rules (the rules themselves are unit-tested in tests/platforms) ---


@pytest.mark.parametrize(
    ("content", "platform", "reason", "field"),
    [
        ({"text": "a" * 281, "mediaType": "text"}, "x", "text_too_long", "post.content.text"),
        ({"text": "a" * 501, "mediaType": "text"}, "threads", "text_too_long", "post.content.text"),
        (
            {"text": "a" * 3001, "mediaType": "text"},
            "linkedin",
            "text_too_long",
            "post.content.text",
        ),
        (
            {"text": "a" * 2201, "mediaType": "image", "imageUrls": ["https://a.example/1.jpg"]},
            "instagram",
            "text_too_long",
            "post.content.text",
        ),
        (
            {"text": "a" * 63207, "mediaType": "text"},
            "facebook",
            "text_too_long",
            "post.content.text",
        ),
        (
            {"text": "hi", "mediaType": "text"},
            "instagram",
            "text_only_not_supported",
            "post.content",
        ),
        ({"text": "hi", "mediaType": "text"}, "tiktok", "text_only_not_supported", "post.content"),
        ({"text": "hi", "mediaType": "text"}, "youtube", "text_only_not_supported", "post.content"),
        (
            {"text": "hi", "mediaType": "text"},
            "snapchat",
            "text_only_not_supported",
            "post.content",
        ),
        (
            {"text": "hi", "mediaType": "image", "imageUrls": ["https://a.example/1.jpg"]},
            "youtube",
            "images_not_supported",
            "post.content.imageUrls",
        ),
        (
            {"mediaType": "image", "imageUrls": [f"https://a.example/{i}.jpg" for i in range(5)]},
            "x",
            "too_many_images",
            "post.content.imageUrls",
        ),
        (
            {"mediaType": "image", "imageUrls": [f"https://a.example/{i}.jpg" for i in range(11)]},
            "instagram",
            "too_many_images",
            "post.content.imageUrls",
        ),
        (
            {
                "mediaType": "video",
                "mediaUrls": ["https://a.example/1.mp4", "https://a.example/2.mp4"],
            },
            "x",
            "too_many_videos",
            "post.content.mediaUrls",
        ),
        (
            {"mediaType": "image", "imageUrls": [f"https://a.example/{i}.jpg" for i in range(21)]},
            "threads",
            "too_many_images",
            "post.content.imageUrls",
        ),
        (
            {"mediaType": "image", "imageUrls": [f"https://a.example/{i}.jpg" for i in range(11)]},
            "facebook",
            "too_many_images",
            "post.content.imageUrls",
        ),
        (
            {"mediaType": "image", "imageUrls": [f"https://a.example/{i}.jpg" for i in range(10)]},
            "linkedin",
            "too_many_images",
            "post.content.imageUrls",
        ),
        (
            {
                "mediaType": "video",
                "mediaUrls": ["https://a.example/1.mp4", "https://a.example/2.mp4"],
            },
            "linkedin",
            "too_many_videos",
            "post.content.mediaUrls",
        ),
        (
            {
                "mediaType": "video",
                "mediaUrls": ["https://a.example/1.mp4", "https://a.example/2.mp4"],
            },
            "facebook",
            "too_many_videos",
            "post.content.mediaUrls",
        ),
        (
            {
                "mediaType": "video",
                "mediaUrls": ["https://a.example/1.mp4", "https://a.example/2.mp4"],
            },
            "threads",
            "too_many_videos",
            "post.content.mediaUrls",
        ),
        (
            {"text": " ".join(f"https://l{i}.example" for i in range(6)), "mediaType": "text"},
            "threads",
            "too_many_links",
            "post.content.text",
        ),
        (
            {"mediaUrls": [f"https://a.example/{i}.png" for i in range(5)]},
            "x",
            "too_many_images",
            "post.content.mediaUrls",
        ),
    ],
)
async def test_platform_rules_at_the_api(
    client: httpx.AsyncClient,
    caller: Caller,
    content: dict[str, object],
    platform: str,
    reason: str,
    field: str,
) -> None:
    """Each problem names the platform, and the field it is about."""
    content = {**content, "platform": [platform]}
    error = assert_error(
        await post(client, caller, {"post": {"content": content}}), 400, "validation_error"
    )
    assert (platform, reason) in reasons(error), error
    fields = {p["field"] for p in error["details"]["errors"] if p.get("platform") == platform}
    assert fields == {field}, error


async def test_x_counts_urls_as_23(client: httpx.AsyncClient, caller: Caller) -> None:
    url = "https://example.com/" + "a" * 200
    text = "b" * (280 - 24) + " " + url
    response = await post(client, caller, text_post("x", text=text))
    assert response.status_code == 201, response.text


async def test_media_type_inferred_when_omitted(
    client: httpx.AsyncClient, caller: Caller, media_server: MediaServer
) -> None:
    body = {
        "post": {
            "content": {
                "text": "hi",
                "videoUrl": media_server.url("clip.mp4"),
                "platform": ["youtube"],
            }
        }
    }
    assert (await post(client, caller, body)).status_code == 201
    body = {
        "post": {
            "content": {
                "mediaUrls": [media_server.url("img2.png"), media_server.url("img3.webp")],
                "platform": ["facebook"],
            }
        }
    }
    assert (await post(client, caller, body)).status_code == 201


# --- targeting: missing_integrations and missing_account -----------------------------------


async def test_missing_integrations_lists_platforms(
    backend: AppContext, client: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[("x", "x_main")])
    body = {
        "post": {
            "content": {
                "text": "hi",
                "mediaType": "video",
                "videoUrl": "https://a.example/v.mp4",
                "platform": ["x", "tiktok", {"platform": "youtube", "accountId": "yt"}],
            }
        }
    }
    error = assert_error(await post(client, caller, body), 400, "missing_integrations")
    assert error["details"]["missingPlatforms"] == ["tiktok", "youtube"]
    assert "tiktok, youtube" in error["message"]


async def test_missing_account_for_unknown_account_id(
    backend: AppContext, client: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[("x", "x_main")])
    body = text_post({"platform": "x", "accountId": "x_other"})
    error = assert_error(await post(client, caller, body), 400, "missing_account")
    assert error["details"]["platform"] == "x"
    assert error["details"]["accountId"] == "x_other"
    assert error["details"]["availableAccountIds"] == ["x_main"]


async def test_bare_string_with_two_accounts_is_missing_account(
    backend: AppContext, client: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[("threads", "th_a"), ("threads", "th_b")])
    error = assert_error(await post(client, caller, text_post("threads")), 400, "missing_account")
    assert error["details"]["platform"] == "threads"
    assert error["details"]["accountId"] is None
    assert sorted(error["details"]["availableAccountIds"]) == ["th_a", "th_b"]
    both = text_post(
        {"platform": "threads", "accountId": "th_a"}, {"platform": "threads", "accountId": "th_b"}
    )
    assert (await post(client, caller, both)).status_code == 201


async def test_bare_string_and_object_naming_the_same_account_is_a_duplicate(
    backend: AppContext, client: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[("x", "x_main")])
    body = text_post("x", {"platform": "x", "accountId": "x_main"})
    error = assert_error(await post(client, caller, body), 400, "validation_error")
    assert error["details"]["reason"] == "duplicate_target"


async def test_another_users_account_cannot_be_targeted(
    backend: AppContext, client: httpx.AsyncClient
) -> None:
    await make_caller(backend, accounts=[("linkedin", "shared_name")])
    caller = await make_caller(backend, accounts=[("x", "x_main")])
    body = text_post({"platform": "linkedin", "accountId": "shared_name"})
    error = assert_error(await post(client, caller, body), 400, "missing_integrations")
    assert error["details"]["missingPlatforms"] == ["linkedin"]


async def test_validation_comes_before_integrations(
    backend: AppContext, client: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    error = assert_error(
        await post(client, caller, text_post("x", text="")), 400, "validation_error"
    )
    assert error["details"]["field"] == "post.content.text"


async def test_example_media_urls_of_the_page_are_fetched_and_fail_offline(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    """The page's own media URLs can't be reached from here: the post is refused, not kept."""
    body = {
        "post": {
            "content": {
                "text": "New product walkthrough",
                "mediaType": "video",
                "videoUrl": "https://storage.mysoku.io/media/abc123/video.mp4",
                "platform": ["youtube"],
            }
        }
    }
    error = assert_error(await post(client, caller, body), 400, "upload_failed")
    assert error["details"]["url"] == "https://storage.mysoku.io/media/abc123/video.mp4"
    assert error["details"]["reason"] in ("unreachable", "blocked_address")
    listed = await client.get("/v1/posts", headers=caller.headers)
    assert listed.json()["data"] == []
