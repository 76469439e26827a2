"""The fakes are mounted in the service unless `SOKU_SANDBOX_MOUNTED=false`: their control
routes (faults, config, what every sandbox account posted) take no key."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from soku.app import create_app
from soku.platforms import INTEGRATIONS
from tests.conftest import make_settings

FAKES = ("generic", *INTEGRATIONS)


async def control_statuses(tmp_path: Path, **settings: object) -> set[int]:
    app = create_app(make_settings(tmp_path, **settings))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answers = [await client.get(f"/sandbox/{fake}/_faults") for fake in FAKES]
        answers += [await client.get(f"/sandbox/{fake}/_inspect/calls") for fake in FAKES]
    return {answer.status_code for answer in answers}


@pytest.mark.parametrize(("mounted", "statuses"), [(True, {200}), (False, {404})])
async def test_the_fakes_are_mounted_only_when_asked(
    tmp_path: Path, mounted: bool, statuses: set[int]
) -> None:
    assert await control_statuses(tmp_path, sandbox_mounted=mounted) == statuses


async def test_mounted_by_default(tmp_path: Path) -> None:
    assert await control_statuses(tmp_path) == {200}
