"""What an error does to a delivery: retry later, fail, or send the user to reconnect."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import update

from soku.db import utcnow
from soku.delivery.models import DeliveryStatus
from soku.integrations.models import Account, AccountStatus
from soku.platforms.connector import ErrorKind, PlatformError

if TYPE_CHECKING:
    from soku.context import AppContext
    from soku.delivery.runner import DeliveryRun

# Errors after which the publish call may still have gone through.
AMBIGUOUS = frozenset({ErrorKind.timeout, ErrorKind.server_error})


def media_deleted(media_ids: list[str]) -> PlatformError:
    """A post's media deleted after it was accepted (a finished post holds none, and may be
    retried later): the delivery fails rather than publish the post without it."""
    return PlatformError(
        ErrorKind.permanent,
        "media_not_found",
        f"This post's media {', '.join(media_ids)} was deleted after the post was accepted; "
        "it is not published without it. Upload it again in a new post.",
    )


async def mark_needs_reauth(ctx: AppContext, account_ref: uuid.UUID) -> None:
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Account)
            .where(Account.id == account_ref, Account.status != AccountStatus.disconnected)
            .values(status=AccountStatus.needs_reauth.value)
            .execution_options(synchronize_session=False)
        )


async def settle_disconnected(run: DeliveryRun) -> str:
    """The account was disconnected (its tokens erased) before this attempt: nothing is sent.
    A publish call that an earlier attempt left in flight can no longer be checked: unknown."""
    account = f"{run.target.platform} account {run.target.account_id!r}"
    if "publish_started" in run.checkpoint:
        message = (
            f"The {account} was disconnected after a publish call that may have gone through, "
            "so Soku cannot ask the platform. Check the account; if the post is missing, "
            "connect the account again (soku accounts connect) and retry the post."
        )
        outcome, status = "unknown", DeliveryStatus.unknown
    else:
        message = (
            f"The {account} was disconnected before this delivery ran. Connect it again "
            "(soku accounts connect), then retry the post."
        )
        outcome, status = "failed", DeliveryStatus.failed
    kind = ErrorKind.permanent.value
    error = {"code": "account_disconnected", "message": message, "retryable": False, "kind": kind}
    return await run.finish(outcome, status=status, error=error)


async def settle_error(run: DeliveryRun, exc: PlatformError) -> str:
    engine = run.engine
    exc.hide(_own_tokens(run))  # a plain-text answer may echo them; kept and shown below
    if exc.kind == ErrorKind.reauth_required:
        await mark_needs_reauth(engine.ctx, run.target.account_ref)
    if run.publish_called and exc.kind not in AMBIGUOUS:
        # the publish call was answered: nothing went out. An error of any other call (the
        # reconciliation's own, say a 429) tells nothing about an earlier publish: ask again.
        run.checkpoint.pop("publish_started", None)
    decision = engine.policy.decide(exc.kind, run.claimed.attempts, exc.retry_after)
    error = {
        "code": exc.code,
        "message": f"{exc.message} ({decision.reason})",
        "retryable": decision.retry,
        "kind": exc.kind.value,
        "platformResponse": exc.raw,
    }
    if exc.origin:  # stored and logged; GET /v1/posts/{id} shows code, message, response only
        error["origin"] = exc.origin
    if decision.delay is not None:
        run_at = utcnow() + dt.timedelta(seconds=decision.delay)
        return await run.finish(
            "retry",
            status=DeliveryStatus.queued,
            run_at=run_at,
            error=error,
            http_status=exc.http_status,
            response=exc.raw,
        )
    return await run.finish(
        "failed",
        status=DeliveryStatus.failed,
        error=error,
        http_status=exc.http_status,
        response=exc.raw,
    )


def _own_tokens(run: DeliveryRun) -> tuple[str | None, ...]:
    """The account's tokens as this attempt last used them (after a refresh, the new ones);
    none when it failed before its job was made."""
    job = getattr(run, "job", None)
    if job is None:
        return ()
    return job.account.access_token, job.account.refresh_token
