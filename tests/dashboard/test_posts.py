"""The posts pages: the list with the API's filters, one post with its deliveries and their
attempts, and cancel, retry and reschedule as forms."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
from sqlalchemy import select, update

from soku.auth.models import User
from soku.context import AppContext
from soku.delivery.models import Delivery, DeliveryAttempt
from tests.api.helpers import in_future, text_post
from tests.conftest import make_caller
from tests.dashboard.conftest import api_post, refuses_csrf, sign_in

ACCOUNTS = [("x", "x_main"), ("threads", "threads_main"), ("linkedin", "li_main")]


async def test_the_list_shows_the_users_posts_newest_first(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=ACCOUNTS)
    other = await make_caller(backend, accounts=ACCOUNTS)
    first = await api_post(browser, caller.key, text_post("x", text="The first one"))
    second = await api_post(
        browser,
        caller.key,
        text_post("threads", "linkedin", text="Second", scheduledTime=in_future(900)),
    )
    theirs = await api_post(browser, other.key, text_post("x", text="Not yours"))
    await sign_in(browser, caller.key)
    page = await browser.get("/dashboard/posts")
    assert page.status_code == 200
    assert page.text.index(second) < page.text.index(first)
    assert "The first one" in page.text and theirs not in page.text and "Not yours" not in page.text
    assert "status-scheduled" in page.text and "linkedin" in page.text
    only_x = await browser.get("/dashboard/posts", params={"platform": "x"})
    assert first in only_x.text and second not in only_x.text
    scheduled = await browser.get("/dashboard/posts", params={"status": "scheduled"})
    assert second in scheduled.text and first not in scheduled.text
    today = dt.datetime.now(dt.UTC).date()
    later = await browser.get(
        "/dashboard/posts", params={"from": str(today + dt.timedelta(days=1))}
    )
    assert first not in later.text and "No posts match" in later.text
    through = await browser.get("/dashboard/posts", params={"through": str(today)})
    assert first in through.text and second in through.text


async def test_the_list_pages_with_the_apis_cursor_and_refuses_bad_filters(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=ACCOUNTS)
    ids = [await api_post(browser, caller.key, text_post("x", text=f"n{n}")) for n in range(22)]
    await sign_in(browser, caller.key)
    page = await browser.get("/dashboard/posts", params={"platform": "x"})
    assert ids[-1] in page.text and ids[1] not in page.text
    assert "Older posts" in page.text
    link = page.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    assert "platform=x" in link
    older = await browser.get(link.replace("&amp;", "&"))
    assert ids[0] in older.text and ids[1] in older.text and ids[-1] not in older.text
    assert "Older posts" not in older.text and "First page" in older.text
    for params in ({"cursor": "garbage"}, {"status": "lost"}, {"from": "yesterday"}):
        refused = await browser.get("/dashboard/posts", params=params)
        assert refused.status_code == 400, params
        assert 'class="problem"' in refused.text


async def test_pages_need_a_session_and_anothers_post_is_404(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=ACCOUNTS)
    other = await make_caller(backend, accounts=ACCOUNTS)
    theirs = await api_post(browser, other.key, text_post("x", scheduledTime=in_future(900)))
    for path in ("/dashboard/posts", f"/dashboard/posts/{theirs}", "/dashboard/posts/new"):
        answer = await browser.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/dashboard/login?next=")
    csrf = await sign_in(browser, caller.key)
    for path in (
        f"/dashboard/posts/{theirs}",
        f"/dashboard/posts/{uuid.uuid4()}",
        "/dashboard/posts/nope",
    ):
        answer = await browser.get(path)
        assert answer.status_code == 404, path
        assert "text/html" in answer.headers["content-type"]
        assert "No post" in answer.text
    for action in ("cancel", "retry", "reschedule"):
        answer = await browser.post(
            f"/dashboard/posts/{theirs}/{action}", data={"csrf": csrf, "now": "1"}
        )
        assert answer.status_code == 404, action
    shown = await browser.get(f"/v1/posts/{theirs}", headers={"soku-api-key": other.key})
    assert shown.json()["status"] == "scheduled"


async def test_a_post_shows_its_deliveries_attempts_and_errors_escaped(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=ACCOUNTS)
    text = "Look <script>alert('x')</script> & more"
    post_id = await api_post(browser, caller.key, text_post("x", "threads", text=text))
    now = dt.datetime.now(dt.UTC)
    answer = {"detail": "<img src=x onerror=alert(1)>", "status": 403}
    async with backend.db.transaction() as session:
        x = (
            await session.execute(
                update(Delivery)
                .where(Delivery.post_id == uuid.UUID(post_id), Delivery.platform == "x")
                .values(
                    status="failed",
                    attempts=1,
                    error={
                        "code": "forbidden",
                        "message": "The <b>token</b> was refused.",
                        "retryable": False,
                        "platformResponse": answer,
                    },
                )
                .returning(Delivery.id)
            )
        ).scalar_one()
        await session.execute(
            update(Delivery)
            .where(Delivery.post_id == uuid.UUID(post_id), Delivery.platform == "threads")
            .values(
                status="published",
                platform_post_id="th_123",
                url="https://threads.example/p/th_123",
                published_at=now,
            )
        )
        session.add(
            DeliveryAttempt(
                delivery_id=x,
                started_at=now,
                finished_at=now + dt.timedelta(seconds=2),
                outcome="failed",
                http_status=403,
                error={"code": "forbidden", "message": "refused"},
                scheduled_for=now - dt.timedelta(seconds=3),
                worker="w1",
                response={"body": "<script>bad()</script>"},
            )
        )
    await sign_in(browser, caller.key)
    page = await browser.get(f"/dashboard/posts/{post_id}")
    assert page.status_code == 200
    html = page.text
    assert "<script>" not in html and "<img src=x" not in html and "<b>token" not in html
    assert "Look &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;script&gt;bad()&lt;/script&gt;" in html
    assert "status-partially_published" in html
    assert '<a href="https://threads.example/p/th_123"' in html and "th_123" in html
    assert "forbidden" in html and "The &lt;b&gt;token&lt;/b&gt; was refused." in html
    assert "3.0 s" in html and "2.0 s" in html  # late by, took
    assert "Retry failed deliveries" in html and "Cancel the post" not in html
    listed = await browser.get("/dashboard/posts")
    assert "&lt;script&gt;" in listed.text and "<script>" not in listed.text


async def test_cancel_takes_effect_and_a_started_post_is_refused(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=ACCOUNTS)
    later = await api_post(browser, caller.key, text_post("x", scheduledTime=in_future(900)))
    started = await api_post(browser, caller.key, text_post("x", "threads", text="started"))
    async with backend.db.transaction() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.post_id == uuid.UUID(started), Delivery.platform == "x")
            .values(status="processing")
        )
    csrf = await sign_in(browser, caller.key)
    await refuses_csrf(browser, f"/dashboard/posts/{later}/cancel", {})
    done = await browser.post(f"/dashboard/posts/{later}/cancel", data={"csrf": csrf})
    assert done.status_code == 303
    assert done.headers["location"] == f"/dashboard/posts/{later}?done=cancelled"
    shown = await browser.get(done.headers["location"])
    assert "The post was cancelled." in shown.text and "status-cancelled" in shown.text
    api = await browser.get(f"/v1/posts/{later}", headers=caller.headers)
    assert api.json()["status"] == "cancelled"
    refused = await browser.post(f"/dashboard/posts/{started}/cancel", data={"csrf": csrf})
    assert refused.status_code == 409
    assert (
        f"Post {started} can&#39;t be cancelled: some deliveries have already started."
        in refused.text
    )
    api = await browser.get(f"/v1/posts/{started}", headers=caller.headers)
    assert api.json()["status"] == "processing"


async def test_retry_queues_failed_deliveries_and_refuses_when_none_failed(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=ACCOUNTS)
    post_id = await api_post(browser, caller.key, text_post("x", text="to retry"))
    csrf = await sign_in(browser, caller.key)
    refused = await browser.post(f"/dashboard/posts/{post_id}/retry", data={"csrf": csrf})
    assert refused.status_code == 409
    assert "This post has no failed deliveries to retry." in refused.text
    async with backend.db.transaction() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.post_id == uuid.UUID(post_id))
            .values(status="failed", attempts=3, error={"code": "platform_error", "message": "no"})
        )
    await refuses_csrf(browser, f"/dashboard/posts/{post_id}/retry", {})
    done = await browser.post(f"/dashboard/posts/{post_id}/retry", data={"csrf": csrf})
    assert done.status_code == 303 and done.headers["location"].endswith("?done=retried")
    api = (await browser.get(f"/v1/posts/{post_id}", headers=caller.headers)).json()
    assert api["deliveries"][0]["status"] == "queued" and api["deliveries"][0]["attempts"] == 0


async def test_reschedule_takes_effect_and_its_refusals_show(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=ACCOUNTS)
    post_id = await api_post(browser, caller.key, text_post("x", scheduledTime=in_future(900)))
    csrf = await sign_in(browser, caller.key)
    path = f"/dashboard/posts/{post_id}/reschedule"
    await refuses_csrf(browser, path, {"now": "1"})
    when = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)).astimezone(
        dt.timezone(dt.timedelta(hours=5, minutes=30))
    )
    local = when.strftime("%Y-%m-%dT%H:%M")
    done = await browser.post(path, data={"csrf": csrf, "at": local, "offset": "+05:30"})
    assert done.status_code == 303, done.text
    api = (await browser.get(f"/v1/posts/{post_id}", headers=caller.headers)).json()
    expected = when.replace(second=0, microsecond=0).astimezone(dt.UTC)
    assert dt.datetime.fromisoformat(api["scheduledTime"]) == expected
    for data, message in (
        ({"at": "2020-01-01T10:00", "offset": "Z"}, "scheduledTime"),
        ({"at": local, "offset": "soon"}, "ISO 8601"),
        ({"at": "", "offset": "Z"}, "Choose the new time"),
    ):
        refused = await browser.post(path, data={"csrf": csrf, **data})
        assert refused.status_code == 400, data
        assert message in refused.text and 'class="problem"' in refused.text
    now = await browser.post(path, data={"csrf": csrf, "now": "1"})
    assert now.status_code == 303
    api = (await browser.get(f"/v1/posts/{post_id}", headers=caller.headers)).json()
    assert api["status"] == "queued" and api["scheduledTime"] is None
    await browser.delete(f"/v1/posts/{post_id}", headers=caller.headers)
    cancelled = await api_post(browser, caller.key, text_post("x", scheduledTime=in_future(900)))
    await browser.delete(f"/v1/posts/{cancelled}", headers=caller.headers)
    refused = await browser.post(
        f"/dashboard/posts/{cancelled}/reschedule", data={"csrf": csrf, "now": "1"}
    )
    assert refused.status_code == 409
    assert "A cancelled post can&#39;t be rescheduled." in refused.text


async def test_an_inactive_subscription_cannot_change_posts_from_the_dashboard(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=ACCOUNTS)
    failed = await api_post(browser, caller.key, text_post("x", text="failed"))
    later = await api_post(browser, caller.key, text_post("x", scheduledTime=in_future(900)))
    async with backend.db.transaction() as session:
        await session.execute(
            update(Delivery).where(Delivery.post_id == uuid.UUID(failed)).values(status="failed")
        )
        await session.execute(
            update(User).where(User.id == caller.user_id).values(subscription_status="past_due")
        )
    csrf = await sign_in(browser, caller.key)
    for path, data in (
        (f"/dashboard/posts/{failed}/retry", {}),
        (f"/dashboard/posts/{later}/reschedule", {"now": "1"}),
        (f"/dashboard/posts/{later}/cancel", {}),
    ):
        refused = await browser.post(path, data={"csrf": csrf, **data})
        assert refused.status_code == 403, path
        assert "Subscription inactive or expired" in refused.text
    async with backend.db.read() as session:
        statuses = (await session.execute(select(Delivery.post_id, Delivery.status))).all()
    assert {(str(p), s) for p, s in statuses} >= {(failed, "failed"), (later, "scheduled")}
