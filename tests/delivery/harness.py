"""One engine test's world: an AppContext, the API on it, workers, and the fake's controls."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import time
import uuid
from collections.abc import Callable, Collection, Iterable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from soku.app import create_app
from soku.context import AppContext
from soku.delivery.models import IN_FLIGHT, NOT_STARTED, Delivery, DeliveryAttempt, DeliveryStatus
from soku.delivery.worker import Worker
from soku.integrations import repository as accounts_repo
from soku.integrations.models import Account
from soku.posts.models import Post
from soku.webhooks.models import WebhookDelivery, WebhookStatus
from tests.conftest import Caller, make_caller
from tests.media_files import MediaServer

WAIT_SECONDS = 15.0
POLL_SECONDS = 0.05
LIVE = [s.value for s in (*NOT_STARTED, *IN_FLIGHT)]


def unique(text: str) -> str:
    """A text no other post of the session has (reconciliation matches posts by text)."""
    return f"{text} #{secrets.token_hex(4)}"


def text_post(*platforms: Any, text: str = "Hello", **extra: Any) -> dict[str, Any]:
    content = {"text": unique(text), "mediaType": "text", "platform": list(platforms)}
    return {"post": {"content": content}, **extra}


def image_post(
    media: MediaServer,
    *platforms: Any,
    count: int,
    text: str = "Pictures",
    types: Collection[str] | None = None,
) -> dict[str, Any]:
    """A post of `count` images, of every format in turn or only of the content `types`."""
    urls = media.images(count, types=types)
    content = {"text": unique(text), "imageUrls": urls, "platform": list(platforms)}
    return {"post": {"content": content}}


def video_post(media: MediaServer, *platforms: Any, text: str = "A film") -> dict[str, Any]:
    url = media.url("clip.mp4")
    content = {"text": unique(text), "videoUrl": url, "platform": list(platforms)}
    return {"post": {"content": content}}


def in_future(seconds: float) -> str:
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


Metrics = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics[(name, tuple(sorted(labels.items())))]


def samples_of(metrics: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        labels: value for (sample_name, labels), value in metrics.items() if sample_name == name
    }


def by_platform(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["platform"]: d for d in view["deliveries"]}


class Harness:
    def __init__(self, ctx: AppContext, fake_url: str) -> None:
        self.ctx = ctx
        self.fake_url = fake_url
        self.workers: list[tuple[Worker, asyncio.Task[None]]] = []

    async def open(self) -> None:
        self.app = create_app(ctx=self.ctx)
        transport = httpx.ASGITransport(app=self.app)
        self.api = httpx.AsyncClient(transport=transport, base_url="http://soku.test", timeout=30)
        self.fake = httpx.AsyncClient(base_url=self.fake_url, timeout=10)
        await self.fake.delete("/_inspect")

    async def close(self) -> None:
        await self.stop_workers()
        # Nothing of this test may be delivered by the next one's workers.
        async with self.ctx.db.transaction() as session:
            await session.execute(
                update(Delivery)
                .where(Delivery.status.in_(LIVE))
                .values(
                    status=DeliveryStatus.cancelled.value, lease_owner=None, lease_expires_at=None
                )
            )
            # nor any of its webhooks: their receivers are gone (and their ports may be reused)
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.status == WebhookStatus.pending.value)
                .values(status=WebhookStatus.failed.value, lease_token=None)
            )
        await self.fake.delete("/_inspect")
        await self.api.aclose()
        await self.fake.aclose()
        await self.ctx.aclose()

    # --- workers -------------------------------------------------------------------------

    def start_worker(self, concurrency: int | None = None) -> Worker:
        worker = Worker(self.ctx, concurrency)
        self.workers.append((worker, asyncio.create_task(worker.run())))
        return worker

    async def stop_workers(self) -> None:
        for worker, _task in self.workers:
            worker.stop()
        for _worker, task in self.workers:
            await asyncio.wait_for(task, timeout=WAIT_SECONDS)
        self.workers.clear()

    # --- the API -------------------------------------------------------------------------

    async def caller(self, accounts: Iterable[tuple[str, str]] | None = None) -> Caller:
        return await make_caller(self.ctx, accounts=accounts)

    async def submit(
        self, caller: Caller, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.api.post(
            "/v1/posts", json=body, headers={**caller.headers, **(headers or {})}
        )

    async def create(self, caller: Caller, body: dict[str, Any]) -> str:
        response = await self.submit(caller, body)
        assert response.status_code == 201, response.text
        return str(response.json()["postSubmissionId"])

    async def get(self, caller: Caller, post_id: str) -> dict[str, Any]:
        response = await self.api.get(f"/v1/posts/{post_id}", headers=caller.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def wait_for(
        self,
        caller: Caller,
        post_id: str,
        check: Callable[[dict[str, Any]], bool],
        within: float = WAIT_SECONDS,
        what: str = "the expected state",
    ) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            view = await self.get(caller, post_id)
            if check(view):
                return view
            if time.monotonic() > deadline:
                raise AssertionError(f"post {post_id} did not reach {what} in {within} s: {view}")
            await asyncio.sleep(POLL_SECONDS)

    async def wait_status(
        self, caller: Caller, post_id: str, *statuses: str, within: float = WAIT_SECONDS
    ) -> dict[str, Any]:
        return await self.wait_for(
            caller,
            post_id,
            lambda view: view["status"] in statuses,
            within,
            f"status {' or '.join(statuses)}",
        )

    async def metrics(self) -> Metrics:
        """/metrics parsed: (sample name, sorted labels) -> value."""
        response = await self.api.get("/metrics")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }

    # --- the database --------------------------------------------------------------------

    async def attempts(self, delivery_id: str) -> list[DeliveryAttempt]:
        async with self.ctx.db.read() as session:
            stmt = (
                select(DeliveryAttempt)
                .where(DeliveryAttempt.delivery_id == uuid.UUID(delivery_id))
                .order_by(DeliveryAttempt.id)
            )
            return list((await session.execute(stmt)).scalars())

    async def stored_status(self, post_id: str) -> str:
        """The post's status column (what listing filters on), not the derived view."""
        async with self.ctx.db.read() as session:
            post = await session.get(Post, uuid.UUID(post_id))
        assert post is not None
        return post.status

    async def delivery(self, delivery_id: str) -> Delivery:
        async with self.ctx.db.read() as session:
            found = await session.get(Delivery, uuid.UUID(delivery_id))
        assert found is not None
        return found

    async def account(
        self, caller: Caller, platform: str, account_id: str | None = None
    ) -> Account:
        async with self.ctx.db.read() as session:
            accounts = await accounts_repo.accounts_of(session, caller.user_id)
        [found] = [
            a
            for a in accounts
            if a.platform == platform and (account_id is None or a.account_id == account_id)
        ]
        return found

    async def platform_user(
        self, caller: Caller, platform: str, account_id: str | None = None
    ) -> str:
        """The account's user id on the fake (where its faults and posts are keyed)."""
        user_id = (await self.account(caller, platform, account_id)).platform_user_id
        assert user_id is not None
        return user_id

    # --- the fake ------------------------------------------------------------------------

    async def fault(self, **spec: Any) -> None:
        response = await self.fake.post("/_faults", json=spec)
        assert response.status_code == 201, response.text

    async def fake_posts(self, user_id: str | None = None) -> list[dict[str, Any]]:
        posts: list[dict[str, Any]] = (await self.fake.get("/_inspect/posts")).json()["posts"]
        return [p for p in posts if user_id is None or p["user_id"] == user_id]

    async def calls(self) -> dict[str, int]:
        calls: dict[str, int] = (await self.fake.get("/_inspect/calls")).json()
        return calls
