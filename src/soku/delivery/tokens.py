"""Refreshing an account's platform tokens during a delivery."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import update

from soku.integrations.models import Account, AccountStatus
from soku.platforms.connector import AccountAccess, Connector, ErrorKind, PlatformError

if TYPE_CHECKING:
    from soku.delivery.engine import Engine

log = structlog.get_logger("soku.delivery")
_TRANSIENT = frozenset(
    {ErrorKind.rate_limited, ErrorKind.server_error, ErrorKind.timeout, ErrorKind.connection}
)


async def refresh_account(
    engine: Engine, connector: Connector, account_ref: uuid.UUID, access: AccountAccess
) -> AccountAccess:
    """New tokens, stored encrypted. A refused refresh raises `reauth_required`, which sends
    the account to `needs_reauth` (`failures.settle_error`, as for every such error).

    A refresh that got no answer, or a 5xx or 429, proves nothing about the account: that
    error is raised as it is and the delivery is retried.
    """
    try:
        tokens = await connector.refresh(access, engine.clients(access.platform))
    except PlatformError as exc:
        if exc.kind in _TRANSIENT:
            raise
        log.warning("token_refresh_refused", account_id=access.account_id, error_code=exc.code)
        message = (
            f"The {access.platform} token of account {access.account_id!r} expired and could "
            f"not be refreshed. {exc.message}"
        )
        if "connect" not in exc.message.lower():  # the connector's may say it already
            message += " Connect the account again."
        raise _reauth(exc, message) from exc
    async with engine.ctx.db.transaction() as session:
        await session.execute(
            update(Account)
            # a disconnect made meanwhile erased the tokens: it is not undone by this refresh
            .where(Account.id == account_ref, Account.status != AccountStatus.disconnected)
            .values(
                access_token=engine.vault.seal(tokens.access_token),
                refresh_token=engine.vault.seal(tokens.refresh_token or access.refresh_token),
                expires_at=tokens.expires_at,
                status=AccountStatus.connected.value,
            )
            .execution_options(synchronize_session=False)
        )
    expires = tokens.expires_at.isoformat() if tokens.expires_at else None
    log.info("token_refreshed", account_id=access.account_id, expires_at=expires)
    return AccountAccess(
        platform=access.platform,
        account_id=access.account_id,
        platform_user_id=access.platform_user_id,
        username=access.username,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token or access.refresh_token,
        expires_at=tokens.expires_at,
        sandbox=access.sandbox,
    )


def refused_after_refresh(exc: PlatformError, account: AccountAccess) -> PlatformError:
    """A token refused again after its refresh: refreshing once more would not help (it was
    revoked, or its permissions taken away), so only the user can."""
    message = (
        f"The {account.platform} token of account {account.account_id!r} was refreshed and "
        f"still refused ({exc.message.rstrip('.')}): connect the account again."
    )
    return _reauth(exc, message)


def _reauth(exc: PlatformError, message: str) -> PlatformError:
    """`reauth_required` with `message`, keeping the platform's status and answer."""
    return PlatformError(
        ErrorKind.reauth_required,
        "reauth_required",
        message,
        http_status=exc.http_status,
        raw=exc.raw,
    )
