"""Errors per class, through the engine against faults injected into the fake."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from typing import Any

from soku.integrations.models import AccountStatus
from soku.integrations.vault import TokenVault
from soku.posts.models import Post
from tests.asgi_server import free_port
from tests.conftest import Caller
from tests.delivery.conftest import MakeHarness
from tests.delivery.harness import Harness, image_post, text_post
from tests.media_files import MediaServer


async def one_x_post(env: Harness, **fault: Any) -> tuple[Caller, str, str]:
    """A caller with one X account, the fault for its user, a worker, and a post."""
    caller = await env.caller([("x", "x_main")])
    user = await env.platform_user(caller, "x")
    if fault:
        await env.fault(user_id=user, **fault)
    env.start_worker()
    post_id = await env.create(caller, text_post("x"))
    return caller, user, post_id


async def test_rate_limited_retries_not_before_retry_after(env: Harness) -> None:
    caller, user, post_id = await one_x_post(env, on="publish", status=429, retry_after=1)
    view = await env.wait_status(caller, post_id, "published")
    [delivery] = view["deliveries"]
    assert delivery["attempts"] == 2
    assert delivery["error"] is None  # the last error is cleared once published
    first, second = await env.attempts(delivery["id"])
    assert (first.outcome, first.http_status) == ("retry", 429)
    assert first.error is not None
    assert (first.error["code"], first.error["kind"]) == ("rate_limited", "rate_limited")
    assert first.error["retryable"] is True
    assert first.error["platformResponse"]["error"]["code"] == "rate_limited"
    assert first.response == first.error["platformResponse"]  # the platform's answer
    assert first.finished_at is not None
    assert second.scheduled_for is not None
    assert (second.scheduled_for - first.finished_at).total_seconds() >= 0.95
    assert (second.started_at - first.finished_at).total_seconds() >= 0.95
    assert second.outcome == "published"
    assert len(await env.fake_posts(user)) == 1


async def test_server_errors_back_off_exponentially_then_publish(
    make_harness: MakeHarness,
) -> None:
    base, cap = 0.2, 0.5
    env = await make_harness(retry_base_seconds=base, retry_max_seconds=cap)
    caller, user, post_id = await one_x_post(env, on="publish", status=500, times=3)
    view = await env.wait_status(caller, post_id, "published")
    [delivery] = view["deliveries"]
    assert delivery["attempts"] == 4
    attempts = await env.attempts(delivery["id"])
    assert [a.outcome for a in attempts] == ["retry", "retry", "retry", "published"]
    assert [a.http_status for a in attempts] == [500, 500, 500, None]
    delays = []
    for before, after in itertools.pairwise(attempts):
        assert before.finished_at is not None and after.scheduled_for is not None
        delays.append((after.scheduled_for - before.finished_at).total_seconds())
        assert after.started_at >= after.scheduled_for  # never before its run_at
    # base * 2^(n-1), capped, each ± 20 % jitter (a few ms of slack for the clock reads).
    for delay, nominal in zip(delays, (base, 2 * base, min(cap, 4 * base)), strict=True):
        assert nominal * 0.8 - 0.02 <= delay <= nominal * 1.2 + 0.02, delays
    assert delays[0] < delays[1]
    assert len(await env.fake_posts(user)) == 1


async def test_timeout_is_retried_after_checking_the_platform(
    make_harness: MakeHarness,
) -> None:
    env = await make_harness(http_timeout_seconds=1.0)
    caller, user, post_id = await one_x_post(env, on="publish", delay=3.0)
    view = await env.wait_status(caller, post_id, "published")
    [delivery] = view["deliveries"]
    first, second = await env.attempts(delivery["id"])
    assert first.outcome == "retry"
    assert first.error is not None and first.error["kind"] == "timeout"
    assert first.http_status is None
    assert second.outcome == "published"  # the fake refused the first call: posted once now
    calls = await env.calls()
    assert (calls["publish"], calls["list"]) == (2, 1)  # reconciled before publishing again
    assert len(await env.fake_posts(user)) == 1


async def test_accepted_but_answered_too_late_is_reconciled_not_posted_twice(
    make_harness: MakeHarness,
) -> None:
    env = await make_harness(http_timeout_seconds=1.0)
    caller, user, post_id = await one_x_post(env, on="publish", accept_then_delay=3.0)
    view = await env.wait_status(caller, post_id, "published")
    [delivery] = view["deliveries"]
    first, second = await env.attempts(delivery["id"])
    assert (first.outcome, second.outcome) == ("retry", "reconciled")
    [on_fake] = await env.fake_posts(user)  # exactly one post
    assert delivery["platformPostId"] == on_fake["id"]
    assert delivery["url"] == on_fake["url"]
    assert delivery["attempts"] == 2
    calls = await env.calls()
    assert (calls["publish"], calls["list"]) == (1, 1)
    stored = await env.delivery(delivery["id"])
    assert "publish_started" not in stored.checkpoint


async def test_a_reconciliation_that_is_refused_asks_again_before_publishing(
    make_harness: MakeHarness,
) -> None:
    """A 429 (or any definite refusal) of the reconciliation call says nothing about the
    earlier publish call: the next attempt must ask again, not publish a second time."""
    env = await make_harness(http_timeout_seconds=1.0)
    caller = await env.caller([("x", "x_main")])
    user = await env.platform_user(caller, "x")
    await env.fault(user_id=user, on="publish", accept_then_delay=3.0)
    await env.fault(user_id=user, on="list", error_code="rate_limited", retry_after=0.1)
    env.start_worker()
    post_id = await env.create(caller, text_post("x"))
    view = await env.wait_status(caller, post_id, "published", "failed", "unknown")
    [delivery] = view["deliveries"]
    outcomes = [a.outcome for a in await env.attempts(delivery["id"])]
    assert outcomes == ["retry", "retry", "reconciled"]
    [on_fake] = await env.fake_posts(user)  # exactly one post
    assert delivery["platformPostId"] == on_fake["id"]
    calls = await env.calls()
    assert (calls["publish"], calls["list"]) == (1, 2)


async def test_connection_refused_is_retried(env: Harness) -> None:
    good = env.ctx.settings.sandbox_base_url
    closed = f"http://127.0.0.1:{free_port()}"
    env.ctx.settings.sandbox_base_url = closed
    caller, user, post_id = await one_x_post(env)
    view = await env.wait_for(
        caller, post_id, lambda v: v["deliveries"][0]["error"] is not None, what="an error"
    )
    [delivery] = view["deliveries"]
    assert delivery["status"] in ("queued", "processing")
    assert delivery["error"]["code"] == "connection_failed"
    assert closed not in delivery["error"]["message"]  # an address is not the caller's business
    assert delivery["error"]["retryable"] is True
    env.ctx.settings.sandbox_base_url = good  # the platform is back
    view = await env.wait_status(caller, post_id, "published")
    attempts = await env.attempts(view["deliveries"][0]["id"])
    assert attempts[-1].outcome == "published"
    assert {a.outcome for a in attempts[:-1]} == {"retry"}
    assert all(a.error and a.error["kind"] == "connection" for a in attempts[:-1])
    assert all(a.error and a.error["origin"] == closed for a in attempts[:-1])  # the operator's
    # A refused connection cannot have posted anything: no reconciliation needed.
    assert (await env.calls())["list"] == 0
    assert len(await env.fake_posts(user)) == 1


async def test_a_plain_text_answer_is_kept_without_the_accounts_tokens(env: Harness) -> None:
    """An error page that quotes the request (the fake's `plain_text` fault) is kept and shown
    as text, with the account's token blanked: as sent (`Bearer …`) and on its own."""
    caller, _user, post_id = await one_x_post(env, on="publish", status=400, plain_text=True)
    view = await env.wait_status(caller, post_id, "failed")
    [delivery] = view["deliveries"]
    shown = delivery["error"]["platformResponse"]
    assert isinstance(shown, str) and shown.startswith("400 bad_request")
    assert "Bearer [redacted]" in shown and "Refused token: [redacted]" in shown
    account = await env.account(caller, "x")
    token = TokenVault(env.ctx.settings.resolved_secret_key).open(account.access_token)
    assert token and token not in json.dumps(view)


async def test_permanent_error_fails_at_once(env: Harness) -> None:
    caller, user, post_id = await one_x_post(env, on="publish", error_code="duplicate_content")
    view = await env.wait_status(caller, post_id, "failed")
    [delivery] = view["deliveries"]
    assert (delivery["status"], delivery["attempts"]) == ("failed", 1)
    error = delivery["error"]
    assert error["code"] == "duplicate_content"
    assert error["retryable"] is False
    assert "not retried" in error["message"]
    assert error["platformResponse"]["error"]["code"] == "duplicate_content"
    assert error["platformResponse"]["error"]["status"] == 400
    [attempt] = await env.attempts(delivery["id"])
    assert (attempt.outcome, attempt.http_status) == ("failed", 400)
    assert attempt.response == error["platformResponse"]
    assert attempt.finished_at is not None and attempt.started_at <= attempt.finished_at
    assert (delivery["platformPostId"], delivery["url"]) == (None, None)
    assert await env.fake_posts(user) == []


async def test_expired_token_is_refreshed_and_the_call_repeated(env: Harness) -> None:
    caller = await env.caller([("x", "x_main")])
    before = await env.account(caller, "x")
    user = before.platform_user_id
    await env.fault(user_id=user, on="publish", error_code="token_expired")
    env.start_worker()
    post_id = await env.create(caller, text_post("x"))
    view = await env.wait_status(caller, post_id, "published")
    [delivery] = view["deliveries"]
    assert delivery["attempts"] == 1
    [attempt] = await env.attempts(delivery["id"])
    assert attempt.outcome == "published"
    calls = await env.calls()
    assert (calls["refresh"], calls["publish"]) == (1, 2)
    after = await env.account(caller, "x")
    assert after.status == AccountStatus.connected
    assert after.access_token != before.access_token  # the new tokens were stored
    assert after.refresh_token != before.refresh_token
    assert after.expires_at is not None
    assert len(await env.fake_posts(user)) == 1


async def test_refused_refresh_needs_reauth_and_fails_with_a_clear_code(env: Harness) -> None:
    caller = await env.caller([("x", "x_main")])
    user = await env.platform_user(caller, "x")
    await env.fault(user_id=user, on="publish", error_code="token_expired")
    await env.fault(on="refresh", status=400, error_code="invalid_grant")
    env.start_worker()
    post_id = await env.create(caller, text_post("x"))
    view = await env.wait_status(caller, post_id, "failed")
    [delivery] = view["deliveries"]
    assert delivery["attempts"] == 1
    error = delivery["error"]
    assert error["code"] == "reauth_required"
    assert error["retryable"] is False
    assert error["message"].lower().count("connect") == 1  # what to do, said once
    assert (await env.account(caller, "x")).status == AccountStatus.needs_reauth
    [attempt] = await env.attempts(delivery["id"])
    assert attempt.outcome == "failed"
    assert (await env.calls())["refresh"] == 1
    assert await env.fake_posts(user) == []


async def test_gives_up_after_max_attempts(make_harness: MakeHarness) -> None:
    env = await make_harness(retry_max_attempts=3)
    caller, user, post_id = await one_x_post(env, on="publish", status=503, times=10)
    view = await env.wait_status(caller, post_id, "failed")
    [delivery] = view["deliveries"]
    assert delivery["attempts"] == 3
    assert delivery["error"]["code"] == "server_error"
    assert delivery["error"]["retryable"] is False
    assert "gave up after 3 attempts" in delivery["error"]["message"]
    attempts = await env.attempts(delivery["id"])
    assert [a.outcome for a in attempts] == ["retry", "retry", "failed"]
    assert await env.fake_posts(user) == []


async def test_token_refreshed_once_per_attempt(env: Harness) -> None:
    caller, user, post_id = await one_x_post(env, on="publish", error_code="token_expired", times=2)
    view = await env.wait_status(caller, post_id, "failed")
    [delivery] = view["deliveries"]
    # refused again after its refresh: only the user can help (a revoked token, say)
    assert (delivery["attempts"], delivery["error"]["code"]) == (1, "reauth_required")
    assert "was refreshed and still refused" in delivery["error"]["message"]
    assert (await env.account(caller, "x")).status == AccountStatus.needs_reauth
    calls = await env.calls()
    assert (calls["refresh"], calls["publish"]) == (1, 2)
    assert await env.fake_posts(user) == []


async def test_retrying_a_post_that_may_have_gone_out_checks_the_platform_first(
    make_harness: MakeHarness,
) -> None:
    env = await make_harness(retry_max_attempts=1)
    # The fake creates the post, then answers 500: the engine cannot know it went out.
    caller, user, post_id = await one_x_post(env, on="publish", status=500, accept_then_delay=0)
    view = await env.wait_status(caller, post_id, "failed")
    [delivery] = view["deliveries"]
    assert "gave up after 1 attempts" in delivery["error"]["message"]
    assert len(await env.fake_posts(user)) == 1

    response = await env.api.post(f"/v1/posts/{post_id}/retry", headers=caller.headers)
    assert response.status_code == 200, response.text
    view = await env.wait_status(caller, post_id, "published")
    [on_fake] = await env.fake_posts(user)  # still exactly one post
    assert view["deliveries"][0]["platformPostId"] == on_fake["id"]
    outcomes = [a.outcome for a in await env.attempts(delivery["id"])]
    assert outcomes == ["failed", "reconciled"]


async def _failed_image_post(env: Harness, media_server: MediaServer) -> tuple[Caller, str, str]:
    """A two-image post to X that X refused for good (duplicate content): failed."""
    caller = await env.caller([("x", "x_main")])
    user = await env.platform_user(caller, "x")
    await env.fault(user_id=user, on="publish", error_code="duplicate_content")
    env.start_worker()
    post_id = await env.create(caller, image_post(media_server, "x", count=2))
    await env.wait_status(caller, post_id, "failed")
    return caller, user, post_id


async def test_retrying_after_a_definite_refusal_starts_clean(
    env: Harness, media_server: MediaServer
) -> None:
    caller, user, post_id = await _failed_image_post(env, media_server)
    response = await env.api.post(f"/v1/posts/{post_id}/retry", headers=caller.headers)
    assert response.status_code == 200, response.text
    view = await env.wait_status(caller, post_id, "published")
    [delivery] = view["deliveries"]
    assert [a.outcome for a in await env.attempts(delivery["id"])] == ["failed", "published"]
    calls = await env.calls()
    assert (calls["media"], calls["publish"], calls["list"]) == (4, 2, 0)  # uploaded afresh
    assert len(await env.fake_posts(user)) == 1


async def test_a_retried_post_whose_media_was_deleted_fails_rather_than_posts_without_it(
    env: Harness, media_server: MediaServer
) -> None:
    caller, user, post_id = await _failed_image_post(env, media_server)
    async with env.ctx.db.read() as session:
        post = await session.get(Post, uuid.UUID(post_id))
        assert post is not None
        first, _second = post.media_ids
    # a finished post does not hold its media: deleting one is allowed
    deleted = await env.api.delete(f"/v1/media/{first}", headers=caller.headers)
    assert deleted.status_code == 204, deleted.text
    response = await env.api.post(f"/v1/posts/{post_id}/retry", headers=caller.headers)
    assert response.status_code == 200, response.text
    view = await env.wait_status(caller, post_id, "failed", "published")
    [delivery] = view["deliveries"]
    assert (view["status"], delivery["error"]["code"]) == ("failed", "media_not_found")
    assert first in delivery["error"]["message"]
    assert await env.fake_posts(user) == []  # not posted with one image of the two


async def test_a_worker_with_another_secret_key_says_so_and_another_worker_delivers(
    env: Harness,
) -> None:
    from soku.context import AppContext
    from soku.delivery.worker import Worker

    caller = await env.caller([("x", "x_main")])  # its tokens sealed with the API's key
    fields = env.ctx.settings.model_dump()
    other = AppContext.build(type(env.ctx.settings)(**{**fields, "secret_key": "not-the-same"}))
    try:
        worker = Worker(other)
        task = asyncio.create_task(worker.run())
        post_id = await env.create(caller, text_post("x"))
        view = await env.wait_for(
            caller, post_id, lambda v: v["deliveries"][0]["error"] is not None, what="an error"
        )
        error = view["deliveries"][0]["error"]
        assert (error["code"], error["retryable"]) == ("token_unreadable", True)
        assert "SOKU_SECRET_KEY" in error["message"]
        worker.stop()
        await asyncio.wait_for(task, timeout=10)
    finally:
        await other.aclose()
    env.start_worker()  # the key the tokens were sealed with
    await env.wait_status(caller, post_id, "published")
    assert len(await env.fake_posts(await env.platform_user(caller, "x"))) == 1
