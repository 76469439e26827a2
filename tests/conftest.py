"""Fixtures: the app on SQLite and on PostgreSQL (schema built by the migrations), users, keys."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from soku import migrate, operations
from soku.app import create_app
from soku.auth.models import SubscriptionStatus
from soku.config import Settings
from soku.context import AppContext
from tests.media_files import MediaServer

PG_URL = os.environ.get(
    "SOKU_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"
ALL_PLATFORMS = (
    "instagram",
    "tiktok",
    "youtube",
    "facebook",
    "x",
    "threads",
    "linkedin",
    "snapchat",
)


def unavailable(what: str, why: object) -> None:
    """Skip on a developer's machine; fail in CI, where every suite must run."""
    message = f"{what} is not reachable: {why}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


async def create_database() -> str:
    """A fresh database on the test server, for one test session."""
    name = f"soku_test_{secrets.token_hex(4)}"
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        unavailable("PostgreSQL", exc)
    finally:
        await admin.dispose()
    base, _, _ = PG_URL.rpartition("/")
    return f"{base}/{name}"


async def drop_database(url: str) -> None:
    name = url.rpartition("/")[2]
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


def make_settings(data_dir: Path, database_url: str | None = None, **extra: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "secret_key": "test-secret",
        "log_level": "warning",
        "log_format": "json",
        "media_allow_private": True,  # the media the tests post is served from loopback
        **extra,
    }
    if database_url:
        values["database_url"] = database_url
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AppContext]:
    """The service's context on one database, its schema built by the migrations."""
    data_dir = tmp_path_factory.mktemp(f"soku-{request.param}")
    url = await create_database() if request.param == "postgresql" else None
    ctx = AppContext.build(make_settings(data_dir, url))
    await migrate.upgrade(ctx.db.engine)
    yield ctx
    await ctx.aclose()
    if url:
        await drop_database(url)


@pytest.fixture(scope="session")
async def client(backend: AppContext) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ctx=backend)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://soku.test") as http:
        yield http


@dataclass(frozen=True)
class Caller:
    email: str
    key: str
    user_id: uuid.UUID

    @property
    def headers(self) -> dict[str, str]:
        return {"soku-api-key": self.key}


async def make_caller(
    ctx: AppContext,
    *,
    subscription: SubscriptionStatus = SubscriptionStatus.active,
    plan: str = "unlimited",
    accounts: Iterable[tuple[str, str]] | None = None,
) -> Caller:
    """A user with one key and sandbox accounts (default: one `<platform>_main` per platform)."""
    email = f"user-{secrets.token_hex(5)}@example.test"
    wanted = list(accounts) if accounts is not None else [(p, f"{p}_main") for p in ALL_PLATFORMS]
    async with ctx.db.transaction() as session:
        user = await operations.create_user(session, ctx.settings, email, subscription, plan)
        for platform, account_id in wanted:
            await operations.connect_account(
                session, ctx.settings, email, platform, account_id, True, None, None
            )
        issued = await operations.create_key(session, email, "test")
    return Caller(email=email, key=issued["key"], user_id=uuid.UUID(user["id"]))


@pytest.fixture
async def caller(backend: AppContext) -> Caller:
    return await make_caller(backend)


@pytest.fixture(scope="session")
def media_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServer]:
    """Real image and video files over HTTP on loopback, for posts with media."""
    server = MediaServer(tmp_path_factory.mktemp("media-files"))
    yield server
    server.close()
