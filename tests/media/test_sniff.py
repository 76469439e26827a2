"""Sniffing real files made here: Pillow images, PyAV videos, and things that are neither."""

from __future__ import annotations

import functools
import io
import zipfile

import av
import pytest
from PIL import Image

from soku.media.sniff import SNIFF_BYTES, sniff

# The encoders to try per container, best first; whichever this PyAV build has is used.
VIDEO_ENCODERS = {
    "mp4": ("libx264", "h264", "mpeg4"),
    "mov": ("libx264", "h264", "mpeg4"),
    "webm": ("libvpx", "vp8", "libvpx-vp9", "vp9"),
    "matroska": ("libx264", "h264", "mpeg4", "libvpx"),
}


@functools.cache
def make_image(fmt: str, size: tuple[int, int] = (16, 16)) -> bytes:
    """A real image file of Pillow format `fmt` (JPEG, PNG, GIF, WEBP)."""
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 60)).save(buffer, format=fmt)
    return buffer.getvalue()


@functools.cache
def make_video(container: str, frames: int = 5) -> bytes:
    """A real 32x32 video in `container` (mp4, mov, webm, matroska), encoded by PyAV."""
    codec = next(c for c in VIDEO_ENCODERS[container] if c in av.codecs_available)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as output:
        stream = output.add_stream(codec, rate=10)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for index in range(frames):
            frame = av.VideoFrame(32, 32, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([index * 40 % 256]) * plane.buffer_size)
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("fmt", "content_type", "extension"),
    [
        ("JPEG", "image/jpeg", "jpg"),
        ("PNG", "image/png", "png"),
        ("GIF", "image/gif", "gif"),
        ("WEBP", "image/webp", "webp"),
    ],
)
def test_images(fmt: str, content_type: str, extension: str) -> None:
    sniffed = sniff(make_image(fmt)[:SNIFF_BYTES])
    assert sniffed is not None
    assert (sniffed.kind, sniffed.content_type, sniffed.extension) == (
        "image",
        content_type,
        extension,
    )


@pytest.mark.parametrize(
    ("container", "content_type", "extension"),
    [
        ("mp4", "video/mp4", "mp4"),
        ("mov", "video/quicktime", "mov"),
        ("webm", "video/webm", "webm"),
        ("matroska", "video/x-matroska", "mkv"),
    ],
)
def test_videos(container: str, content_type: str, extension: str) -> None:
    sniffed = sniff(make_video(container)[:SNIFF_BYTES])
    assert sniffed is not None
    assert (sniffed.kind, sniffed.content_type, sniffed.extension) == (
        "video",
        content_type,
        extension,
    )


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photo.jpg", make_image("JPEG"))
    return buffer.getvalue()


NOT_MEDIA = {
    "empty": b"",
    "text": b"just some words, no picture here\n",
    "html": b"<!DOCTYPE html><html><body><img src='x.jpg'></body></html>",
    "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
    "zip": _zip(),
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>',
    "riff wav": b"RIFF\x24\x00\x00\x00WAVEfmt ",
    "heic": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
    "avif": b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf",
    "m4a": b"\x00\x00\x00\x1cftypM4A \x00\x00\x00\x00M4A isom",
    "ebml other doctype": b"\x1a\x45\xdf\xa3\x87\x42\x82\x84abcd",
    "ebml truncated": b"\x1a\x45\xdf\xa3",
    "jpeg prefix only": b"\xff\xd8",
}


@pytest.mark.parametrize("name", NOT_MEDIA)
def test_not_media(name: str) -> None:
    assert sniff(NOT_MEDIA[name]) is None


def test_the_bytes_decide_not_the_name_or_extension() -> None:
    # A PNG whose first bytes are swapped for HTML is no longer a PNG, whatever it is called.
    assert sniff(b"<html>" + make_image("PNG")) is None
    assert sniff(make_image("PNG")) is not None


def test_ebml_doctype_is_read_from_the_header_elements() -> None:
    # A DocType element after other header elements, each with a multi-byte size.
    header = b"\x42\x86\x81\x01" + b"\x42\x82\x88matroska"
    data = b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(header)]) + header
    sniffed = sniff(data)
    assert sniffed is not None
    assert sniffed.content_type == "video/x-matroska"
