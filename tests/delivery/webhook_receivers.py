"""Webhook receivers for the tests: real HTTP servers that record what they get, and the
API calls the webhook tests share."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import Caller
from tests.delivery.harness import Harness

FAST = {
    "webhook_allow_private": True,  # the receiver is on loopback
    "webhook_poll_seconds": 0.05,
    "webhook_retry_base_seconds": 0.05,
    "webhook_retry_max_seconds": 0.2,
}
WAIT = 15.0


@dataclass
class Receiver:
    """What the receiver got; it answers 503 to the first `failures` requests, then 204."""

    url: str = ""
    failures: int = 0
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        self.got.append((dict(request.headers), await request.body()))
        if self.failures > 0:
            self.failures -= 1
            return Response("receiver down for maintenance", status_code=503)
        return Response(status_code=204)

    async def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + WAIT
        while len(self.got) < count:
            assert time.monotonic() < deadline, f"{len(self.got)} of {count} requests arrived"
            await asyncio.sleep(0.02)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _headers, body in self.got]


@dataclass
class Hanging:
    """A receiver that never answers (until the test ends)."""

    url: str = ""
    got: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        self.got += 1
        await self.release.wait()
        return Response(status_code=204)


async def add_webhook(env: Harness, caller: Caller, url: str, **extra: Any) -> dict[str, Any]:
    response = await env.api.post(
        "/v1/webhooks", json={"url": url, **extra}, headers=caller.headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def deliveries_of(env: Harness, caller: Caller, webhook_id: str) -> list[dict[str, Any]]:
    response = await env.api.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=caller.headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def wait_settled(env: Harness, caller: Caller, webhook_id: str) -> list[dict[str, Any]]:
    """The endpoint's deliveries once none is pending."""
    deadline = time.monotonic() + WAIT
    while True:
        found = await deliveries_of(env, caller, webhook_id)
        if found and all(d["status"] != "pending" for d in found):
            return found
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.05)


async def ping(env: Harness, caller: Caller, webhook: dict[str, Any]) -> None:
    response = await env.api.post(f"/v1/webhooks/{webhook['id']}/test", headers=caller.headers)
    assert response.status_code == 202, response.text


async def until(check: Any) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
