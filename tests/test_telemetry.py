"""FastAPI's own OpenTelemetry instrumentation stays off in every app Soku builds.

Soku reports through `/metrics` and its logs. With FastAPI's telemetry on, a configured
global tracer provider would be asked for a tracer (and spans) on every request, and even an
unconfigured one is looked up per request. A recording provider stands in for a configured
one here: no Soku app may ask it for anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace

from soku.app import create_app
from soku.sandbox.__main__ import build_app
from tests.conftest import make_settings


class _RecordingProvider(trace.TracerProvider):
    """A provider FastAPI takes for a configured one; it notes every tracer asked of it."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def get_tracer(self, instrumenting_module_name: str, *args: Any, **kwargs: Any) -> Any:
        self.asked.append(instrumenting_module_name)
        return trace.NoOpTracer()


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> _RecordingProvider:
    recording = _RecordingProvider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: recording)
    return recording


async def _get(app: FastAPI, path: str) -> int:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://soku.test") as client:
        return (await client.get(path)).status_code


async def test_a_plain_fastapi_app_would_trace_each_request(provider: _RecordingProvider) -> None:
    """The stand-in works: FastAPI's default does ask it."""
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    assert await _get(app, "/ping") == 200
    assert provider.asked == ["fastapi"]


async def test_the_service_and_its_mounted_fakes_trace_nothing(
    provider: _RecordingProvider, tmp_path: Path
) -> None:
    app = create_app(make_settings(tmp_path))
    assert await _get(app, "/healthz") == 200
    assert await _get(app, "/sandbox/generic/_inspect/posts") == 200
    assert await _get(app, "/no-such-route") == 404
    assert provider.asked == []


async def test_the_standalone_sandbox_traces_nothing(provider: _RecordingProvider) -> None:
    app = build_app()
    assert await _get(app, "/sandbox/generic/_inspect/posts") == 200
    for name in ("x", "threads", "facebook", "linkedin"):  # each answers as its platform does
        assert await _get(app, f"/sandbox/{name}/no-such-route") in (400, 404)
    assert provider.asked == []
