"""Media the tests post: small real files served over HTTP from loopback.

Posts fetch their media when accepted, and the suite has no internet, so every test that
posts an image or a video names a URL of this server (fetching from loopback is allowed by
`SOKU_MEDIA_ALLOW_PRIVATE`, which the test settings turn on).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Collection
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
from PIL import Image

IMAGE_FORMATS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}
_EXTS = ("jpg", "png", "webp", "gif", "jpg", "png")
_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}


def write_image(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, IMAGE_FORMATS[path.suffix[1:]])
    path.write_bytes(buffer.getvalue())


def write_video(path: Path, frames: int = 10, fps: int = 10) -> None:
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for index in range(frames):
            image = Image.new("RGB", (32, 32), (index * 20 % 256, 80, 160))
            container.mux(stream.encode(av.VideoFrame.from_image(image)))
        container.mux(stream.encode())


_CLIP: list[bytes] = []  # made once per process


def write_clip(path: Path) -> None:
    """A video every platform's limits take (docs/platforms.md, "Media limits checked at
    acceptance"): 6 s at 24 fps, 540x960 (9:16), every frame the same one, so it is made in a
    blink and weighs some 45 KB."""
    if not _CLIP:
        buffer = io.BytesIO()
        with av.open(buffer, "w", format="mp4") as container:
            stream = container.add_stream("mpeg4", rate=24)
            assert isinstance(stream, av.VideoStream)
            stream.width, stream.height, stream.pix_fmt = 540, 960, "yuv420p"
            stream.codec_context.gop_size = 144  # one key frame
            image = Image.new("RGB", (540, 960), (40, 80, 160))
            frame = av.VideoFrame.from_image(image).reformat(format="yuv420p")
            for index in range(6 * 24):
                frame.pts = index
                container.mux(stream.encode(frame))
            container.mux(stream.encode())
        _CLIP.append(buffer.getvalue())
    path.write_bytes(_CLIP[0])


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return


class MediaServer:
    """`url("img1.jpg")`: any name in the folder; a query string makes distinct URLs."""

    def __init__(self, folder: Path) -> None:
        for index, ext in enumerate(_EXTS, start=1):
            write_image(folder / f"img{index}.{ext}", (index * 40 % 256, 100, 200))
        write_clip(folder / "clip.mp4")
        (folder / "page.html").write_text("<html><body>not media</body></html>")
        handler = partial(_Quiet, directory=str(folder))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def images(
        self, count: int, ext: str | None = None, types: Collection[str] | None = None
    ) -> list[str]:
        """`count` distinct URLs: of every format in turn, or all `ext` ("jpg"), or only of
        the content `types` given (a platform's `media_limits` image types)."""
        names = [
            f"img{index}.{e}"
            for index, e in enumerate(_EXTS, start=1)
            if ext in (None, e) and (types is None or _TYPES[e] in types)
        ]
        return [self.url(f"{names[i % len(names)]}?n={i}") for i in range(count)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
