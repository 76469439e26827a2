"""A worker process's own HTTP port (`soku worker --metrics-port`): `/metrics`, `/healthz` and
`/readyz`, the same routes as the API's.

A worker's delivery counters (deliveries by outcome, attempt latency, lateness) live in the
process that delivers: an API process started with `--no-worker` shows the queue's depth but
none of them, so a scaled-out worker must be scraped itself. The port is opt-in (several
workers on one host each need their own) and is bound before the worker starts, so a port
that is taken stops the command before it claims anything. uvicorn serves it on the worker's
event loop without signal handlers of its own: the worker's SIGTERM handling stops both.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from types import TracebackType

import structlog
import uvicorn
from fastapi import FastAPI

from soku.context import AppContext
from soku.delivery.router import router as metrics_router
from soku.health import router as health_router
from soku.http import NO_TELEMETRY, EdgeMiddleware, install_error_handlers
from soku.http_head import BoundedHttpTools
from soku.serving import AnnouncingServer, listening_url, uvicorn_log_config

log = structlog.get_logger("soku.worker")
STOP_SECONDS = 5.0


def probe_app(ctx: AppContext) -> FastAPI:
    """The worker's routes: no documentation pages, the API's error envelope."""
    app = FastAPI(
        title="Soku worker",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        telemetry=NO_TELEMETRY,
    )
    app.state.ctx = ctx
    app.include_router(health_router)
    app.include_router(metrics_router)
    install_error_handlers(app)
    app.add_middleware(EdgeMiddleware, max_body_bytes=ctx.settings.max_body_bytes)
    return app


class _Server(AnnouncingServer):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the worker's handlers stop the process; uvicorn installs none


class ProbeServer:
    """`async with ProbeServer(ctx, sock):` serves the probe routes on `sock` (made by
    `soku.serving.bind`) meanwhile, and logs `worker_probes` with its address once it
    listens."""

    def __init__(self, ctx: AppContext, sock: socket.socket) -> None:
        self.sock = sock
        self.host = ctx.settings.worker_metrics_host  # as given: the address to scrape
        self._listening = asyncio.Event()
        config = uvicorn.Config(
            probe_app(ctx),
            log_level="warning",
            log_config=uvicorn_log_config(ctx.settings.log_format),  # JSON, as the service's
            lifespan="off",  # the worker's context is opened and closed by the worker's command
            access_log=False,
            server_header=False,
            http=BoundedHttpTools,
        )
        self.server = _Server(config, self._announce)
        self._task: asyncio.Task[None] | None = None

    def _announce(self, _bound_host: str, port: int) -> None:
        self._listening.set()
        log.info("worker_probes", metrics=f"{listening_url(self.host, port)}/metrics")

    @property
    def port(self) -> int:
        port: int = self.sock.getsockname()[1]
        return port

    async def __aenter__(self) -> ProbeServer:
        self._task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        listening = asyncio.create_task(self._listening.wait())
        await asyncio.wait((self._task, listening), return_when=asyncio.FIRST_COMPLETED)
        listening.cancel()
        if self._task.done():
            self._task.result()  # its error, if it could not start
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._task, STOP_SECONDS)
        self.sock.close()
