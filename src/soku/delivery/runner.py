"""One delivery attempt: reconcile if needed, run the connector's steps, publish, record.

Each step's result is saved in the checkpoint before the next step runs; the delivery is
marked `publishing` before the publish call; whatever happens, one attempt row is written.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from typing import Any

import structlog

from soku.db import utcnow
from soku.delivery.caps import over_caps
from soku.delivery.claims import Claimed, Target
from soku.delivery.engine import Engine
from soku.delivery.failures import media_deleted, settle_disconnected, settle_error
from soku.delivery.models import DeliveryStatus
from soku.delivery.repository import FencedChange, LeaseLost
from soku.delivery.tokens import refresh_account, refused_after_refresh
from soku.integrations.models import AccountStatus
from soku.logs import TASK_FIELDS
from soku.platforms import LIMITS
from soku.platforms.base import PublishCap
from soku.platforms.connector import (
    AccountAccess,
    CannotTell,
    ErrorKind,
    Job,
    NotPublished,
    PlatformError,
    Published,
)

log = structlog.get_logger("soku.delivery")
_GAVE_UP = frozenset({DeliveryStatus.failed, DeliveryStatus.unknown})  # logged as warnings


class DeliveryRun:
    """The state of one attempt; `execute()` returns its outcome."""

    def __init__(self, engine: Engine, claimed: Claimed, target: Target) -> None:
        self.engine = engine
        self.claimed = claimed
        self.target = target
        self.started = utcnow()
        self.clock = time.perf_counter()
        self.refreshed = False
        self.missing_media: list[str] = []
        self.publish_called = False  # in this attempt: only its answer can clear the mark
        self.platform = target.platform
        self.checkpoint: dict[str, Any] = {"steps": {}, **(target.checkpoint or {})}

    async def execute(self) -> str:
        try:
            await self._prepare()
            if self.target.account_status == AccountStatus.disconnected:
                return await settle_disconnected(self)
            if self.claimed.status == DeliveryStatus.processing and await self._deferred():
                return "deferred"
            if self.claimed.status == DeliveryStatus.publishing and await self._call_may_be_live():
                return "waiting"
            if "publish_started" in self.checkpoint:
                outcome = await self._reconcile()
                if outcome is not None:
                    return outcome
            if self.claimed.attempts > self.engine.policy.max_attempts:
                return await self._give_up()
            if self.missing_media:  # deleted since the post was accepted: never post without
                raise media_deleted(self.missing_media)
            await self._run_steps()
            return await self._publish()
        except LeaseLost:
            log.warning("lease_lost", delivery_id=str(self.claimed.id))
            return "lease_lost"
        except PlatformError as exc:
            return await self._on_error(exc)
        except Exception as exc:
            log.exception("delivery_crashed", delivery_id=str(self.claimed.id))
            internal = PlatformError(
                ErrorKind.server_error,
                "internal_error",
                f"Soku failed while delivering: {type(exc).__name__}.",
            )
            return await self._on_error(internal)

    # --- loading -------------------------------------------------------------------------

    async def _prepare(self) -> None:
        """The job and the connector, from what the claim read (no query for a text post)."""
        target = self.target
        TASK_FIELDS.set(self._log_fields)  # this run's task: every line it logs carries them
        draft = self.engine.draft(target.post_id, target.content)
        media = await self._media_urls(target.media_ids or [])
        self.job = Job(
            delivery_id=str(target.delivery_id),
            post_id=str(target.post_id),
            platform=target.platform,
            account=self._access(target),
            text=draft.text,
            media_type=draft.media_type,
            image_urls=media if media and draft.media_type == "image" else draft.image_urls,
            video_urls=media if media and draft.media_type == "video" else draft.video_urls,
            checkpoint=self.checkpoint,
            publishing_since=self._publishing_since(),
        )
        self.connector = self.engine.connector(self.job.account)
        log.info("delivery_attempt", attempt=self.claimed.attempts)

    def _log_fields(self) -> dict[str, Any]:
        target = self.target
        return {
            "request_id": target.request_id,
            "post_id": str(target.post_id),
            "delivery_id": str(target.delivery_id),
            "platform": target.platform,
        }

    async def _media_urls(self, media_ids: list[str]) -> tuple[str, ...]:
        """Our stored copies' public URLs, in the post's order (platforms that pull by URL)."""
        if not media_ids:
            return ()
        from soku.media import repository as media_repo
        from soku.media.service import public_url

        async with self.engine.ctx.db.read() as session:
            found = await media_repo.by_ids(session, media_ids)
        self.missing_media = [i for i in media_ids if i not in found]
        return tuple(public_url(self.engine.ctx, found[i]) for i in media_ids if i in found)

    def _access(self, target: Target) -> AccountAccess:
        return AccountAccess(
            platform=target.platform,  # a delivery's platform is its account's
            account_id=target.account_id,
            platform_user_id=target.platform_user_id,
            username=target.username,
            access_token=self.engine.open_token(target.access_token),
            refresh_token=self.engine.open_token(target.refresh_token),
            expires_at=target.expires_at,
            sandbox=target.sandbox,
        )

    def _publishing_since(self) -> dt.datetime | None:
        started = self.checkpoint.get("publish_started")
        return dt.datetime.fromisoformat(started) if isinstance(started, str) else None

    async def _give_up(self) -> str:
        """Claimed more often than the policy allows (workers died on it): stop here."""
        message = (
            f"Gave up after {self.claimed.attempts - 1} attempts that did not finish "
            "(the worker stopped while delivering)."
        )
        return await self.finish(
            "failed",
            status=DeliveryStatus.failed,
            error={"code": "too_many_attempts", "message": message, "retryable": False},
        )

    # --- caps --------------------------------------------------------------------------------

    async def _deferred(self) -> bool:
        """Over a publishing cap already: defer before any step runs (nothing uploaded).

        Without steps left to run, the check made with the publishing mark is enough.
        """
        caps = LIMITS[self.platform].publish_caps
        if not caps or not self._steps_left():
            return False
        mark = (self.claimed.id, self.target.account_ref, caps)
        async with self.engine.ctx.db.read() as session:
            connection = await session.connection()
            full = await connection.run_sync(lambda c: over_caps(c, [mark], utcnow()))
        if not full:
            return False
        n, free_at = full[self.claimed.id]
        await self._defer(caps[n], free_at)
        return True

    async def _defer(self, cap: PublishCap, free_at: dt.datetime) -> str:
        """Back to the queue until the cap frees; not counted as an attempt."""
        message = (
            f"{self.platform} allows {cap.count} posts per {cap.window_seconds} s "
            f"per account; delayed until {free_at.isoformat()}."
        )
        return await self.finish(
            "deferred",
            status=DeliveryStatus.queued,
            run_at=free_at,
            attempts=self.claimed.attempts - 1,
            error={"code": "publish_cap", "message": message, "retryable": True},
        )

    # --- the steps -------------------------------------------------------------------------

    async def _call_may_be_live(self) -> bool:
        """A publish taken over from a worker whose lease lapsed may still be in flight there
        (a stalled worker is not a dead one): leave it until that call's deadline has passed,
        then ask the platform."""
        since = self._publishing_since()
        settled = since + self._publish_deadline() if since else None
        if settled is None or settled <= utcnow():
            return False
        await self._update(lease_expires_at=settled, attempts=self.claimed.attempts - 1)
        log.info(
            "publish_may_be_in_flight", delivery_id=str(self.claimed.id), until=settled.isoformat()
        )
        return True

    def _publish_deadline(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.engine.ctx.settings.http_timeout_seconds + 1)

    async def _reconcile(self) -> str | None:
        result = await self._call(self.connector.reconcile)
        if isinstance(result, Published):
            return await self._published(result, "reconciled")
        if isinstance(result, CannotTell):
            message = (
                "The platform could not tell whether the earlier publish call went "
                f"through ({result.reason}); not retried, to avoid a duplicate post. "
                "Check the account, then retry the post if it is missing."
            )
            return await self.finish(
                "unknown",
                status=DeliveryStatus.unknown,
                error={"code": "unknown_outcome", "message": message, "retryable": False},
            )
        assert isinstance(result, NotPublished)
        self.checkpoint.pop("publish_started", None)
        await self._save_checkpoint()
        return None

    def _steps_left(self) -> bool:
        return any(
            step.name not in self.checkpoint["steps"] for step in self.connector.steps(self.job)
        )

    async def _run_steps(self) -> None:
        for step in self.connector.steps(self.job):
            if step.name in self.checkpoint["steps"]:
                continue
            self.checkpoint["steps"][step.name] = await self._call(step.run)
            await self._save_checkpoint()
            self.engine.crash_point(f"step:{step.name}")

    async def _publish(self) -> str:
        over = await self._reserve_publish()
        if over is not None:
            return await self._defer(*over)
        self._rebuild_job()
        self.engine.crash_point("publishing")
        self.publish_called = True
        try:
            async with asyncio.timeout(self.engine.ctx.settings.http_timeout_seconds):
                result = await self._call(self.connector.publish)
        except TimeoutError:
            raise PlatformError(
                ErrorKind.timeout,
                "publish_timeout",
                f"The platform did not answer the publish call within "
                f"{self.engine.ctx.settings.http_timeout_seconds:g} s.",
            ) from None
        self.engine.crash_point("published_call")
        return await self._published(result, "published")

    async def _reserve_publish(self) -> tuple[PublishCap, dt.datetime] | None:
        """Mark the delivery `publishing` (with a fresh lease for the call: it has a deadline)
        unless that would exceed a publishing cap; then the cap and when it frees.

        The group checks the caps and makes the mark in one transaction serialized per
        account (a row lock on PostgreSQL, the single writer on SQLite): deliveries of one
        account claimed together would otherwise all pass the check before any of them
        counted as publishing.
        """
        checkpoint = {**self.checkpoint, "publish_started": utcnow().isoformat()}
        values = {
            "status": DeliveryStatus.publishing.value,
            "checkpoint": checkpoint,
            "updated_at": utcnow(),
        }
        change = FencedChange(self.claimed.id, self.engine.owner, values, lease=self.engine.lease)
        caps = LIMITS[self.platform].publish_caps
        full = await self.engine.writes.mark(change, account=self.target.account_ref, caps=caps)
        if full is not None:
            n, free_at = full
            return caps[n], free_at
        self.checkpoint = checkpoint
        return None

    async def _call(self, method: Any) -> Any:
        """A connector call; an expired token is refreshed and the call tried once more. A
        token refused again after its refresh (in this attempt) needs the user."""
        try:
            return await method(self.job, self.engine.clients(self.platform))
        except PlatformError as exc:
            if exc.kind != ErrorKind.token_expired:
                raise
            if self.refreshed:
                raise refused_after_refresh(exc, self.job.account) from exc
        await self._refresh()
        return await self._call(method)

    async def _refresh(self) -> None:
        self.refreshed = True
        access = await refresh_account(
            self.engine, self.connector, self.target.account_ref, self.job.account
        )
        self.job = dataclasses.replace(self.job, account=access)

    # --- recording ---------------------------------------------------------------------------

    def _rebuild_job(self) -> None:
        self.job = dataclasses.replace(
            self.job, checkpoint=self.checkpoint, publishing_since=self._publishing_since()
        )

    async def _save_checkpoint(self) -> None:
        await self._update(checkpoint=self.checkpoint)
        self._rebuild_job()

    async def _update(self, **values: Any) -> None:
        change = FencedChange(
            self.claimed.id, self.engine.owner, {"updated_at": utcnow(), **values}
        )
        await self.engine.writes.change(change)

    async def _published(self, result: Published, outcome: str) -> str:
        self.checkpoint.pop("publish_started", None)
        return await self.finish(
            outcome,
            status=DeliveryStatus.published,
            platform_post_id=result.platform_post_id,
            url=result.url,
            published_at=utcnow(),
            error=None,
            response=result.raw,
        )

    async def _on_error(self, exc: PlatformError) -> str:
        return await settle_error(self, exc)

    async def finish(
        self,
        outcome: str,
        *,
        status: DeliveryStatus,
        response: Any = None,
        http_status: int | None = None,
        **values: Any,
    ) -> str:
        """Write the delivery's new state, its attempt row and its post's status at once."""
        now = utcnow()
        error = values.get("error")
        change = FencedChange(
            self.claimed.id,
            self.engine.owner,
            dict(
                status=status.value,
                lease_owner=None,
                lease_expires_at=None,
                checkpoint=self.checkpoint,
                updated_at=now,
                **values,
            ),
        )
        attempt = dict(
            delivery_id=self.claimed.id,
            started_at=self.started,
            finished_at=now,
            outcome=outcome,
            http_status=http_status,
            error=error,
            scheduled_for=self.claimed.run_at,
            worker=self.engine.owner,
            response=response if isinstance(response, dict) else None,
        )
        await self.engine.writes.change(change, post_id=self.target.post_id, attempt=attempt)
        self._observe(outcome, status, error, http_status)
        return outcome

    def _observe(
        self, outcome: str, status: DeliveryStatus, error: Any, http_status: int | None
    ) -> None:
        """Metrics and the attempt's log line: with the error's code and message when there is
        one, at warning level when the delivery ended without being published."""
        self.engine.metrics.finished(self.platform, outcome, time.perf_counter() - self.clock)
        fields: dict[str, Any] = {"attempt": self.claimed.attempts}
        if isinstance(error, dict):
            fields.update(
                error_code=error.get("code"), error=error.get("message"), http_status=http_status
            )
            if "origin" in error:  # where a call that got no answer went
                fields["origin"] = error["origin"]
        emit = log.warning if status in _GAVE_UP else log.info
        emit("delivery_finished", outcome=outcome, status=status.value, **fields)
