"""The compose form: the same checks, admission and idempotency as `POST /v1/posts`."""

from __future__ import annotations

import datetime as dt
import re

import httpx

from soku.auth.models import SubscriptionStatus
from soku.context import AppContext
from tests.conftest import make_caller
from tests.dashboard.conftest import refuses_csrf, sign_in
from tests.media_files import MediaServer

ACCOUNTS = [("x", "x_main"), ("instagram", "ig_main"), ("instagram", "ig_brand")]
_KEY = re.compile(r'name="key" value="([^"]+)"')


async def compose(http: httpx.AsyncClient) -> str:
    """The compose page's idempotency key."""
    page = await http.get("/dashboard/posts/new")
    assert page.status_code == 200
    found = _KEY.search(page.text)
    assert found
    return found[1]


async def test_a_post_is_created_once_however_often_the_form_is_sent(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=ACCOUNTS)
    csrf = await sign_in(browser, caller.key)
    page = await browser.get("/dashboard/posts/new")
    for value in ('value="x:x_main"', 'value="instagram:ig_main"', 'value="instagram:ig_brand"'):
        assert value in page.text
    form = {
        "csrf": csrf,
        "key": await compose(browser),
        "text": "Hello from the dashboard\r\nsecond line",
        "target": "x:x_main",
        "offset": "Z",
    }
    await refuses_csrf(
        browser, "/dashboard/posts/new", {k: v for k, v in form.items() if k != "csrf"}
    )
    first = await browser.post("/dashboard/posts/new", data=form)
    assert first.status_code == 303, first.text
    location = first.headers["location"]
    post_id = location.split("/dashboard/posts/")[1].split("?")[0]
    again = await browser.post("/dashboard/posts/new", data=form)
    assert again.status_code == 303 and again.headers["location"] == location
    api = await browser.get(f"/v1/posts/{post_id}", headers=caller.headers)
    assert api.status_code == 200
    body = api.json()
    assert body["content"]["text"] == "Hello from the dashboard\nsecond line"
    assert body["content"]["platform"] == [{"platform": "x", "accountId": "x_main"}]
    assert [d["accountId"] for d in body["deliveries"]] == ["x_main"]
    listed = await browser.get("/v1/posts", headers=caller.headers)
    assert len(listed.json()["data"]) == 1
    shown = await browser.get(location)
    assert "The post was accepted." in shown.text
    # a new form is a new post, even with the same text
    other = await browser.post("/dashboard/posts/new", data={**form, "key": await compose(browser)})
    assert other.status_code == 303 and other.headers["location"] != location


async def test_a_scheduled_post_keeps_its_offset(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=ACCOUNTS)
    csrf = await sign_in(browser, caller.key)
    zone = dt.timezone(dt.timedelta(hours=-4))
    when = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).astimezone(zone)
    form = {
        "csrf": csrf,
        "key": await compose(browser),
        "text": "Later",
        "target": "x:x_main",
        "at": when.strftime("%Y-%m-%dT%H:%M"),
        "offset": "-04:00",
    }
    created = await browser.post("/dashboard/posts/new", data=form)
    assert created.status_code == 303, created.text
    post_id = created.headers["location"].split("/")[-1].split("?")[0]
    api = (await browser.get(f"/v1/posts/{post_id}", headers=caller.headers)).json()
    assert api["status"] == "scheduled"
    expected = when.replace(second=0, microsecond=0).astimezone(dt.UTC)
    assert dt.datetime.fromisoformat(api["scheduledTime"]) == expected


async def test_validation_problems_show_beside_the_form_which_keeps_what_was_typed(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=ACCOUNTS)
    csrf = await sign_in(browser, caller.key)
    key = await compose(browser)
    long_text = "é" * 150 + " <b>bold</b> " + "🙂" * 70  # X counts weighted characters
    form = {
        "csrf": csrf,
        "key": key,
        "text": long_text,
        "target": ["x:x_main", "instagram:ig_brand"],
        "media_urls": "",
        "at": "2020-01-01T09:00",
        "offset": "Z",
    }
    refused = await browser.post("/dashboard/posts/new", data=form)
    assert refused.status_code == 400
    html = refused.text
    assert 'id="text-problems"' in html and "280" in html
    assert 'id="media-problems"' in html  # instagram needs an image or a video
    assert 'id="schedule-problems"' in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold" not in html
    assert 'value="x:x_main" checked' in html and 'value="instagram:ig_brand" checked' in html
    assert 'value="instagram:ig_main">' in html
    assert f'name="key" value="{key}"' in html
    assert 'value="2020-01-01T09:00"' in html
    assert (await browser.get("/v1/posts", headers=caller.headers)).json()["data"] == []
    # the same form, corrected, goes through with the same key
    fixed = {**form, "text": "short", "target": "x:x_main", "at": ""}
    assert (await browser.post("/dashboard/posts/new", data=fixed)).status_code == 303


async def test_a_text_only_instagram_post_and_missing_accounts_are_refused(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=ACCOUNTS)
    csrf = await sign_in(browser, caller.key)
    base = {"csrf": csrf, "key": await compose(browser), "text": "Just words", "offset": "Z"}
    instagram = await browser.post(
        "/dashboard/posts/new", data={**base, "target": "instagram:ig_main"}
    )
    assert instagram.status_code == 400
    assert 'id="media-problems"' in instagram.text and "instagram" in instagram.text
    gone = await browser.post("/dashboard/posts/new", data={**base, "target": "x:x_other"})
    assert gone.status_code == 400
    assert 'id="targets-problems"' in gone.text
    assert "No x account with accountId &#39;x_other&#39; is connected" in gone.text
    unconnected = await browser.post("/dashboard/posts/new", data={**base, "target": "threads:th"})
    assert unconnected.status_code == 400
    assert "The following platforms are not connected: threads." in unconnected.text
    nothing = await browser.post("/dashboard/posts/new", data=base)
    assert nothing.status_code == 400 and 'id="targets-problems"' in nothing.text
    assert (await browser.get("/v1/posts", headers=caller.headers)).json()["data"] == []


async def test_the_same_form_sent_with_other_content_gets_a_fresh_key(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=ACCOUNTS)
    csrf = await sign_in(browser, caller.key)
    form = {"csrf": csrf, "key": await compose(browser), "text": "one", "target": "x:x_main"}
    assert (await browser.post("/dashboard/posts/new", data=form)).status_code == 303
    changed = await browser.post("/dashboard/posts/new", data={**form, "text": "two"})
    assert changed.status_code == 409
    assert "already sent with other content" in changed.text
    fresh = _KEY.search(changed.text)
    assert fresh and fresh[1] != form["key"]
    resent = await browser.post(
        "/dashboard/posts/new", data={**form, "text": "two", "key": fresh[1]}
    )
    assert resent.status_code == 303
    assert len((await browser.get("/v1/posts", headers=caller.headers)).json()["data"]) == 2


async def test_an_inactive_subscription_cannot_post_from_the_dashboard(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, subscription=SubscriptionStatus.canceled, accounts=ACCOUNTS)
    csrf = await sign_in(browser, caller.key)
    form = {"csrf": csrf, "key": await compose(browser), "text": "no", "target": "x:x_main"}
    refused = await browser.post("/dashboard/posts/new", data=form)
    assert refused.status_code == 403
    assert "Subscription inactive or expired" in refused.text


async def test_an_image_post_fetches_its_media_as_the_api_does(
    backend: AppContext, browser: httpx.AsyncClient, media_server: MediaServer
) -> None:
    caller = await make_caller(backend, accounts=ACCOUNTS)
    csrf = await sign_in(browser, caller.key)
    images = media_server.images(2, "jpg")  # Instagram takes JPEG only
    form = {
        "csrf": csrf,
        "key": await compose(browser),
        "text": "Two pictures",
        "target": ["x:x_main", "instagram:ig_brand"],
        "media_urls": "\n".join(images) + "\n",
    }
    created = await browser.post("/dashboard/posts/new", data=form)
    assert created.status_code == 303, created.text
    post_id = created.headers["location"].split("/")[-1].split("?")[0]
    api = (await browser.get(f"/v1/posts/{post_id}", headers=caller.headers)).json()
    assert api["content"]["mediaUrls"] == images
    assert [d["accountId"] for d in api["deliveries"]] == ["x_main", "ig_brand"]
    page = await browser.get(created.headers["location"])
    assert all(f'href="{url}"' in page.text for url in images)
    dead = {**form, "key": await compose(browser), "media_urls": media_server.url("none.jpg")}
    refused = await browser.post("/dashboard/posts/new", data=dead)
    assert refused.status_code == 400 and "upload_failed" not in refused.text
    assert 'class="problem"' in refused.text
