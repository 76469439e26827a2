"""The fakes the connector tests drive, served once a session (`connector_world.Sandboxes`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from tests.platforms.connector_world import Sandboxes


@pytest.fixture(scope="session")
async def sandboxes(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sandboxes]:
    async with contextlib.AsyncExitStack() as stack:
        yield Sandboxes(stack, tmp_path_factory)
