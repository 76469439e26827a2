"""The HTTP server of `soku serve`: uvicorn's, saying where it listens once it does.

`soku serve` keeps uvicorn's own logger at WARNING (its INFO lines are plain text among the
service's JSON), so uvicorn's "running on" line is not shown; this one is, as a structured
log line, and only once the socket is bound (a port that is taken never prints it).
"""

from __future__ import annotations

import socket

import structlog
import uvicorn

log = structlog.get_logger("soku.serve")


class AnnouncingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, *, worker: bool) -> None:
        super().__init__(config)
        self.worker = worker

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            base = listening_url(self.config.host, self.config.port)
            log.info("serving", url=base, docs=f"{base}/docs", worker=self.worker)


def listening_url(host: str, port: int) -> str:
    """The address to open in a browser: an IPv6 host in brackets, a wildcard host as the
    loopback address (what listens on every address listens there too)."""
    if host in ("0.0.0.0", ""):  # noqa: S104 (a comparison, not a binding)
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
