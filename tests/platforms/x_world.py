"""The X fake as the connector tests see it: its account, its media store, its profile.

X's connector reads a video by byte ranges, so the media are served by `FileServer`, which
honours them (except under `/plain/`, as some stores do) and records what was asked for.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import os
import re
import threading
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from soku.platforms.connector import ErrorKind, Job, PlatformError
from soku.platforms.x_connector import XConnector
from soku.sandbox.x import create_x_fake
from tests.asgi_server import serving
from tests.media_files import write_image, write_video
from tests.platforms.connector_world import Site, World, fresh_fake, make_job
from tests.platforms.profile import (
    Errors,
    Processing,
    Profile,
    Reconcile,
    Refresh,
    Resume,
    Sample,
)

USERNAME, TOKEN, REFRESH = "soku_x", "x-access", "x-refresh"
ACCOUNT = dict(account_id="x_main", username=USERNAME, access_token=TOKEN, refresh_token=REFRESH)
CHUNK = 1024 * 1024
VIDEO_BYTES = 2 * CHUNK + 123_456  # three chunks
IMAGES = ("img1.jpg", "img2.png", "img3.webp", "img4.gif")


class _Files(BaseHTTPRequestHandler):
    server: FileServer

    def do_GET(self) -> None:
        name = self.path.partition("?")[0].lstrip("/")
        plain = name.startswith("plain/")
        path = self.server.folder / name.removeprefix("plain/")
        self.server.requests.append((name, self.headers.get("Range")))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        start, end = 0, len(data)
        if wanted and not plain:
            start = int(wanted[1])
            end = min(int(wanted[2]) + 1 if wanted[2] else len(data), len(data))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        else:
            self.send_response(200)
        kinds = {".mp4": "video/mp4", ".gif": "image/gif", ".png": "image/png"}
        self.send_header("Content-Type", kinds.get(path.suffix, "application/octet-stream"))
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(data[start:end])

    def log_message(self, format: str, *args: object) -> None:
        return


class FileServer(ThreadingHTTPServer):
    """Serves `folder` with byte ranges; `requests`: each file asked for, and its range."""

    def __init__(self, folder: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Files)
        self.folder = folder
        self.requests: list[tuple[str, str | None]] = []
        self.base = f"http://127.0.0.1:{self.server_address[1]}"


@dataclasses.dataclass
class Env(World):
    """The test's world: the fake and a client like the engine's, the file server, the user."""

    files: FileServer
    user_id: str

    def job(
        self,
        text: str | None = "Hello",
        images: tuple[str, ...] = (),
        video: str | None = None,
        **more: Any,
    ) -> Job:
        """`more`: `publishing_since`, or the account's fields this job changes."""
        return make_job(
            "x",
            {**ACCOUNT, "platform_user_id": self.user_id},
            text=text,
            image_urls=[f"{self.files.base}/{name}" for name in images],
            video_urls=[f"{self.files.base}/{video}"] if video else [],
            **more,
        )

    def sha256(self, name: str) -> str:
        return hashlib.sha256((self.files.folder / name).read_bytes()).hexdigest()


@contextlib.asynccontextmanager
async def serve(folder: Path) -> AsyncIterator[Site[FileServer]]:
    for index, name in enumerate(IMAGES, start=1):
        write_image(folder / name, (index * 50, 90, 160))
    write_video(folder / "clip.mp4", frames=20)
    with (folder / "clip.mp4").open("ab") as video:  # padded to several chunks
        video.write(os.urandom(VIDEO_BYTES - video.tell()))
    (folder / "huge.jpg").write_bytes(b"\xff\xd8\xff" + os.urandom(6 * 1024 * 1024))
    files = FileServer(folder)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    try:
        async with serving(create_x_fake()) as url:
            yield Site(url, files, folder)
    finally:
        files.shutdown()
        files.server_close()


@contextlib.asynccontextmanager
async def fresh(site: Site[FileServer]) -> AsyncIterator[Env]:
    """A fresh fake that knows the account's user and tokens; no status-check waits."""
    async with fresh_fake(site.fake) as fake:
        user = await fake.add_user(username=USERNAME, access_token=TOKEN, refresh_token=REFRESH)
        world = Env(fake.http, site.fake, site.media, user["data"]["id"])
        await world.config(check_after_secs=0)
        site.media.requests.clear()
        yield world


def connector(fake: str, **options: Any) -> XConnector:
    return XConnector(fake, web_url=fake, chunk_bytes=CHUNK, **options)


def _says_why(error: PlatformError) -> bool:
    return bool(error.raw["status"] == error.http_status and error.raw["title"])


PROFILE = Profile(
    platform="x",
    serve=serve,
    fresh=fresh,
    connector=connector,
    reconcile=Reconcile(
        found=(
            Sample("text", "Find me & https://example.com/x"),
            Sample("images", "With pictures", {"images": IMAGES[:2]}),
            Sample("no-text", None, {"images": IMAGES[2:3]}, timed=False),
        ),
        staged={"images": IMAGES[:1]},
    ),
    errors=Errors(
        label="X",
        publish=(
            ({"error_code": "forbidden"}, ErrorKind.permanent, "forbidden"),
            (
                {"error_code": "unsupported_authentication"},
                ErrorKind.reauth_required,
                "unsupported_authentication",
            ),
            ({"status": 400}, ErrorKind.permanent, "invalid_request"),
        ),
        says_why=_says_why,
        slow=("media", {"images": IMAGES[:1]}),
        duplicate=(
            403,
            lambda first: {
                "detail": "You are not allowed to create a Tweet with duplicate content."
            },
        ),
        processing=(
            Processing(
                {"on": "status"},
                {"video": "clip.mp4"},
                "Unsupported video format",
                {"state": "failed"},
            ),
        ),
    ),
    resume=Resume(
        more={"video": "clip.mp4"},
        stop_after="append_1",
        fails_on="append",
        calls={"initialize": 1, "append": 3, "finalize": 1},
    ),
    refresh=Refresh(
        sends="refresh_token",
        call="token",
        lifetime=dt.timedelta(hours=2),
        owner="user_id",
        credentials=({"client_id": "soku-app"}, "unauthorized_client"),
    ),
)
