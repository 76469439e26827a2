"""The Webhooks API: adding, listing, reading and deleting endpoints, the checks on their URL
and events, the per-user limit, the test ping and tenant isolation; on SQLite and PostgreSQL.
What the sender does with them is in tests/delivery/test_webhooks.py."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
import pytest

from soku.context import AppContext
from soku.integrations.vault import TokenVault
from soku.webhooks import repository as repo
from tests.api.helpers import assert_error, reasons
from tests.conftest import Caller, make_caller

pytestmark = pytest.mark.asyncio
HOOK = "https://hooks.example.com/soku"
VIEW_KEYS = {"id", "url", "events", "description", "createdAt", "previousSecretValidUntil"}
ALL_EVENTS = ["post.published", "post.partially_published", "post.failed"]


async def add(client: httpx.AsyncClient, caller: Caller, **body: Any) -> httpx.Response:
    return await client.post("/v1/webhooks", json={"url": HOOK, **body}, headers=caller.headers)


async def test_create_list_read_delete(
    client: httpx.AsyncClient, caller: Caller, backend: AppContext
) -> None:
    response = await add(client, caller, description="CRM sync")
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == VIEW_KEYS | {"secret"}
    assert (created["url"], created["events"]) == (HOOK, ALL_EVENTS)
    assert created["description"] == "CRM sync"
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    row = await backend.db.run_read(
        lambda c: repo.endpoint_of(c, caller.user_id, uuid.UUID(created["id"]))
    )
    assert row.secret != created["secret"]  # sealed at rest
    assert TokenVault(backend.settings.resolved_secret_key).open(row.secret) == created["secret"]

    listed = await client.get("/v1/webhooks", headers=caller.headers)
    assert listed.status_code == 200
    [shown] = listed.json()["data"]
    assert shown == {k: v for k, v in created.items() if k != "secret"}  # never shown again
    one = await client.get(f"/v1/webhooks/{created['id']}", headers=caller.headers)
    assert one.json() == shown

    gone = await client.delete(f"/v1/webhooks/{created['id']}", headers=caller.headers)
    assert gone.status_code == 204 and gone.content == b""
    assert_error(
        await client.get(f"/v1/webhooks/{created['id']}", headers=caller.headers), 404, "not_found"
    )
    again = await client.delete(f"/v1/webhooks/{created['id']}", headers=caller.headers)
    assert_error(again, 404, "not_found")
    assert (await client.get("/v1/webhooks", headers=caller.headers)).json() == {"data": []}


async def test_chosen_events_are_kept_once(client: httpx.AsyncClient, caller: Caller) -> None:
    response = await add(client, caller, events=["post.failed", "post.failed", "post.published"])
    assert response.status_code == 201, response.text
    assert response.json()["events"] == ["post.failed", "post.published"]


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"url": "ftp://hooks.example.com/x"}, "url", "invalid_url"),
        ({"url": "not a url"}, "url", "invalid_url"),
        ({"url": "https://user:pw@hooks.example.com/x"}, "url", "invalid_url"),
        ({"url": "https://hooks.example.com/\r\nX-Injected: 1"}, "url", "invalid_url"),
        ({"url": "https://hooks.example.com/a\tb"}, "url", "invalid_url"),
        ({"url": "http://127.0.0.1:9000/hook"}, "url", "blocked_address"),
        ({"url": "http://[::1]/hook"}, "url", "blocked_address"),
        ({"url": "http://10.1.2.3/hook"}, "url", "blocked_address"),
        ({"url": "http://169.254.169.254/latest/meta-data"}, "url", "blocked_address"),
        ({"url": "http://0x7f000001/hook"}, "url", "blocked_address"),
        ({"url": "http://localhost:8000/hook"}, "url", "blocked_address"),
        ({"url": "http://api.localhost/hook"}, "url", "blocked_address"),
        ({"url": HOOK, "events": ["post.deleted"]}, "events[0]", "invalid_value"),
        ({"url": HOOK, "events": []}, "events", "too_short"),
        ({"url": HOOK, "secret": "mine"}, "secret", "unknown_field"),
        ({"url": HOOK, "description": "x" * 201}, "description", "too_long"),
        ({"url": HOOK, "description": "a\x00b"}, "description", "invalid_characters"),
        # 2,000 characters but 6,000 bytes: over what PostgreSQL's unique index can hold
        ({"url": HOOK + "/" + "\u6f22" * 2000}, "url", "invalid_url"),
        ({"url": 42}, "url", "invalid_type"),
        ({}, "url", "required"),
    ],
)
async def test_bad_bodies_are_validation_errors(
    client: httpx.AsyncClient, caller: Caller, body: dict[str, Any], field: str, reason: str
) -> None:
    response = await client.post("/v1/webhooks", json=body, headers=caller.headers)
    error = assert_error(response, 400, "validation_error")
    assert (field, reason) in reasons(error), error


async def test_blocked_address_message_names_the_reason(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    error = assert_error(
        await add(client, caller, url="http://192.168.1.10/x"), 400, "validation_error"
    )
    assert error["message"] == (
        "url names 192.168.1.10, which is private: webhooks go to public addresses."
    )


async def test_endpoints_per_user_are_limited(
    client: httpx.AsyncClient, backend: AppContext
) -> None:
    caller = await make_caller(backend, accounts=[])
    limit = backend.settings.webhook_endpoints_per_user
    for index in range(limit):
        assert (await add(client, caller, url=f"{HOOK}/{index}")).status_code == 201
    error = assert_error(await add(client, caller), 409, "conflict")
    assert error["details"] == {"limit": limit}
    other = await make_caller(backend, accounts=[])  # the limit is each user's own
    assert (await add(client, other)).status_code == 201


async def test_endpoints_per_user_are_limited_when_added_together(
    client: httpx.AsyncClient, backend: AppContext
) -> None:
    caller = await make_caller(backend, accounts=[])
    limit = backend.settings.webhook_endpoints_per_user
    answers = await asyncio.gather(
        *(add(client, caller, url=f"{HOOK}/{index}") for index in range(limit + 6))
    )
    assert sorted(a.status_code for a in answers) == [201] * limit + [409] * 6
    listed = await client.get("/v1/webhooks", headers=caller.headers)
    assert len(listed.json()["data"]) == limit


async def test_one_url_once(client: httpx.AsyncClient, caller: Caller) -> None:
    first = (await add(client, caller)).json()
    error = assert_error(await add(client, caller, events=["post.failed"]), 409, "conflict")
    assert error["details"] == {"id": first["id"]}
    assert "sent to it twice" in error["message"]
    other = await add(client, caller, url=HOOK + "?copy=2")
    assert other.status_code == 201


async def test_one_url_once_when_added_together(client: httpx.AsyncClient, caller: Caller) -> None:
    answers = await asyncio.gather(*(add(client, caller) for _ in range(8)))
    assert sorted(a.status_code for a in answers) == [201] + [409] * 7
    for answer in answers:
        if answer.status_code == 409:
            assert_error(answer, 409, "conflict")
    assert len((await client.get("/v1/webhooks", headers=caller.headers)).json()["data"]) == 1


async def test_test_ping_is_queued(client: httpx.AsyncClient, caller: Caller) -> None:
    created = (await add(client, caller)).json()
    response = await client.post(f"/v1/webhooks/{created['id']}/test", headers=caller.headers)
    assert response.status_code == 202, response.text
    event_id = response.json()["eventId"]
    listed = await client.get(f"/v1/webhooks/{created['id']}/deliveries", headers=caller.headers)
    [delivery] = listed.json()["data"]
    assert (delivery["eventId"], delivery["eventType"]) == (event_id, "ping")
    assert (delivery["status"], delivery["attempts"]) == ("pending", 0)
    assert delivery["nextAttemptAt"] is not None  # no worker runs here: it stays pending
    limited = await client.get(
        f"/v1/webhooks/{created['id']}/deliveries?limit=0", headers=caller.headers
    )
    assert ("limit", "out_of_range") in reasons(assert_error(limited, 400, "validation_error"))


async def test_rotating_the_secret(
    client: httpx.AsyncClient, caller: Caller, backend: AppContext
) -> None:
    created = (await add(client, caller)).json()
    assert created["previousSecretValidUntil"] is None
    path = f"/v1/webhooks/{created['id']}/rotate-secret"
    rotated = await client.post(path, headers=caller.headers)
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert body["secret"].startswith("whsec_") and body["secret"] != created["secret"]
    until = dt.datetime.fromisoformat(body["previousSecretValidUntil"].replace("Z", "+00:00"))
    ahead = until - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=23, minutes=59) < ahead <= dt.timedelta(hours=24)
    shown = (await client.get(f"/v1/webhooks/{created['id']}", headers=caller.headers)).json()
    assert (
        "secret" not in shown
        and shown["previousSecretValidUntil"] == body["previousSecretValidUntil"]
    )
    row = await backend.db.run_read(
        lambda c: repo.endpoint_of(c, caller.user_id, uuid.UUID(created["id"]))
    )
    vault = TokenVault(backend.settings.resolved_secret_key)
    assert (vault.open(row.secret), vault.open(row.previous_secret)) == (
        body["secret"],
        created["secret"],
    )
    intruder = await make_caller(backend, accounts=[])
    assert_error(await client.post(path, headers=intruder.headers), 404, "not_found")


async def test_another_users_endpoint_is_not_found(
    client: httpx.AsyncClient, caller: Caller, backend: AppContext
) -> None:
    created = (await add(client, caller)).json()
    intruder = await make_caller(backend, accounts=[])
    path = f"/v1/webhooks/{created['id']}"
    for method, url in [
        ("GET", path),
        ("DELETE", path),
        ("POST", f"{path}/test"),
        ("POST", f"{path}/rotate-secret"),
        ("GET", f"{path}/deliveries"),
    ]:
        response = await client.request(method, url, headers=intruder.headers)
        assert_error(response, 404, "not_found")
    assert (await client.get("/v1/webhooks", headers=intruder.headers)).json() == {"data": []}
    assert (await client.get(path, headers=caller.headers)).status_code == 200  # still there


async def test_unknown_ids_and_keys(client: httpx.AsyncClient, caller: Caller) -> None:
    assert_error(
        await client.get("/v1/webhooks/not-a-uuid", headers=caller.headers), 404, "not_found"
    )
    assert_error(
        await client.get(f"/v1/webhooks/{uuid.uuid4()}", headers=caller.headers), 404, "not_found"
    )
    assert_error(await client.get("/v1/webhooks"), 401, "unauthorized")
    assert_error(await client.post("/v1/webhooks", json={"url": HOOK}), 401, "unauthorized")
    wrong_type = await client.post(
        "/v1/webhooks", content=b"url=x", headers={**caller.headers, "Content-Type": "text/plain"}
    )
    assert_error(wrong_type, 415, "unsupported_media_type")
