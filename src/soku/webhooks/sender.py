"""The webhook sender: claims due webhook deliveries, signs and POSTs them, and records each
attempt's outcome with a backoff before the next.

It runs beside the delivery worker (in `soku serve` and in every `soku worker`), so any
number of them may share one database: a claim takes rows with `FOR UPDATE SKIP LOCKED` on
PostgreSQL and one conditional UPDATE on SQLite, each counting an attempt and due again when
its lease ends. Delivery is at least once: a sender that dies after the receiver answered
but before the outcome was stored leaves the row to be sent again, with the same event id in
the body and in `Soku-Event-Id` for the receiver to deduplicate.

The URL's host is resolved and every address checked as the media fetcher checks a media URL
(no loopback, private or link-local address unless `SOKU_WEBHOOK_ALLOW_PRIVATE`), and the
request goes to the checked address, the name only in `Host` and TLS SNI. Redirects are not
followed: a 3xx counts as a failed attempt.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
import uuid
from typing import Any

import httpx
import structlog
from sqlalchemy import Connection

from soku import __version__
from soku.context import AppContext
from soku.db import utcnow
from soku.integrations.vault import TokenVault
from soku.media.fetcher import checked_hop, send_checked, tls_context
from soku.media.types import FetchError
from soku.webhooks import repository as repo
from soku.webhooks import signing
from soku.webhooks.models import WebhookStatus

log = structlog.get_logger("soku.webhooks")
BATCH = 32
MAX_IN_FLIGHT = 4 * BATCH  # deliveries being sent at once, over all rounds
PURGE_EVERY_SECONDS = 3600.0
ERROR_BODY_CHARS = 300  # of a receiver's answer, kept with a failed attempt
USER_AGENT = f"Soku-Webhooks/{__version__}"


class WebhookSender:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.vault = TokenVault(self.settings.resolved_secret_key)
        self.stopping = asyncio.Event()
        self.rounds: dict[asyncio.Task[None], tuple[str, list[repo.Due]]] = {}
        self.in_flight = 0  # deliveries claimed by the rounds running
        self.client = httpx.AsyncClient(
            follow_redirects=False, trust_env=False, verify=tls_context()
        )

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        """Send until `stop()`; a round that fails (the database out of reach) is logged and
        tried again after the poll interval. Rounds run side by side, up to MAX_IN_FLIGHT
        deliveries in all, so that a receiver that hangs until the timeout delays no other."""
        purged_at = 0.0
        try:
            while not self.stopping.is_set():
                try:
                    if time.monotonic() - purged_at > PURGE_EVERY_SECONDS:
                        purged_at = time.monotonic()
                        await self.purge()
                    room = MAX_IN_FLIGHT - self.in_flight
                    wait = await self._until_due() if room > 0 else self._poll
                    if wait <= 0 and await self._start_round(min(BATCH, room)):
                        continue
                except Exception:
                    log.exception("webhook_round_failed")
                    wait = self._poll
                await self._sleep(max(wait, 0.0) or self._poll)
        finally:
            try:
                await self._drain()
            finally:
                await self.client.aclose()

    @property
    def _poll(self) -> float:
        return self.settings.webhook_poll_seconds

    async def purge(self) -> int:
        """Delete the events older than the retention that nothing waits to send."""
        before = utcnow() - dt.timedelta(days=self.settings.webhook_retention_days)
        total = 0
        while purged := await self.ctx.db.run_write(lambda c: repo.purge(c, before)):
            total += purged
        if total:
            log.info("webhook_events_purged", count=total)
        return total

    async def send_due(self, batch: int = BATCH) -> int:
        """One round: claim what is due, send it all at once, store the outcomes."""
        token, claimed = await self._claim(batch)
        if claimed:
            await self._deliver(token, claimed)
        return len(claimed)

    async def _claim(self, batch: int) -> tuple[str, list[repo.Due]]:
        token = str(uuid.uuid4())
        now = utcnow()
        lease_end = now + dt.timedelta(seconds=self.settings.webhook_timeout_seconds * 3 + 30)

        def claim(connection: Connection) -> list[repo.Due]:
            return repo.claim_due(connection, token, batch, now, lease_end)

        return token, await self.ctx.db.run_write(claim)

    async def _deliver(self, token: str, claimed: list[repo.Due]) -> None:
        """Send each claimed delivery, storing each outcome as soon as it is known: a fast
        receiver's answer does not wait for a slow one's in the same round."""

        async def one(due: repo.Due) -> None:
            await self._finish(token, [await self._attempt(due)])

        await asyncio.gather(*(one(due) for due in claimed))

    async def _finish(self, token: str, outcomes: list[dict[str, Any]]) -> None:
        await self.ctx.db.run_write(lambda c: repo.finish(c, token, outcomes))

    async def _start_round(self, batch: int) -> int:
        """Claim what is due and send it in a task of its own; how many were claimed."""
        token, claimed = await self._claim(batch)
        if claimed:
            task = asyncio.create_task(self._deliver(token, claimed))
            self.rounds[task] = (token, claimed)
            self.in_flight += len(claimed)
            task.add_done_callback(self._round_done)
        return len(claimed)

    def _round_done(self, task: asyncio.Task[None]) -> None:
        _token, claimed = self.rounds.pop(task)
        self.in_flight -= len(claimed)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("webhook_round_failed", exc_info=error)

    async def _drain(self) -> None:
        """Let the rounds in flight finish for up to the shutdown grace, then cancel them and
        give their deliveries back, due now: they are sent again (at least once)."""
        if not self.rounds:
            return
        grace = self.settings.shutdown_grace_seconds
        _done, late = await asyncio.wait(list(self.rounds), timeout=grace)
        given_back = [(token, claimed) for task, (token, claimed) in self.rounds.items()
                      if task in late]  # fmt: skip
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        now = utcnow()
        try:
            for token, claimed in given_back:
                await self._finish(token, [_interrupted(due, now) for due in claimed])
        except Exception:  # they are sent again when their lease ends
            log.exception("webhook_give_back_failed")
        if given_back:
            log.info("webhook_sender_stopped", given_back=sum(len(c) for _t, c in given_back))

    async def _until_due(self) -> float:
        """Seconds until the next delivery is due (0 or less: one is), at most the poll
        interval: a read, so that an idle sender never opens a write transaction."""
        upcoming = await self.ctx.db.run_read(repo.next_due)
        seconds = self._poll
        if upcoming is not None:
            seconds = min(seconds, (upcoming - utcnow()).total_seconds())
        return seconds

    async def _sleep(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(max(0.05, seconds)):
                await self.stopping.wait()
        except TimeoutError:
            pass

    async def _attempt(self, due: repo.Due) -> dict[str, Any]:
        started = time.monotonic()
        limit = self.settings.webhook_timeout_seconds
        try:
            async with asyncio.timeout(limit):  # the whole attempt: a trickling answer too
                status, error = await self._post(due)
        except TimeoutError:
            status, error = None, f"timeout: no complete answer within {limit:g} s"
        except Exception as exc:  # every failure is this attempt's outcome
            status, error = None, f"{type(exc).__name__}: {exc}"
        outcome = self._outcome(due, status, error)
        self.ctx.metrics.webhooks.labels(_label(outcome["status"], error)).inc()
        log.info(
            "webhook_attempt",
            webhook_delivery_id=str(due.id),
            endpoint_id=str(due.endpoint_id),
            event_id=str(due.event_id),
            event_type=due.event_type,
            attempt=due.attempts,
            http_status=status,
            error=error,
            outcome=outcome["status"],
            seconds=round(time.monotonic() - started, 3),
        )
        return outcome

    def _outcome(self, due: repo.Due, status: int | None, error: str | None) -> dict[str, Any]:
        now = utcnow()
        values: dict[str, Any] = {"id": due.id, "last_status_code": status, "last_error": error}
        if error is None:
            return {**values, "status": WebhookStatus.delivered.value, "delivered_at": now}
        if due.attempts >= self.settings.webhook_max_attempts:
            return {**values, "status": WebhookStatus.failed.value}
        return {**values, "status": WebhookStatus.pending.value, "run_at": now + self._backoff(due)}

    def _backoff(self, due: repo.Due) -> dt.timedelta:
        """Doubling from the base delay up to the maximum, each with up to a fifth more at
        random, so that many endpoints failing together do not come back together."""
        base = self.settings.webhook_retry_base_seconds * 2 ** (due.attempts - 1)
        delay = min(self.settings.webhook_retry_max_seconds, base)
        return dt.timedelta(seconds=delay * (1 + random.random() / 5))  # noqa: S311

    async def _post(self, due: repo.Due) -> tuple[int | None, str | None]:
        """(HTTP status, None) on a 2xx, else (status or None, why it failed)."""
        try:
            hop, addresses = await checked_hop(
                due.url, allow_private=self.settings.webhook_allow_private
            )
        except FetchError as exc:
            return None, f"{exc.reason}: {exc.message}"
        body = due.body.encode()
        secrets = [self.vault.open(due.secret) or ""]
        if due.previous_secret and due.previous_until and due.previous_until > utcnow():
            secrets.append(self.vault.open(due.previous_secret) or "")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            # never reused: a pooled connection is keyed by address, and one checked (and TLS
            # verified) for one name must not carry a request for another name on that address
            "Connection": "close",
            "Soku-Event": due.event_type,
            "Soku-Event-Id": str(due.event_id),
            "Soku-Delivery-Id": str(due.id),
            "Soku-Attempt": str(due.attempts),
            signing.HEADER: signing.header_value(secrets, body),
        }
        timeout = httpx.Timeout(self.settings.webhook_timeout_seconds)
        response = await send_checked(self.client, hop, addresses, "POST", headers, timeout, body)
        try:
            if response.is_success:
                return response.status_code, None
            excerpt = await _excerpt(response)
        finally:
            await response.aclose()
        reason = f"answered HTTP {response.status_code}"
        if response.is_redirect:
            reason += " (webhooks do not follow redirects: give the final URL)"
        return response.status_code, f"{reason}: {excerpt}" if excerpt else reason


async def _excerpt(response: httpx.Response) -> str:
    """The start of a receiver's answer, read no further than needed."""
    read = b""
    async for chunk in response.aiter_raw():
        read += chunk
        if len(read) >= ERROR_BODY_CHARS * 4:
            break
    return read.decode("utf-8", "replace")[:ERROR_BODY_CHARS].strip()


def _interrupted(due: repo.Due, now: dt.datetime) -> dict[str, Any]:
    """A delivery whose attempt the sender's shutdown cut short: due again now."""
    return {
        "id": due.id,
        "status": WebhookStatus.pending.value,
        "run_at": now,
        "last_status_code": None,
        "last_error": "interrupted: the sender stopped during the attempt",
    }


def _label(status: str, error: str | None) -> str:
    if error is None:
        return "delivered"
    return "failed" if status == WebhookStatus.failed.value else "retrying"
