"""Serve the generic fake on its own: `python -m soku.sandbox --host 127.0.0.1 --port 8765`.

The fake answers at `/sandbox/generic`, as when the service mounts it. Once the socket
listens, one line is printed: "sandbox ready on http://host:port" (with the real port when
`--port 0` lets the system choose one).
"""

from __future__ import annotations

import argparse
import asyncio
import socket

import uvicorn
from fastapi import FastAPI

from soku.sandbox.generic import create_generic_fake

MOUNT_PATH = "/sandbox/generic"


class _AnnouncingServer(uvicorn.Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            print(f"sandbox ready on http://{host}:{port}", flush=True)


def build_app() -> FastAPI:
    root = FastAPI(title="Soku sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    root.mount(MOUNT_PATH, create_generic_fake())
    return root


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m soku.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    config = uvicorn.Config(
        build_app(), host=args.host, port=args.port, log_level=args.log_level, lifespan="off"
    )
    asyncio.run(_AnnouncingServer(config).serve())


if __name__ == "__main__":
    main()
