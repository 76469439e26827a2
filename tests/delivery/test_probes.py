"""A worker's own port: /metrics with its delivery counters, /healthz and /readyz, over HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from soku import migrate
from soku.delivery.probes import ProbeServer
from soku.serving import bind
from tests.asgi_server import free_port
from tests.delivery.harness import Harness, text_post


async def test_a_worker_serves_its_metrics_and_probes(env: Harness) -> None:
    caller = await env.caller([("x", "x_main"), ("threads", "threads_main")])
    async with ProbeServer(env.ctx, bind("127.0.0.1", 0)) as probes:
        base = f"http://127.0.0.1:{probes.port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            assert (await http.get("/readyz")).json() == {"status": "ready"}
            env.start_worker()
            post_id = await env.create(caller, text_post("x", "threads"))
            await env.wait_status(caller, post_id, "published")
            metrics = await http.get("/metrics")
            assert metrics.status_code == 200
            assert metrics.headers["content-type"].startswith("text/plain")
            text = metrics.text
            for platform in ("x", "threads"):
                line = f'soku_deliveries_total{{outcome="published",platform="{platform}"}}'
                assert line in text, text
            assert "soku_queue_due " in text and "soku_delivery_attempt_seconds_count" in text
            missing = await http.get("/v1/posts")  # only the probes: the API is elsewhere
            assert missing.status_code == 404
            assert missing.json()["error"]["code"] == "not_found"
    with pytest.raises(httpx.ConnectError):  # stopped with its block
        async with httpx.AsyncClient(base_url=base, timeout=2) as http:
            await http.get("/healthz")


def test_bind_refuses_a_port_that_is_taken() -> None:
    taken = bind("127.0.0.1", 0)
    try:
        with pytest.raises(OSError, match=r"(?i)address already in use"):
            bind("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


async def test_a_workers_readiness_does_not_depend_on_redis(tmp_path: Path) -> None:
    """Workers do not use the rate limits: a Redis that is down leaves them ready."""
    from soku.context import AppContext
    from tests.conftest import make_settings

    redis_url = f"redis://127.0.0.1:{free_port()}/0"
    ctx = AppContext.build(make_settings(tmp_path, None, redis_url=redis_url))
    try:
        await migrate.upgrade(ctx.db.engine)
        async with ProbeServer(ctx, bind("127.0.0.1", 0)) as probes:
            url = f"http://127.0.0.1:{probes.port}/readyz"
            async with httpx.AsyncClient(timeout=10) as http:
                assert (await http.get(url)).json() == {"status": "ready"}
    finally:
        await ctx.aclose()
