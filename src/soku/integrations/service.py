"""Connecting accounts from the operator's side (OAuth connect flows come with each platform)."""

from __future__ import annotations

import secrets

from cryptography.fernet import InvalidToken
from sqlalchemy.ext.asyncio import AsyncSession

from soku.auth.models import User
from soku.db import utcnow
from soku.errors import Conflict, NotFound, ValidationFailed
from soku.integrations import repository
from soku.integrations.models import Account, AccountStatus
from soku.integrations.vault import TokenVault
from soku.platforms import PLATFORM_NAMES
from soku.platforms.base import Identity


def _problem(field: str, message: str) -> ValidationFailed:
    return ValidationFailed.from_problems(
        [{"field": field, "reason": "invalid", "message": message}]
    )


def _check_platform(platform: str) -> None:
    if platform not in PLATFORM_NAMES:
        raise _problem(
            "platform", f"Unknown platform {platform!r}; one of {', '.join(PLATFORM_NAMES)}."
        )


def check_account_id(platform: str, account_id: str) -> str:
    """The user's name for an account, stripped, once it is a usable one."""
    _check_platform(platform)
    account_id = account_id.strip()
    if not account_id or len(account_id) > 200:
        raise _problem("account-id", "The account id must be 1 to 200 characters.")
    if not account_id.isprintable():  # PostgreSQL's text cannot hold a NUL: no 500 for one
        raise _problem(
            "account-id", "The account id must not hold control or invisible characters."
        )
    return account_id


def _checked(
    platform: str,
    account_id: str,
    sandbox: bool,
    access_token: str | None,
    refresh_token: str | None,
) -> str:
    """The account id, stripped, once what `connect_account` was given makes sense."""
    account_id = check_account_id(platform, account_id)
    if not sandbox and not access_token:
        raise _problem("access-token", "A real account needs --access-token (or use --sandbox).")
    if sandbox and (access_token or refresh_token):  # a sandbox account gets made-up tokens
        field = "access-token" if access_token else "refresh-token"
        raise _problem(
            field,
            f"--sandbox and --{field} do not go together: a sandbox account is given "
            f"made-up tokens. Leave out one of them.",
        )
    return account_id


async def connect_account(
    session: AsyncSession,
    user: User,
    platform: str,
    account_id: str,
    *,
    sandbox: bool,
    vault: TokenVault,
    access_token: str | None = None,
    refresh_token: str | None = None,
    username: str | None = None,
    platform_user_id: str | None = None,
    authorized: Identity | None = None,
) -> Account:
    """Connects (or connects again) the user's account. With `authorized` (a connect flow
    the user finished at the platform, or at its fake for a sandbox account) the account
    takes what the platform said, replacing the tokens of one connected already."""
    if authorized is None:
        account_id = _checked(platform, account_id, sandbox, access_token, refresh_token)
    else:
        account_id = check_account_id(platform, account_id)
    existing = await repository.find_account(session, user.id, platform, account_id)
    if existing is not None and existing.status == AccountStatus.connected and not authorized:
        _refuse_if_readable(existing, vault)
    if existing is not None and authorized is not None:
        await _refuse_another_user(session, existing, authorized)
    # A disconnected account, one that needs_reauth (its delivery said "connect the account
    # again"), or one whose tokens this SOKU_SECRET_KEY cannot open (sealed with a key that
    # was lost) takes the new tokens and keeps what was not given anew.
    account = existing or Account(user_id=user.id, platform=platform, account_id=account_id)
    account.sandbox = sandbox
    account.status = AccountStatus.connected
    if authorized is None:
        _fill(account, vault, access_token, refresh_token, username, platform_user_id)
    else:
        _take(account, vault, authorized)
    account.created_at = account.created_at or utcnow()
    session.add(account)
    await session.flush()
    return account


def _fill(
    account: Account,
    vault: TokenVault,
    access_token: str | None,
    refresh_token: str | None,
    username: str | None,
    platform_user_id: str | None,
) -> None:
    """What the operator gave; what was not given is kept, or made up for a sandbox one."""
    sandbox, account_id = account.sandbox, account.account_id
    account.username = (
        username or account.username or (f"sandbox_{account_id}" if sandbox else None)
    )
    account.platform_user_id = (
        platform_user_id
        or account.platform_user_id
        or (f"sbx_{secrets.token_hex(6)}" if sandbox else None)
    )
    account.access_token = vault.seal(
        access_token or (f"sandbox-{secrets.token_hex(8)}" if sandbox else None)
    )
    account.refresh_token = vault.seal(
        refresh_token or (f"sandbox-refresh-{secrets.token_hex(8)}" if sandbox else None)
    )


def _take(account: Account, vault: TokenVault, authorized: Identity) -> None:
    """What the platform said at the end of a connect flow, all of it (nothing kept)."""
    account.platform_user_id = authorized.platform_user_id
    account.username = authorized.username
    account.access_token = vault.seal(authorized.access_token)
    account.refresh_token = vault.seal(authorized.refresh_token)
    account.expires_at, account.scopes = authorized.expires_at, authorized.scopes


async def disconnect_account(
    session: AsyncSession, user: User, platform: str, account_id: str
) -> Account:
    """The account no longer a target, its tokens erased. Its deliveries that have not run
    fail with `account_disconnected` when they do, unless it is connected again first."""
    _check_platform(platform)
    account_id = account_id.strip()
    account = await repository.find_account(session, user.id, platform, account_id)
    if account is None:
        raise NotFound(f"{user.email} has no {platform} account {account_id!r}.")
    account.status = AccountStatus.disconnected
    account.access_token = account.refresh_token = account.expires_at = None
    await session.flush()
    return account


async def _refuse_another_user(
    session: AsyncSession, account: Account, authorized: Identity
) -> None:
    """Conflict when a connect flow signed in as another platform user than the account's
    while some of its posts wait: they were meant to go out as the account's own user, and
    would go out as the new one. An id a sandbox account was given by the CLI (`sbx_…`,
    never a fake's user) does not count as a user."""
    old = account.platform_user_id
    if not old or old == authorized.platform_user_id:
        return
    if account.sandbox and old.startswith("sbx_"):
        return
    waiting = await repository.unfinished_deliveries(session, account.id)
    if not waiting:
        return
    was = f"@{account.username}" if account.username else old
    now = f"@{authorized.username}" if authorized.username else authorized.platform_user_id
    raise Conflict(
        f"{account.platform} account {account.account_id!r} is {was}, and {waiting} of its "
        f"posts wait to go out as {was}; you signed in as {now}. Sign in as {was} to "
        f"reconnect it, or connect {now} under another account id."
    )


def _refuse_if_readable(account: Account, vault: TokenVault) -> None:
    """Conflict for a connected account, unless this key cannot open its tokens."""
    try:
        vault.open(account.access_token)
    except InvalidToken:
        return
    raise Conflict(f"{account.platform} account {account.account_id} is connected already.")
