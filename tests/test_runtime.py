"""`soku.runtime`: what a server or worker process does once it has started, and its loop."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from soku.app import create_app
from soku.runtime import YOUNG_THRESHOLD, loop_name, run, settle_heap
from tests.conftest import make_settings


@pytest.fixture
def restored_gc() -> Iterator[None]:
    """The test process's collector as it was (the rest of the suite keeps its defaults)."""
    threshold = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_settling_freezes_what_is_alive_and_spaces_young_collections() -> None:
    _, middle, old = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    kept = [[n] for n in range(1000)]  # alive at start-up: frozen with the rest
    settle_heap()
    assert gc.get_freeze_count() > len(kept)
    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, old)
    # what is made afterwards is still collected, cycles included
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1


@pytest.mark.usefixtures("restored_gc")
async def test_the_server_process_settles_when_it_starts(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    plain = create_app(settings)
    async with plain.router.lifespan_context(plain):
        assert gc.get_freeze_count() == 0  # apps made by tests and embedders do not
    app = create_app(settings, settle_heap=True)  # as `soku serve` makes it
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD


@pytest.mark.usefixtures("restored_gc")
def test_the_standalone_sandbox_settles_once_it_listens(capsys: pytest.CaptureFixture[str]) -> None:
    from soku.sandbox.__main__ import _ready

    assert gc.get_freeze_count() == 0
    _ready("127.0.0.1", 8765)  # what `python -m soku.sandbox` calls once its socket listens
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    assert capsys.readouterr().out == "sandbox ready on http://127.0.0.1:8765\n"


async def _answer(value: int) -> tuple[str, int]:
    await asyncio.sleep(0)
    return loop_name(), value


def test_a_process_loop_runs_on_uvloop_when_it_is_installed() -> None:
    assert run(_answer(7)) == ("uvloop", 7)


def test_without_uvloop_the_loop_is_asyncios(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as where it is not installed
    assert run(_answer(8)) == ("asyncio", 8)


def test_an_error_in_the_loop_reaches_the_caller() -> None:
    async def broken() -> None:
        raise LookupError("inside")

    with pytest.raises(LookupError, match="inside"):
        run(broken())
