"""The webhooks pages: endpoints, adding one (secret shown once), ping, rotate, delete, and
what was sent to each endpoint."""

from __future__ import annotations

import re
import uuid

import httpx
from sqlalchemy import update

from soku.auth.models import User
from soku.context import AppContext
from soku.integrations.vault import TokenVault
from soku.webhooks import repository as repo
from soku.webhooks import service
from tests.conftest import make_caller
from tests.dashboard.conftest import csrf_of, refuses_csrf, sign_in

HOOK = "https://hooks.example.com/soku?from=<dashboard>"
_SECRET = re.compile(r'<code class="copy">(whsec_[^<]+)</code>')


async def add(http: httpx.AsyncClient, csrf: str, **fields: object) -> httpx.Response:
    return await http.post("/dashboard/webhooks", data={"csrf": csrf, "url": HOOK, **fields})


def endpoint_id(page: httpx.Response) -> uuid.UUID:
    found = re.search(r'action="/dashboard/webhooks/([0-9a-f-]+)/test"', page.text)
    assert found, page.text
    return uuid.UUID(found[1])


async def sealed_secret(backend: AppContext, user_id: uuid.UUID, target: uuid.UUID) -> str:
    row = await backend.db.run_read(lambda c: repo.endpoint_of(c, user_id, target))
    return str(TokenVault(backend.settings.resolved_secret_key).open(row.secret))


async def test_adding_an_endpoint_shows_its_secret_once(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    assert (await browser.get("/dashboard/webhooks")).status_code == 303
    caller = await make_caller(backend, accounts=[])
    csrf = await sign_in(browser, caller.key)
    empty = await browser.get("/dashboard/webhooks")
    assert empty.status_code == 200 and "No endpoints yet." in empty.text
    await refuses_csrf(browser, "/dashboard/webhooks", {"url": HOOK})
    created = await add(browser, csrf, event=["post.failed"], description="CRM <sync>")
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"  # it shows the secret
    secret = _SECRET.search(created.text)
    assert secret
    target = endpoint_id(created)
    assert await sealed_secret(backend, caller.user_id, target) == secret[1]
    api = await browser.get(f"/v1/webhooks/{target}", headers=caller.headers)
    assert api.json()["events"] == ["post.failed"] and api.json()["url"] == HOOK
    listed = await browser.get("/dashboard/webhooks")
    assert secret[1] not in listed.text
    assert "hooks.example.com/soku?from=&lt;dashboard&gt;" in listed.text
    assert "CRM &lt;sync&gt;" in listed.text and "none yet" in listed.text
    shown = await browser.get(f"/dashboard/webhooks/{target}")
    assert shown.status_code == 200 and secret[1] not in shown.text


async def test_the_apis_refusals_show_with_what_was_typed(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    csrf = await sign_in(browser, caller.key)
    private = await browser.post(
        "/dashboard/webhooks", data={"csrf": csrf, "url": "http://127.0.0.1/hook"}
    )
    assert private.status_code == 400
    assert "webhooks go to public addresses" in private.text
    assert 'value="http://127.0.0.1/hook"' in private.text
    odd = await add(browser, csrf, event="post.sometimes")
    assert odd.status_code == 400 and 'class="problem"' in odd.text
    assert (await add(browser, csrf)).status_code == 201
    twice = await add(browser, csrf)
    assert twice.status_code == 409 and "exists" in twice.text


async def test_ping_rotate_and_delete(backend: AppContext, browser: httpx.AsyncClient) -> None:
    caller = await make_caller(backend, accounts=[])
    csrf = await sign_in(browser, caller.key)
    target = endpoint_id(await add(browser, csrf))
    base = f"/dashboard/webhooks/{target}"
    for action in ("test", "rotate", "delete"):
        await refuses_csrf(browser, f"{base}/{action}", {})
    pinged = await browser.post(f"{base}/test", data={"csrf": csrf})
    assert pinged.status_code == 303 and pinged.headers["location"] == f"{base}?done=pinged"
    page = await browser.get(pinged.headers["location"])
    assert "A ping event was queued" in page.text
    assert "ping" in page.text and "status-pending" in page.text
    listed = await browser.get("/dashboard/webhooks")
    assert "status-pending" in listed.text and "none yet" not in listed.text

    before = await sealed_secret(backend, caller.user_id, target)
    rotated = await browser.post(f"{base}/rotate", data={"csrf": csrf})
    assert rotated.status_code == 200
    assert rotated.headers["cache-control"] == "no-store"  # it shows the new secret
    secret = _SECRET.search(rotated.text)
    assert secret and secret[1] != before
    assert await sealed_secret(backend, caller.user_id, target) == secret[1]
    assert "also signs until" in rotated.text

    confirm = await browser.get(f"{base}/delete")
    assert confirm.status_code == 200 and "Yes, delete this endpoint" in confirm.text
    deleted = await browser.post(f"{base}/delete", data={"csrf": csrf_of(confirm.text)})
    assert deleted.status_code == 303 and deleted.headers["location"].endswith("?done=deleted")
    assert (await browser.get(f"/v1/webhooks/{target}", headers=caller.headers)).status_code == 404
    assert (await browser.get(base)).status_code == 404


async def test_anothers_endpoint_is_404(backend: AppContext, browser: httpx.AsyncClient) -> None:
    caller = await make_caller(backend, accounts=[])
    other = await make_caller(backend, accounts=[])
    made = await browser.post(
        "/v1/webhooks", json={"url": "https://hooks.example.com/theirs"}, headers=other.headers
    )
    theirs = made.json()["id"]
    csrf = await sign_in(browser, caller.key)
    listed = await browser.get("/dashboard/webhooks")
    assert "theirs" not in listed.text
    for ident in (theirs, str(uuid.uuid4()), "nope"):
        base = f"/dashboard/webhooks/{ident}"
        assert (await browser.get(base)).status_code == 404, ident
        assert (await browser.get(f"{base}/delete")).status_code == 404, ident
        for action in ("test", "rotate", "delete"):
            refused = await browser.post(f"{base}/{action}", data={"csrf": csrf})
            assert refused.status_code == 404, (ident, action)
            assert "No webhook" in refused.text and "whsec_" not in refused.text
    kept = await browser.get(f"/v1/webhooks/{theirs}/deliveries", headers=other.headers)
    assert kept.status_code == 200 and kept.json()["data"] == []


async def test_an_inactive_subscription_cannot_change_webhooks_from_the_dashboard(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    csrf = await sign_in(browser, caller.key)
    target = endpoint_id(await add(browser, csrf))
    async with backend.db.transaction() as session:
        await session.execute(
            update(User).where(User.id == caller.user_id).values(subscription_status="canceled")
        )
    for path in (
        "/dashboard/webhooks",
        f"/dashboard/webhooks/{target}/test",
        f"/dashboard/webhooks/{target}/rotate",
        f"/dashboard/webhooks/{target}/delete",
    ):
        refused = await browser.post(path, data={"csrf": csrf, "url": HOOK + "&again"})
        assert refused.status_code == 403, path
        assert "Subscription inactive or expired" in refused.text
    rows = await backend.db.run_read(lambda c: repo.endpoints_of(c, caller.user_id))
    assert [row.id for row in rows] == [target]
    assert not await backend.db.run_read(
        lambda c: service.deliveries_of(c, caller.user_id, target, 10)
    )


async def test_deleting_an_endpoint_asks_first(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    csrf = await sign_in(browser, caller.key)
    target = endpoint_id(await add(browser, csrf, description="CRM <sync>"))
    base = f"/dashboard/webhooks/{target}"
    page = await browser.get(base)
    assert f'href="{base}/delete"' in page.text
    assert f'action="{base}/delete"' not in page.text  # no one-click delete
    confirm = await browser.get(f"{base}/delete")
    assert confirm.status_code == 200
    assert "Yes, delete this endpoint" in confirm.text and f'action="{base}/delete"' in confirm.text
    assert "hooks.example.com/soku?from=&lt;dashboard&gt;" in confirm.text
    assert "CRM &lt;sync&gt;" in confirm.text and f'href="{base}">Keep it' in confirm.text
    assert csrf_of(confirm.text) == csrf
    api = await browser.get(f"/v1/webhooks/{target}", headers=caller.headers)
    assert api.status_code == 200  # showing the question deletes nothing
    await refuses_csrf(browser, f"{base}/delete", {})
    assert (await browser.get(f"/v1/webhooks/{target}", headers=caller.headers)).status_code == 200
    browser.cookies.clear()
    assert (await browser.get(f"{base}/delete")).status_code == 303  # signed out
