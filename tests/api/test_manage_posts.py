"""Reading, listing, cancelling, rescheduling and dry-running posts; tenant isolation."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from soku.context import AppContext
from soku.delivery.models import Delivery
from tests.api.helpers import assert_error, in_future, text_post
from tests.conftest import Caller, make_caller

pytestmark = pytest.mark.asyncio


async def create(client: httpx.AsyncClient, caller: Caller, body: dict[str, Any]) -> str:
    response = await client.post("/v1/posts", json=body, headers=caller.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["postSubmissionId"])


async def test_get_shows_deliveries(client: httpx.AsyncClient, caller: Caller) -> None:
    post_id = await create(client, caller, text_post("x", "linkedin", text="read me"))
    shown = (await client.get(f"/v1/posts/{post_id}", headers=caller.headers)).json()
    assert shown["postSubmissionId"] == post_id
    assert shown["status"] == "queued"
    assert shown["content"]["text"] == "read me"
    delivery = shown["deliveries"][0]
    assert set(delivery) == {
        "id",
        "platform",
        "accountId",
        "status",
        "runAt",
        "attempts",
        "platformPostId",
        "url",
        "error",
        "publishedAt",
    }
    assert delivery["attempts"] == 0 and delivery["platformPostId"] is None


async def test_status_is_derived_from_deliveries(
    backend: AppContext, client: httpx.AsyncClient, caller: Caller
) -> None:
    post_id = await create(client, caller, text_post("x", "threads", text="derived"))

    async def set_statuses(*statuses: str) -> str:
        async with backend.db.transaction() as session:
            for platform, status in zip(("x", "threads"), statuses, strict=True):
                await session.execute(
                    update(Delivery)
                    .where(Delivery.post_id == uuid.UUID(post_id), Delivery.platform == platform)
                    .values(status=status)
                )
        return str(
            (await client.get(f"/v1/posts/{post_id}", headers=caller.headers)).json()["status"]
        )

    assert await set_statuses("processing", "queued") == "processing"
    assert await set_statuses("published", "queued") == "processing"
    assert await set_statuses("published", "failed") == "partially_published"
    assert await set_statuses("failed", "failed") == "failed"
    assert await set_statuses("published", "published") == "published"


async def test_list_newest_first_with_cursor(
    backend: AppContext, client: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend)
    made = [await create(client, caller, text_post("x", text=f"post {i}")) for i in range(7)]
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/posts", params=params, headers=caller.headers)).json()
        seen += [p["postSubmissionId"] for p in page["data"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))


async def test_list_filters(backend: AppContext, client: httpx.AsyncClient) -> None:
    caller = await make_caller(backend)
    on_x = await create(client, caller, text_post("x", text="x only"))
    later = await create(
        client, caller, text_post("linkedin", text="later", scheduledTime=in_future(3600))
    )

    async def ids(**params: Any) -> list[str]:
        response = await client.get("/v1/posts", params=params, headers=caller.headers)
        assert response.status_code == 200, response.text
        return [p["postSubmissionId"] for p in response.json()["data"]]

    assert await ids(platform="x") == [on_x]
    assert await ids(platform="linkedin") == [later]
    assert await ids(status="scheduled") == [later]
    assert await ids(status="queued") == [on_x]
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    assert await ids(**{"from": future}) == []
    assert sorted(await ids(**{"from": past, "to": future})) == sorted([on_x, later])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "sent"}, "status"),
        ({"platform": "myspace"}, "platform"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-01-01T00:00:00"}, "from"),
    ],
)
async def test_list_rejects_bad_parameters(
    client: httpx.AsyncClient, caller: Caller, params: dict[str, Any], field: str
) -> None:
    response = await client.get("/v1/posts", params=params, headers=caller.headers)
    error = assert_error(response, 400, "validation_error")
    assert error["details"]["field"] == field


@pytest.mark.parametrize("name", ["from", "to"])
async def test_list_explains_an_unescaped_plus_in_an_offset(
    client: httpx.AsyncClient, caller: Caller, name: str
) -> None:
    query = f"{name}=2026-01-01T09:00:00+05:30"  # the + arrives as a space
    response = await client.get(f"/v1/posts?{query}", headers=caller.headers)
    error = assert_error(response, 400, "validation_error")
    assert (error["details"]["field"], error["details"]["reason"]) == (name, "invalid_format")
    assert "%2B" in error["message"]
    escaped = await client.get(f"/v1/posts?{query.replace('+', '%2B')}", headers=caller.headers)
    assert escaped.status_code == 200, escaped.text


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("status", ["published", "cancelled"]),
        ("platform", ["x", "x"]),
        ("from", ["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"]),
        ("to", ["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"]),
        ("limit", ["5", "10"]),
        ("cursor", ["a", "b"]),
    ],
)
async def test_list_refuses_a_repeated_parameter(
    client: httpx.AsyncClient, caller: Caller, name: str, values: list[str]
) -> None:
    params = [(name, value) for value in values]
    response = await client.get("/v1/posts", params=params, headers=caller.headers)
    error = assert_error(response, 400, "validation_error")
    assert (error["details"]["field"], error["details"]["reason"]) == (name, "repeated")
    assert name in error["message"]


async def test_cancel_before_start(client: httpx.AsyncClient, caller: Caller) -> None:
    post_id = await create(client, caller, text_post("x", "threads", scheduledTime=in_future(600)))
    response = await client.delete(f"/v1/posts/{post_id}", headers=caller.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert {d["status"] for d in response.json()["deliveries"]} == {"cancelled"}
    again = await client.delete(f"/v1/posts/{post_id}", headers=caller.headers)
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    listed = await client.get("/v1/posts", params={"status": "cancelled"}, headers=caller.headers)
    assert post_id in [p["postSubmissionId"] for p in listed.json()["data"]]


async def test_cancel_after_a_delivery_started_is_409(
    backend: AppContext, client: httpx.AsyncClient, caller: Caller
) -> None:
    post_id = await create(client, caller, text_post("x", "threads", text="started"))
    async with backend.db.transaction() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.post_id == uuid.UUID(post_id), Delivery.platform == "x")
            .values(status="processing")
        )
    error = assert_error(
        await client.delete(f"/v1/posts/{post_id}", headers=caller.headers), 409, "conflict"
    )
    assert error["details"]["deliveries"]["x:x_main"] == "processing"
    shown = (await client.get(f"/v1/posts/{post_id}", headers=caller.headers)).json()
    assert {d["platform"]: d["status"] for d in shown["deliveries"]} == {
        "x": "processing",
        "threads": "queued",
    }


async def test_reschedule(client: httpx.AsyncClient, caller: Caller) -> None:
    post_id = await create(client, caller, text_post("x", scheduledTime=in_future(600)))
    when = in_future(7200)
    response = await client.patch(
        f"/v1/posts/{post_id}", json={"scheduledTime": when}, headers=caller.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scheduledTime"].startswith(when[:19])
    assert body["deliveries"][0]["runAt"].startswith(when[:19])
    now = await client.patch(
        f"/v1/posts/{post_id}", json={"scheduledTime": None}, headers=caller.headers
    )
    assert now.json()["status"] == "queued" and now.json()["scheduledTime"] is None


async def test_reschedule_errors(
    backend: AppContext, client: httpx.AsyncClient, caller: Caller
) -> None:
    post_id = await create(client, caller, text_post("x", scheduledTime=in_future(600)))
    url = f"/v1/posts/{post_id}"
    error = assert_error(
        await client.patch(url, json={"scheduledTime": "soon"}, headers=caller.headers),
        400,
        "validation_error",
    )
    assert error["details"]["field"] == "scheduledTime"
    assert_error(await client.patch(url, json={}, headers=caller.headers), 400, "validation_error")
    assert_error(
        await client.patch(url, json={"scheduledTime": in_future(5)}, headers=caller.headers),
        400,
        "validation_error",
    )
    await client.delete(url, headers=caller.headers)
    assert_error(
        await client.patch(url, json={"scheduledTime": in_future(900)}, headers=caller.headers),
        409,
        "conflict",
    )


async def test_validate_is_a_dry_run(backend: AppContext, client: httpx.AsyncClient) -> None:
    caller = await make_caller(backend, accounts=[("x", "x_main"), ("threads", "t1")])
    response = await client.post(
        "/v1/posts/validate", json=text_post("x", "threads"), headers=caller.headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "valid": True,
        "mediaType": "text",
        "scheduledTime": None,
        "targets": [
            {"platform": "x", "accountId": "x_main"},
            {"platform": "threads", "accountId": "t1"},
        ],
    }
    listed = (await client.get("/v1/posts", headers=caller.headers)).json()
    assert listed["data"] == []
    assert_error(
        await client.post(
            "/v1/posts/validate", json=text_post("x", text="a" * 300), headers=caller.headers
        ),
        400,
        "validation_error",
    )
    video = {
        "post": {
            "content": {
                "mediaType": "video",
                "videoUrl": "https://a.example/v.mp4",
                "platform": ["tiktok"],
            }
        }
    }
    assert_error(
        await client.post("/v1/posts/validate", json=video, headers=caller.headers),
        400,
        "missing_integrations",
    )


async def test_the_dry_run_does_not_fetch_media(client: httpx.AsyncClient, caller: Caller) -> None:
    """As its OpenAPI description says: an unreachable image passes the dry run, and only the
    real POST, which fetches it, answers upload_failed."""
    content = {"mediaType": "image", "imageUrls": ["http://127.0.0.1:9/gone.jpg"]}
    body = {"post": {"content": {**content, "platform": ["x"]}}}
    checked = await client.post("/v1/posts/validate", json=body, headers=caller.headers)
    assert checked.status_code == 200 and checked.json()["valid"] is True, checked.text
    posted = await client.post("/v1/posts", json=body, headers=caller.headers)
    assert_error(posted, 400, "upload_failed")


async def test_tenant_isolation(backend: AppContext, client: httpx.AsyncClient) -> None:
    owner, stranger = await make_caller(backend), await make_caller(backend)
    post_id = await create(client, owner, text_post("x", scheduledTime=in_future(600)))
    url = f"/v1/posts/{post_id}"
    assert_error(await client.get(url, headers=stranger.headers), 404, "not_found")
    assert_error(await client.delete(url, headers=stranger.headers), 404, "not_found")
    assert_error(
        await client.patch(url, json={"scheduledTime": None}, headers=stranger.headers),
        404,
        "not_found",
    )
    listed = (await client.get("/v1/posts", headers=stranger.headers)).json()
    assert post_id not in [p["postSubmissionId"] for p in listed["data"]]
    still = (await client.get(url, headers=owner.headers)).json()
    assert still["status"] == "scheduled"
