"""Fixtures of the engine tests: the generic fake served over real HTTP by uvicorn, a migrated
database per backend (SQLite and PostgreSQL), and per test a fresh AppContext, the API on it,
and workers started on demand (see `harness.py`); for the tests with real processes, their
`world` (see `processes.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from soku import migrate
from soku.context import AppContext
from soku.delivery.engine import Engine, PlatformClients
from soku.sandbox.generic import create_generic_fake
from tests.asgi_server import serving
from tests.conftest import create_database, drop_database, make_settings
from tests.delivery.harness import Harness
from tests.delivery.processes import World, open_world
from tests.delivery.webhook_receivers import Hanging, Receiver
from tests.media_files import MediaServer

MakeHarness = Callable[..., Awaitable[Harness]]


@pytest.fixture(scope="session")
async def fake_server() -> AsyncIterator[str]:
    """The generic fake platform on a free loopback port, for the whole session."""
    async with serving(create_generic_fake()) as url:
        yield url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A fresh database with the schema built by the migrations, for one backend."""
    data_dir = tmp_path_factory.mktemp(f"delivery-{request.param}")
    url = (
        await create_database()
        if request.param == "postgresql"
        else f"sqlite+aiosqlite:///{data_dir / 'soku.db'}"
    )
    ctx = AppContext.build(make_settings(data_dir, url))
    try:
        await migrate.upgrade(ctx.db.engine)
    finally:
        await ctx.aclose()
    yield url
    if request.param == "postgresql":
        await drop_database(url)


@pytest.fixture
async def make_harness(
    database_url: str, fake_server: str, tmp_path: Path
) -> AsyncIterator[MakeHarness]:
    """Builds the harness of one test; settings can be overridden (one harness per test)."""
    built: list[Harness] = []

    async def build(**overrides: object) -> Harness:
        assert not built, "one harness per test"
        values: dict[str, object] = {
            "sandbox_base_url": fake_server,
            "sandbox_fakes": "generic",  # the engine's tests drive the generic fake's faults
            # any future time: a request slowed by a busy machine must not make it too soon
            "min_schedule_lead_seconds": 0,
            "poll_seconds": 0.2,
            "retry_base_seconds": 0.05,
            "retry_max_seconds": 1,
            "lease_seconds": 5,
            "http_timeout_seconds": 3,
            "shutdown_grace_seconds": 2,
            **overrides,
        }
        ctx = AppContext.build(make_settings(tmp_path, database_url, **values))
        harness = Harness(ctx, fake_server)
        await harness.open()
        built.append(harness)
        return harness

    yield build
    for harness in built:
        await harness.close()


@pytest.fixture
async def env(make_harness: MakeHarness) -> Harness:
    """The harness with the default test settings."""
    return await make_harness()


@pytest.fixture
async def engine(env: Harness) -> AsyncIterator[Engine]:
    """An engine whose writes form one group at a time (as on SQLite), so that writes made
    together share a group on both databases; the parallel tests set their own."""
    engine = Engine(ctx=env.ctx, clients=PlatformClients(4, 3))
    engine.writes.parallel = 1
    yield engine
    await engine.clients.aclose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def world(
    request: pytest.FixtureRequest, tmp_path: Path, media_server: MediaServer
) -> AsyncIterator[World]:
    """Soku as real processes (`processes.py`): a fresh database, the fake in its own process."""
    async with open_world(request.param, tmp_path, media_server) as opened:
        yield opened


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    async with serving(found.app()) as url:
        found.url = f"{url}/hook"
        yield found


@pytest.fixture
async def hanging() -> AsyncIterator[Hanging]:
    found = Hanging()
    async with serving(found.app()) as url:
        found.url = f"{url}/hook"
        yield found
        found.release.set()
