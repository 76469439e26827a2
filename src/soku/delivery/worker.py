"""The worker: claims due deliveries in batches and runs them concurrently.

It sleeps until the earliest due time or lease expiry, or until woken (new work committed,
or finished deliveries freed enough slots to claim for), never longer than the fallback
poll. Claims go platform by platform, starting from a different one each time, within each
platform's concurrency, so one platform's flood cannot starve the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter

import structlog
from sqlalchemy import Connection, update

from soku.context import AppContext
from soku.db import utcnow
from soku.delivery import claims
from soku.delivery import repository as repo
from soku.delivery.claims import Claimed, Target
from soku.delivery.engine import Engine, PlatformClients
from soku.delivery.group_commit import Apply
from soku.delivery.models import Delivery, DeliveryStatus
from soku.delivery.policy import RetryPolicy
from soku.delivery.runner import DeliveryRun
from soku.platforms import LIMITS, PLATFORM_NAMES
from soku.runtime import loop_name
from soku.webhooks.sender import WebhookSender

log = structlog.get_logger("soku.worker")
MIN_SLEEP = 0.05


class Worker:
    def __init__(self, ctx: AppContext, concurrency: int | None = None) -> None:
        settings = ctx.settings
        self.ctx = ctx
        self.concurrency = concurrency or settings.worker_concurrency
        policy = RetryPolicy(
            max_attempts=settings.retry_max_attempts,
            base_delay=settings.retry_base_seconds,
            max_delay=settings.retry_max_seconds,
        )
        clients = PlatformClients(self.concurrency, settings.http_timeout_seconds)
        self.engine = Engine(ctx=ctx, clients=clients, policy=policy)
        self.tasks: dict[uuid.UUID, asyncio.Task[str]] = {}
        self.running: Counter[str] = Counter()
        self.stopping = asyncio.Event()
        self._turn = 0

    async def run(self) -> None:
        """Deliver until `stop()`; then finish or release what is held."""
        await self.ctx.wakeup.listen()
        heartbeat = asyncio.create_task(self._heartbeat())
        webhooks = WebhookSender(self.ctx)  # the webhooks of the outcomes, beside them
        sending = asyncio.create_task(webhooks.run())
        log.info(
            "worker_started",
            worker=self.engine.owner,
            concurrency=self.concurrency,
            loop=loop_name(),
        )
        try:
            await self._deliver()
        finally:
            webhooks.stop()  # its attempts in flight drain beside the deliveries, same grace
            try:
                await self._shutdown()  # the heartbeat keeps the leases while draining
            finally:
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await heartbeat
                await sending

    async def _deliver(self) -> None:
        """Claim and sleep until stopped. A claim or a sleep that fails (the database out of
        reach for a while) is logged and tried again after a pause that grows to the fallback
        poll: the worker outlives the outage instead of ending while the API goes on
        accepting posts. What it holds is kept by the heartbeat meanwhile."""
        failures = 0
        while not self.stopping.is_set():
            try:
                if self._room() == 0:  # nearly full: a finishing delivery wakes it
                    await self.ctx.wakeup.wait(self.ctx.settings.poll_seconds)
                elif await self._claim() == 0:
                    await self._sleep()
                failures = 0
            except Exception:
                failures += 1
                log.exception("worker_claim_failed", failures=failures)
                pause = min(self.ctx.settings.poll_seconds, 0.1 * 2**failures)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), pause)

    def stop(self) -> None:
        self.stopping.set()
        self.ctx.wakeup.wake()

    def _room(self) -> int:
        """Free slots to claim for, or 0 while fewer than an eighth of them (at most a batch)
        are free: a busy worker gathers the slots its deliveries free and claims for them
        together, not a claim round (a transaction of three statements) for every delivery
        that finishes."""
        free = self.concurrency - len(self.tasks)
        gather = max(1, min(self.ctx.settings.worker_batch, self.concurrency // 8))
        return free if free >= gather else 0

    async def _claim(self) -> int:
        free = self._room()
        if free <= 0:
            return 0
        batch = min(free, self.ctx.settings.worker_batch)
        # snapshots: runs may finish while the claim runs (between PostgreSQL's round trips,
        # or on SQLite's writer thread when another process holds the lock)
        order, running, busy = self._platform_order(), list(self.tasks), Counter(self.running)

        def claim(connection: Connection) -> tuple[list[Claimed], dict[uuid.UUID, Target]]:
            """The claim round and what the runs need, in one transaction."""
            now = utcnow()
            owner, lease = self.engine.owner, self.engine.lease
            claimed = claims.reclaim_expired(connection, owner, lease, batch, now, running=running)
            rooms = [(p, LIMITS[p].max_concurrency - busy[p]) for p in order]
            left = batch - len(claimed)
            claimed += claims.claim_due_platforms(connection, rooms, owner, lease, left, now)
            return claimed, claims.load_targets(connection, [item.id for item in claimed])

        claimed, targets = await self.ctx.db.run_write(claim)
        for item in claimed:
            self._start(item, targets[item.id])
        return len(claimed)

    def _platform_order(self) -> list[str]:
        self._turn = (self._turn + 1) % len(PLATFORM_NAMES)
        return list(PLATFORM_NAMES[self._turn :] + PLATFORM_NAMES[: self._turn])

    def _start(self, claimed: Claimed, target: Target) -> None:
        if claimed.attempts == 1:
            lateness = (claimed.claimed_at - claimed.run_at).total_seconds()
            self.engine.metrics.started_late(claimed.platform, lateness)
        self.running[claimed.platform] += 1
        self.engine.metrics.in_flight.inc()
        task = asyncio.create_task(DeliveryRun(self.engine, claimed, target).execute())
        self.tasks[claimed.id] = task
        task.add_done_callback(lambda _t: self._done(claimed))

    def _done(self, claimed: Claimed) -> None:
        self.tasks.pop(claimed.id, None)
        self.running[claimed.platform] -= 1
        self.engine.metrics.in_flight.dec()
        if self._room():  # enough slots free to claim for: claim again
            self.ctx.wakeup.wake()
        # else: the loop, waiting for room, would only find too little and wait again (a
        # wake-up per finished delivery cost a wait with its timer and task each time)

    async def _sleep(self) -> None:
        async with self.ctx.db.read() as session:
            upcoming = await repo.next_wakeup(session)
        seconds = self.ctx.settings.poll_seconds
        if upcoming is not None:
            seconds = min(seconds, (upcoming - utcnow()).total_seconds())
        await self.ctx.wakeup.wait(max(MIN_SLEEP, seconds))

    async def _heartbeat(self) -> None:
        interval = self.ctx.settings.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            held = list(self.tasks)
            try:
                kept = await self.engine.writes.run(self._renewal(held), first=True)
            except Exception:
                log.exception("heartbeat_failed")
                continue
            for lost in set(held) - kept:
                task = self.tasks.get(lost)
                if task is not None:
                    log.warning("lease_lost", delivery_id=str(lost))
                    task.cancel()

    def _renewal(self, held: list[uuid.UUID]) -> Apply[set[uuid.UUID]]:
        """The heartbeat's write; in the worker's write groups, never beside them (deadlocks)."""

        def renew(connection: Connection) -> set[uuid.UUID]:
            return repo.renew_leases(
                connection, held, self.engine.owner, self.engine.lease, utcnow()
            )

        return renew

    async def _shutdown(self) -> None:
        if self.tasks:
            log.info("worker_draining", in_flight=len(self.tasks))
            await asyncio.wait(
                list(self.tasks.values()), timeout=self.ctx.settings.shutdown_grace_seconds
            )
        left, pending = list(self.tasks), list(self.tasks.values())
        for task in pending:
            task.cancel()
        released = 0
        if left:
            await asyncio.gather(*pending, return_exceptions=True)
            await self.engine.writes.drain()  # what the cancelled runs had already begun
            released = await self._release(left)
        await self.engine.clients.aclose()
        log.info(
            "worker_stopped",
            worker=self.engine.owner,
            released=released,  # back in the queue at once
            kept=len(left) - released,  # publishing (reconciled once the lease lapses) or done
        )

    async def _release(self, ids: list[uuid.UUID]) -> int:
        """Give back what was not finished; a publish in flight waits for reconciliation.
        How many went back to the queue."""
        async with self.ctx.db.transaction() as session:
            result = await session.execute(
                update(Delivery)
                .where(
                    Delivery.id.in_(ids),
                    Delivery.lease_owner == self.engine.owner,
                    Delivery.status == DeliveryStatus.processing.value,
                )
                .values(
                    status=DeliveryStatus.queued.value,
                    lease_owner=None,
                    lease_expires_at=None,
                    attempts=Delivery.attempts - 1,
                )
                .execution_options(synchronize_session=False)
            )
        return int(result.rowcount)  # type: ignore[attr-defined]
