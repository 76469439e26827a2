"""What the CLI does, as plain async functions over one session (tested without a shell)."""

from __future__ import annotations

import contextlib
import socket
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from soku import migrate
from soku.auth import repository as users_repo
from soku.auth import service as auth_service
from soku.auth.cache import TTL_SECONDS as KEY_CACHE_SECONDS
from soku.auth.models import ApiKey, SubscriptionStatus, User
from soku.config import Settings
from soku.dashboard import sign_ins
from soku.db import Database
from soku.errors import ValidationFailed
from soku.integrations import repository as accounts_repo
from soku.integrations import service as accounts_service
from soku.integrations.models import Account
from soku.integrations.vault import TokenVault
from soku.platforms import INTEGRATIONS

QUICKSTART_ACCOUNTS = {
    "instagram": "ig_main",
    "tiktok": "tt_brand",
    "youtube": "yt_main",
    "facebook": "fb_main",
    "x": "x_main",
    "threads": "threads_main",
    "linkedin": "li_main",
    "snapchat": "snap_main",
}


class SchemaNotReady(Exception):
    """The database schema is behind the code and this shape does not upgrade by itself."""


async def prepare_schema(db: Database, settings: Settings) -> None:
    """SQLite (embedded) upgrades itself; PostgreSQL must be upgraded on purpose. A schema
    newer than this code is refused on both (SchemaTooNew)."""
    current = await migrate.current_revision(db.engine)
    migrate.check_known(current)
    if settings.is_sqlite:
        await migrate.upgrade(db.engine)
    elif current != migrate.head_revision():
        raise SchemaNotReady("The database schema is not up to date: run `soku db upgrade`.")


async def upgrade_database(settings: Settings) -> dict[str, Any]:
    """`soku db upgrade`: the schema's revision before (None: an empty database) and after."""
    db = Database(settings.database_url, pool_size=1)
    try:
        before = await migrate.current_revision(db.engine)
        migrate.check_known(before)
        await migrate.upgrade(db.engine)
        after = await migrate.current_revision(db.engine)
    finally:
        await db.dispose()
    return {"revision": after, "previousRevision": before, "upgraded": before != after}


class SecretKeyMismatch(Exception):
    """SOKU_SECRET_KEY opens none of the platform tokens stored in the database."""


async def ensure_schema_for_serving(settings: Settings) -> None:
    """`serve` and `worker`: the schema ready and a secret key that opens the stored tokens."""
    db = Database(settings.database_url, pool_size=1)
    try:
        await prepare_schema(db, settings)
        await check_secret_key(db, settings)
    finally:
        await db.dispose()


async def check_secret_key(db: Database, settings: Settings) -> None:
    """SecretKeyMismatch unless this process's key opens at least one stored token: with
    another key than the one they were sealed with, every delivery would fail
    (`token_unreadable`). One that opens is enough: a database whose key was lost can be
    served again once an account is connected with the new key."""
    async with db.read() as session:
        tried = await _tokens_none_opens(session, TokenVault(settings.resolved_secret_key))
    if tried:
        raise SecretKeyMismatch(
            f"SOKU_SECRET_KEY opens none of the {tried} platform tokens stored in this "
            "database: every process must use the key they were sealed with. Restore that "
            "key, or, if it is lost, connect the accounts again with this one "
            "(`soku accounts connect`)."
        )


async def _tokens_none_opens(session: AsyncSession, vault: TokenVault) -> int:
    """How many stored tokens `vault` failed to open, if it opens none; 0 if it opens one
    (or none is stored). The first token that opens ends the scan (with the right key, the
    first read); a wrong key reads them all, each refused at its HMAC check, a few
    microseconds."""
    from cryptography.fernet import InvalidToken

    query = select(Account.access_token).where(Account.access_token.is_not(None))
    tried = 0
    async for sealed in await session.stream_scalars(query.execution_options(yield_per=500)):
        tried += 1
        with contextlib.suppress(InvalidToken):
            vault.open(sealed)
            return 0
    return tried


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "email": user.email,
        "subscription": user.subscription_status,
        "plan": user.plan,
    }


def key_json(record: ApiKey) -> dict[str, Any]:
    return {
        "id": str(record.id),
        "prefix": record.prefix,
        "name": record.name,
        "createdAt": record.created_at.isoformat(),
        "lastUsedAt": record.last_used_at.isoformat() if record.last_used_at else None,
        "revokedAt": record.revoked_at.isoformat() if record.revoked_at else None,
    }


def account_json(account: Account) -> dict[str, Any]:
    return {
        "platform": account.platform,
        "accountId": account.account_id,
        "status": account.status,
        "sandbox": account.sandbox,
        "username": account.username,
        "platformUserId": account.platform_user_id,
    }


def _check_plan(settings: Settings, plan: str) -> str:
    if plan not in settings.plan_names:
        raise ValidationFailed.from_problems(
            [
                {
                    "field": "plan",
                    "reason": "unknown_plan",
                    "message": f"Unknown plan {plan!r}; plans: {', '.join(settings.plan_names)}.",
                }
            ]
        )
    return plan


async def create_user(
    session: AsyncSession,
    settings: Settings,
    email: str,
    subscription: SubscriptionStatus,
    plan: str | None,
) -> dict[str, Any]:
    chosen = _check_plan(settings, plan or settings.default_plan)
    return user_json(await auth_service.create_user(session, email, subscription, chosen))


async def update_user(
    session: AsyncSession,
    settings: Settings,
    email: str,
    *,
    subscription: SubscriptionStatus | None = None,
    plan: str | None = None,
) -> dict[str, Any]:
    user = await auth_service.require_user(session, email)
    if subscription is not None:
        user.subscription_status = subscription.value
    if plan is not None:
        user.plan = _check_plan(settings, plan)
    await session.flush()
    return user_json(user)


async def create_key(session: AsyncSession, email: str, name: str | None) -> dict[str, Any]:
    user = await auth_service.require_user(session, email)
    issued = await auth_service.issue_key(session, user, name)
    return {"key": issued.key, **key_json(issued.record), "email": user.email}


async def list_keys(session: AsyncSession, email: str) -> list[dict[str, Any]]:
    """A user's keys as `key_json` shows them: never the key itself, nor its hash."""
    user = await auth_service.require_user(session, email)
    return [key_json(record) for record in await users_repo.keys_of(session, user.id)]


async def revoke_key(session: AsyncSession, key_or_prefix: str) -> dict[str, Any]:
    """The revoked key, and how long running servers may still accept it (their key cache
    is not told of a change made by another process)."""
    record = await auth_service.revoke_key(session, key_or_prefix)
    await sign_ins.end_sign_ins_of_key(session, record.id)  # its dashboard sessions end too
    revoked = key_json(record)
    return {**revoked, "refusedWithinSeconds": KEY_CACHE_SECONDS}


async def connect_account(
    session: AsyncSession,
    settings: Settings,
    email: str,
    platform: str,
    account_id: str,
    sandbox: bool,
    access_token: str | None,
    refresh_token: str | None,
    platform_user_id: str | None = None,
    username: str | None = None,
) -> dict[str, Any]:
    user = await auth_service.require_user(session, email)
    vault = TokenVault(settings.resolved_secret_key)
    unopened = 0 if access_token is None else await _tokens_none_opens(session, vault)
    account = await accounts_service.connect_account(
        session,
        user,
        platform,
        account_id,
        sandbox=sandbox,
        vault=vault,
        access_token=access_token,
        refresh_token=refresh_token,
        platform_user_id=platform_user_id,
        username=username,
    )
    return {**account_json(account), "warnings": _connect_warnings(account, unopened)}


def _connect_warnings(account: Account, unopened: int) -> list[dict[str, str]]:
    """What will not work with this account, known when it is connected; `unopened`: the
    stored tokens this command's key could not open, if it opened none."""
    warnings = []
    if unopened:
        message = (
            f"SOKU_SECRET_KEY opens none of the {unopened} platform tokens stored before: this "
            "account's tokens are sealed with this key, which the processes that read those "
            "do not have; their deliveries to this account will fail with token_unreadable. "
            "Use one SOKU_SECRET_KEY for every command and process (unless this key replaces "
            "a lost one: then connect the other accounts again with it)."
        )
        warnings.append({"code": "secret_key_mismatch", "message": message})
    if not (account.sandbox or account.platform in INTEGRATIONS):
        message = (
            f"This version of Soku has no connector for real {account.platform} accounts: "
            "posts to this account will fail with connector_unavailable. Connect it with "
            "--sandbox to try the flow."
        )
        warnings.append({"code": "connector_unavailable", "message": message})
    return warnings


async def disconnect_account(
    session: AsyncSession, email: str, platform: str, account_id: str
) -> dict[str, Any]:
    """`pendingDeliveries`: the account's deliveries not yet finished, which will fail with
    `account_disconnected` unless it is connected again before they run."""
    user = await auth_service.require_user(session, email)
    account = await accounts_service.disconnect_account(session, user, platform, account_id)
    pending = await accounts_repo.unfinished_deliveries(session, account.id)
    return {**account_json(account), "pendingDeliveries": pending}


async def list_accounts(session: AsyncSession, email: str) -> list[dict[str, Any]]:
    user = await auth_service.require_user(session, email)
    return [account_json(a) for a in await accounts_repo.accounts_of(session, user.id)]


async def quickstart(session: AsyncSession, settings: Settings, email: str) -> dict[str, Any]:
    """Idempotent apart from the key: every run prints a fresh key (keys are shown once)."""
    user = await users_repo.user_by_email(session, auth_service.check_email(email))
    if user is None:
        user = await auth_service.create_user(
            session, email, SubscriptionStatus.active, settings.default_plan
        )
    connected = {
        (a.platform, a.account_id) for a in await accounts_repo.accounts_of(session, user.id)
    }
    vault = TokenVault(settings.resolved_secret_key)
    for platform, account_id in QUICKSTART_ACCOUNTS.items():
        if (platform, account_id) not in connected:
            await accounts_service.connect_account(
                session, user, platform, account_id, sandbox=True, vault=vault
            )
    issued = await auth_service.issue_key(session, user, "quickstart")
    accounts = await accounts_repo.accounts_of(session, user.id)
    return {
        "email": user.email,
        "key": issued.key,
        "accounts": [account_json(a) for a in accounts],
        "dashboard": f"{settings.public_base_url}/dashboard",
    }


class CannotServe(Exception):
    """`soku serve` or a worker's metrics port could not start: its address could not be
    bound (the message says why), or uvicorn gave up on start-up (it has logged why)."""


def run_server(settings: Settings, host: str, port: int, *, run_worker: bool) -> None:
    """`soku serve`: uvicorn on `host:port` until SIGTERM or SIGINT; CannotServe when it
    could not start (the CLI then exits 3, as uvicorn does)."""
    import uvicorn

    from soku.app import create_app
    from soku.http_head import BoundedHttpTools
    from soku.serving import AnnouncingServer, bind, listening_url, log_serving, uvicorn_log_config

    try:  # first: a port that is taken must not start a worker that claims deliveries
        sock = bind(host, port)
    except OSError as exc:
        where = listening_url(host, port)
        raise CannotServe(f"Could not serve on {where}: {exc.strerror or exc}.") from None
    config = uvicorn.Config(
        create_app(settings, run_worker=run_worker, settle_heap=True),
        host=host,
        port=port,
        access_log=False,
        log_level="warning",
        log_config=uvicorn_log_config(settings.log_format),
        loop="auto",
        http=BoundedHttpTools,
        server_header=False,
    )
    server = AnnouncingServer(config, lambda _host, bound: log_serving(host, bound, run_worker))
    try:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: uvicorn has already shut down
            server.run(sockets=[sock])
    except SystemExit:  # uvicorn's way to give up on start-up (exit status 3)
        if server.started:
            raise
    if not server.started:
        where = listening_url(host, port)
        raise CannotServe(f"Could not serve on {where}; the reason is logged on stderr.")


async def run_worker(settings: Settings, concurrency: int | None) -> None:
    """`soku worker`: deliver until SIGTERM or SIGINT, then drain and release. The caller
    has prepared the schema (`ensure_schema_for_serving`), as for `soku serve`."""
    import asyncio
    import signal

    from soku.context import AppContext
    from soku.delivery.probes import ProbeServer
    from soku.delivery.worker import Worker
    from soku.logs import configure_logging
    from soku.runtime import settle_heap

    configure_logging(settings.log_format, settings.log_level)
    sock = _probe_socket(settings)  # before anything starts: a taken port claims nothing
    ctx = AppContext.build(settings)
    try:
        worker = Worker(ctx, concurrency)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, worker.stop)
        settle_heap()
        if sock is None:
            await worker.run()
            return
        async with ProbeServer(ctx, sock):
            await worker.run()
    finally:
        await ctx.aclose()


def _probe_socket(settings: Settings) -> socket.socket | None:
    """The worker's metrics port, bound; CannotServe when it cannot be."""
    from soku.serving import bind

    port = settings.worker_metrics_port
    if port is None:
        return None
    host = settings.worker_metrics_host
    try:
        return bind(host, port)
    except OSError as exc:
        raise CannotServe(f"The worker's metrics port {host}:{port}: {exc.strerror}.") from None
