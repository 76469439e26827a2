"""A submission's status from its deliveries, POST /retry, and `Prefer: wait`."""

from __future__ import annotations

import pytest

from soku.posts.outcome import wait_seconds
from tests.api.helpers import assert_error
from tests.delivery.harness import Harness, by_platform, in_future, text_post


async def test_partially_published_then_retried_to_published(env: Harness) -> None:
    caller = await env.caller([("x", "x_main"), ("threads", "threads_main")])
    x_user = await env.platform_user(caller, "x")
    await env.fault(user_id=x_user, on="publish", error_code="duplicate_content")
    env.start_worker()
    post_id = await env.create(caller, text_post("x", "threads"))
    view = await env.wait_status(caller, post_id, "partially_published")
    deliveries = by_platform(view)
    assert deliveries["threads"]["status"] == "published"
    assert deliveries["x"]["status"] == "failed"
    assert deliveries["x"]["error"]["code"] == "duplicate_content"

    await env.fake.delete("/_faults")  # the cause is gone (the fault was used up anyway)
    response = await env.api.post(f"/v1/posts/{post_id}/retry", headers=caller.headers)
    assert response.status_code == 200, response.text
    retried = by_platform(response.json())
    assert retried["x"]["status"] in ("queued", "processing", "publishing", "published")
    assert retried["x"]["attempts"] in (0, 1)
    assert retried["threads"] == deliveries["threads"]  # the published one is left alone

    view = await env.wait_status(caller, post_id, "published")
    assert await env.stored_status(post_id) == "published"
    x = by_platform(view)["x"]
    assert (x["status"], x["attempts"], x["error"]) == ("published", 1, None)
    assert [a.outcome for a in await env.attempts(x["id"])] == ["failed", "published"]
    assert len(await env.fake_posts(x_user)) == 1
    assert len(await env.fake_posts()) == 2

    again = await env.api.post(f"/v1/posts/{post_id}/retry", headers=caller.headers)
    error = assert_error(again, 409, "conflict")
    assert error["details"]["deliveries"] == {
        "x:x_main": "published",
        "threads:threads_main": "published",
    }


async def test_deliveries_finishing_together_leave_the_right_stored_status(
    env: Harness,
) -> None:
    platforms = ("x", "threads", "linkedin", "facebook")
    caller = await env.caller([(p, f"{p}_main") for p in platforms])
    await env.fault(on="publish", error_code="duplicate_content", times=len(platforms))
    env.start_worker()
    failed = await env.create(caller, text_post(*platforms))
    view = await env.wait_status(caller, failed, "failed")
    assert {d["status"] for d in view["deliveries"]} == {"failed"}
    published = await env.create(caller, text_post(*platforms))
    await env.wait_status(caller, published, "published")

    # Listing filters on the stored status: it must agree with the derived one.
    assert await env.stored_status(failed) == "failed"
    assert await env.stored_status(published) == "published"
    for status, post_id in (("failed", failed), ("published", published)):
        listed = await env.api.get(f"/v1/posts?status={status}", headers=caller.headers)
        assert [p["postSubmissionId"] for p in listed.json()["data"]] == [post_id]


async def test_status_is_processing_while_any_delivery_is_unfinished(env: Harness) -> None:
    caller = await env.caller([("x", "x_main"), ("threads", "threads_main")])
    threads_user = await env.platform_user(caller, "threads")
    await env.fault(user_id=threads_user, on="publish", status=429, retry_after=1)
    env.start_worker()
    post_id = await env.create(caller, text_post("x", "threads"))
    view = await env.wait_for(
        caller,
        post_id,
        lambda v: (
            by_platform(v)["x"]["status"] == "published"
            and by_platform(v)["threads"]["status"] == "queued"
        ),
        what="x published, threads waiting for its retry",
    )
    assert view["status"] == "processing"
    assert by_platform(view)["threads"]["error"]["code"] == "rate_limited"
    await env.wait_status(caller, post_id, "published")


async def test_prefer_wait_answers_with_the_outcome(env: Harness) -> None:
    caller = await env.caller([("x", "x_main"), ("threads", "threads_main")])
    env.start_worker()
    response = await env.submit(caller, text_post("x", "threads"), {"Prefer": "wait=5"})
    assert response.status_code == 201, response.text
    assert response.headers["preference-applied"] == "wait=5"
    body = response.json()
    assert set(body) == {"postSubmissionId", "status", "deliveries"}
    assert body["status"] == "published"
    assert len(body["deliveries"]) == 2
    for delivery in body["deliveries"]:
        assert delivery["status"] == "published"
        assert delivery["platformPostId"] and delivery["url"]
    assert body == {
        key: value
        for key, value in (await env.get(caller, body["postSubmissionId"])).items()
        if key in body
    }


async def test_prefer_wait_with_a_failed_delivery_is_dispatch_failed(env: Harness) -> None:
    caller = await env.caller([("x", "x_main"), ("threads", "threads_main")])
    x_user = await env.platform_user(caller, "x")
    await env.fault(user_id=x_user, on="publish", error_code="duplicate_content")
    env.start_worker()
    response = await env.submit(caller, text_post("x", "threads"), {"Prefer": "wait=5"})
    error = assert_error(response, 500, "dispatch_failed")
    assert response.headers["preference-applied"] == "wait=5"  # waited on, as a 201 is
    details = error["details"]
    post_id = details["postSubmissionId"]
    assert details["status"] == "partially_published"
    deliveries = by_platform(details)
    assert deliveries["x"]["status"] == "failed"
    assert deliveries["x"]["error"]["code"] == "duplicate_content"
    assert deliveries["threads"]["status"] == "published"
    assert "x (x_main)" in error["message"]
    view = await env.get(caller, post_id)  # the post exists all the same
    assert view["status"] == "partially_published"


async def test_a_replay_with_prefer_wait_answers_the_stored_201_at_once(env: Harness) -> None:
    caller = await env.caller([("x", "x_main"), ("threads", "threads_main")])
    x_user = await env.platform_user(caller, "x")
    await env.fault(user_id=x_user, on="publish", error_code="duplicate_content")
    env.start_worker()
    keyed = text_post("x", "threads")
    headers = {"Prefer": "wait=5", "Idempotency-Key": "k-1"}
    failed = await env.submit(caller, keyed, headers)
    failed_id = assert_error(failed, 500, "dispatch_failed")["details"]["postSubmissionId"]
    unkeyed = text_post("x", "threads")  # another text
    published = await env.submit(caller, unkeyed, {"Prefer": "wait=5"})  # a derived key
    assert published.status_code == 201, published.text
    published_id = published.json()["postSubmissionId"]

    for body, extra, post_id in ((keyed, headers, failed_id), (unkeyed, {}, published_id)):
        again = await env.submit(caller, body, {"Prefer": "wait=5", **extra})
        assert again.status_code == 201, again.text
        assert again.json() == {"postSubmissionId": post_id}  # as stored: not waited on again
        assert "preference-applied" not in again.headers
    assert len(await env.fake_posts(x_user)) == 1  # the second post's; nothing sent twice


async def test_prefer_wait_without_a_worker_answers_when_the_wait_is_over(env: Harness) -> None:
    caller = await env.caller([("x", "x_main")])
    response = await env.submit(caller, text_post("x"), {"Prefer": "wait=1"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "queued"
    assert body["deliveries"][0]["status"] == "queued"


async def test_prefer_wait_is_not_applied_to_a_scheduled_post(env: Harness) -> None:
    caller = await env.caller([("x", "x_main")])
    env.start_worker()
    body = text_post("x", scheduledTime=in_future(60))
    response = await env.submit(caller, body, {"Prefer": "wait=5"})
    assert response.status_code == 201, response.text
    assert "preference-applied" not in response.headers
    assert set(response.json()) == {"postSubmissionId"}


@pytest.mark.parametrize(
    ("prefer", "seconds"),
    [
        ("wait=5", 5),
        ('wait="5"', 5),
        ("respond-async, WAIT = 7", 7),
        ("wait=99", 30),
        ('wait="5', 0),
    ],
)
def test_prefer_wait_reads_a_token_or_a_quoted_string(prefer: str, seconds: int) -> None:
    assert wait_seconds(prefer) == seconds
