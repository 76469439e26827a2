"""create_app(): routers, middleware, error handlers, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI

from soku import __version__, runtime
from soku.config import Settings
from soku.context import AppContext
from soku.dashboard import router as dashboard
from soku.delivery.router import router as metrics_router
from soku.delivery.worker import Worker
from soku.health import router as health_router
from soku.http import NO_TELEMETRY, EdgeMiddleware, install_error_handlers
from soku.logs import configure_logging
from soku.media.pins import keep_tidy
from soku.media.router import public_router as media_public_router
from soku.media.router import router as media_router
from soku.platforms import INTEGRATIONS
from soku.posts.idempotency import purge_idempotency_keys
from soku.posts.router import router as posts_router
from soku.sandbox.generic import create_generic_fake
from soku.templates.router import router as templates_router
from soku.webhooks.router import router as webhooks_router

DESCRIPTION = """Publish a post to many social platforms with one call, now or later,
and follow every platform's delivery. Authenticate with the `soku-api-key` header.
Every error answers with the envelope `{"error": {type, code, message, timestamp,
requestId, details}}`."""


def create_app(
    settings: Settings | None = None,
    ctx: AppContext | None = None,
    *,
    run_worker: bool = False,
    settle_heap: bool = False,
) -> FastAPI:
    """The API; with `run_worker`, the delivery worker runs in the same process. With
    `settle_heap` (the server process), `soku.runtime.settle_heap` runs once it has started."""
    settings = settings or (ctx.settings if ctx else Settings())
    configure_logging(settings.log_format, settings.log_level)
    context = ctx or AppContext.build(settings)
    app = FastAPI(
        title="Soku Posts API",
        version=__version__,
        description=DESCRIPTION,
        # a context handed in belongs to the caller, who closes it
        lifespan=_lifespan(context, owned=ctx is None, run_worker=run_worker, settle=settle_heap),
        telemetry=NO_TELEMETRY,
        # `/v1/posts/` is a 404 that names `/v1/posts`, not a redirect: behind a TLS proxy the
        # redirect's absolute URL could say http://, and a client would resend its key in clear.
        redirect_slashes=False,
    )
    app.state.ctx = context
    app.state.rate_limited = True  # /readyz checks the rate-limit store too
    routers = (posts_router, media_router, media_public_router, templates_router, webhooks_router)
    for router in (health_router, *routers):
        app.include_router(router)
    app.include_router(metrics_router)
    if settings.sandbox_mounted:
        _mount_sandbox(app, settings)
    install_error_handlers(app)
    dashboard.install(app, settings)
    upload_limit = max(settings.media_image_max_bytes, settings.media_video_max_bytes) + 65536
    app.add_middleware(
        EdgeMiddleware,
        max_body_bytes=settings.max_body_bytes,
        # The fakes take media uploads as a platform does; each applies its platform's caps.
        large_bodies={"/v1/media/upload": upload_limit, "/sandbox/": upload_limit},
    )
    return app


def _lifespan(
    context: AppContext, *, owned: bool, run_worker: bool, settle: bool
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The server's life: the idempotency purge, the sweep of what crashed intakes left
    (`soku.media.pins.keep_tidy`) and (with `run_worker`) the worker beside the API; on the way
    out all stopped, and the context closed if it is ours."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if settle:
            runtime.settle_heap()
        housekeeping = asyncio.create_task(purge_idempotency_keys(context))
        tidying = asyncio.create_task(keep_tidy(context))
        worker = Worker(context) if run_worker else None
        delivering = asyncio.create_task(worker.run()) if worker else None
        try:
            yield
        finally:
            if worker and delivering:
                worker.stop()
                await delivering
            for task in (housekeeping, tidying):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if owned:
                await context.aclose()

    return lifespan


def _mount_sandbox(app: FastAPI, settings: Settings) -> None:
    """The fakes at `/sandbox/<platform>` and `/sandbox/generic`. Mounted here, a fake fetches
    media only from this service (where our copies are)."""
    app.mount("/sandbox/generic", create_generic_fake(f"{settings.sandbox_root}/generic"))
    for name, integration in INTEGRATIONS.items():
        own = f"{settings.sandbox_root}/{name}"
        app.mount(f"/sandbox/{name}", integration.create_sandbox(own, own))
