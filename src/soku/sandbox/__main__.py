"""Serve the fakes on their own: `python -m soku.sandbox --host 127.0.0.1 --port 8765`.

The generic fake answers at `/sandbox/generic` and each platform's own fake at
`/sandbox/<platform>` (each platform with a connector), as when the service mounts them;
`--public-url` names the address clients reach them at, if not this one. Once the socket
listens, one line is printed: "sandbox ready on http://host:port" (with the real port when
`--port 0` lets the system choose one).
"""
# Once it listens, the process settles its heap (`soku.runtime.settle_heap`), as `soku serve`
# and `soku worker` do: the fakes keep every post they accept (for `/_inspect` and
# reconciliation), and without it the collector walked them again and again: driven with
# eight rounds of 4,000 publish calls, 512 at once, its CPU per call rose from 0.72 to 1.08 ms
# round after round; settled, it stayed between 0.45 and 0.69 ms with no rise (two runs).

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI

from soku import runtime
from soku.http_head import BoundedHttpTools
from soku.platforms import INTEGRATIONS
from soku.sandbox.common import fake_app
from soku.sandbox.generic import create_generic_fake
from soku.serving import AnnouncingServer


def _ready(host: str, port: int) -> None:
    runtime.settle_heap()  # what start-up made lives as long as the process
    print(f"sandbox ready on http://{host}:{port}", flush=True)


def build_app(public_url: str = "", media_origin: str = "") -> FastAPI:
    """Every fake under `/sandbox`; each names its own URL from `public_url`, else per request.
    The fakes that fetch media (Threads, Facebook) fetch only from `media_origin` when given
    (the service's public URL, where its copies are), else from any http(s) URL."""
    root = fake_app("Soku sandbox", openapi_url=None)
    base = f"{public_url.rstrip('/')}/sandbox" if public_url else ""
    root.mount("/sandbox/generic", create_generic_fake(f"{base}/generic" if base else ""))
    for name, integration in INTEGRATIONS.items():
        fake = integration.create_sandbox(f"{base}/{name}" if base else "", media_origin)
        root.mount(f"/sandbox/{name}", fake)
    return root


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m soku.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8765, help="0: a free port, printed")
    parser.add_argument(
        "--public-url", default="", help="how clients reach it, e.g. http://sandbox.internal:8765"
    )
    parser.add_argument(
        "--media-origin",
        default="",
        help="fetch media only from this origin, e.g. Soku's public URL (default: any URL)",
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn's: debug, info, …")
    args = parser.parse_args(argv)
    config = uvicorn.Config(
        build_app(args.public_url, args.media_origin),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        lifespan="off",
        http=BoundedHttpTools,
    )
    runtime.run(AnnouncingServer(config, _ready).serve())


if __name__ == "__main__":
    main()
