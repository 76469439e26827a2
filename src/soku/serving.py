"""uvicorn's server, saying where it listens once it does: `soku serve` and the sandbox's own
server (`python -m soku.sandbox`).

`soku serve` keeps uvicorn's own loggers at WARNING, so uvicorn's "running on" line is not
shown; `log_serving` is, as a structured log line, and only once the socket is bound (a port
that is taken never prints it). What uvicorn does log (a port that is taken, …) is written as
the service's own JSON lines when those are JSON (`uvicorn_log_config`).
"""

from __future__ import annotations

import copy
import socket
from collections.abc import Callable
from typing import Any

import structlog
import uvicorn
from uvicorn.config import LOGGING_CONFIG

from soku.logs import json_formatter, logs_json

log = structlog.get_logger("soku.serve")


class AnnouncingServer(uvicorn.Server):
    """Calls `announce(host, port)` with the address its first socket is bound to (with port
    0, the port the system chose) once it listens; never when it could not start."""

    def __init__(self, config: uvicorn.Config, announce: Callable[[str, int], None]) -> None:
        super().__init__(config)
        self.announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            self.announce(host, port)


def log_serving(host: str, port: int, worker: bool) -> None:
    """`soku serve`'s "serving" line: the address to open, as given by `--host`."""
    base = listening_url(host, port)
    log.info("serving", url=base, docs=f"{base}/docs", worker=worker)


def listening_url(host: str, port: int) -> str:
    """The address to open in a browser: an IPv6 host in brackets, a wildcard host as the
    loopback address (what listens on every address listens there too)."""
    if host in ("0.0.0.0", ""):  # noqa: S104 (a comparison, not a binding)
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def uvicorn_log_config(log_format: str) -> dict[str, Any]:
    """uvicorn's logging set-up, its lines (a port that is taken, …) rendered as the
    service's own JSON lines when those are JSON, and left as uvicorn writes them otherwise."""
    config = copy.deepcopy(LOGGING_CONFIG)
    if logs_json(log_format):
        config["formatters"] = {name: {"()": json_formatter} for name in config["formatters"]}
    return config


def bind(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """The listening socket, bound before anything else starts (OSError if the address is
    taken or not ours): `soku serve` and a worker's metrics port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)  # 2048: uvicorn's own default
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock
