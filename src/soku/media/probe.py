"""What a stored file is: an image's format and size (Pillow), a video's streams (PyAV).

Files come from the internet: any failure of the libraries on them is a ProbeError, never a
raw library exception. Call `probe_async` from async code: probing reads the file.
"""

from __future__ import annotations

import asyncio
import os
from fractions import Fraction

import av
from av.container import InputContainer
from av.video.stream import VideoStream
from PIL import Image

from soku.media.sniff import SNIFF_BYTES, sniff
from soku.media.types import MediaKind, Probe

IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "WEBP")  # the only Pillow decoders tried
MAX_IMAGE_PIXELS = 89_478_485  # Pillow's own default: a 50 MB file claiming more is a bomb
# How much earlier than the header's duration the last packet may end in a whole file.
MIN_END_SLACK_SECONDS = 1.0
END_SLACK_FRACTION = 0.05
# FFmpeg's demuxer for each accepted video: never let it guess one (HLS playlists, concat
# lists and image sequences would be "videos" that read other files or URLs).
DEMUXERS = {"mp4": "mov", "mov": "mov", "webm": "matroska", "mkv": "matroska"}

StrPath = str | os.PathLike[str]


class ProbeError(Exception):
    """The file is not a readable image or video."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def probe(path: StrPath, kind: MediaKind) -> Probe:
    return probe_image(path) if kind == "image" else probe_video(path)


async def probe_async(path: StrPath, kind: MediaKind) -> Probe:
    return await asyncio.to_thread(probe, path, kind)


def probe_image(path: StrPath) -> Probe:
    """Format and size from the header; the pixels are not decoded."""
    try:
        with Image.open(path, formats=IMAGE_FORMATS) as image:
            width, height = image.size
            image_format = image.format
    except Image.DecompressionBombError as exc:
        raise ProbeError(f"image rejected as a decompression bomb: {exc}") from exc
    except Exception as exc:  # Pillow raises many kinds on hostile input
        raise ProbeError(f"not a readable JPEG, PNG, GIF or WebP image ({_reason(exc)})") from exc
    if width * height > MAX_IMAGE_PIXELS:
        raise ProbeError(
            f"image of {width}x{height} pixels is over the limit of {MAX_IMAGE_PIXELS:,} "
            "(decompression bomb guard)"
        )
    return Probe(width=width, height=height, image_format=image_format)


def probe_video(path: StrPath) -> Probe:
    """Streams and duration from the container, checked by reading every packet."""
    try:
        demuxer = _demuxer(path)
        with av.open(os.fspath(path), format=demuxer, metadata_errors="ignore") as container:
            return _probe_container(container)
    except ProbeError:
        raise
    except Exception as exc:  # PyAV raises many kinds on hostile input
        raise ProbeError(f"not a readable video ({_reason(exc)})") from exc


def _demuxer(path: StrPath) -> str:
    with open(path, "rb") as file:
        sniffed = sniff(file.read(SNIFF_BYTES))
    if sniffed is None or sniffed.extension not in DEMUXERS:
        raise ProbeError("not an MP4, MOV, WebM or MKV file")
    return DEMUXERS[sniffed.extension]


def _reason(exc: Exception) -> str:
    """What went wrong, without the file's path (messages reach API callers)."""
    return getattr(exc, "strerror", None) or type(exc).__name__


def _probe_container(container: InputContainer) -> Probe:
    if not container.streams.video:
        raise ProbeError("the file has no video stream")
    video = container.streams.video[0]
    audio = container.streams.audio[0] if container.streams.audio else None
    if not video.width or not video.height:
        raise ProbeError("the video stream has no frame size")
    end = _read_packets(container, video)
    duration = _header_duration(container) or end
    if end < duration - max(MIN_END_SLACK_SECONDS, END_SLACK_FRACTION * duration):
        raise ProbeError(f"the file is cut short: it ends at {end:.2f} s of {duration:.2f} s")
    rate = video.average_rate or video.guessed_rate
    return Probe(
        width=video.width,
        height=video.height,
        duration_seconds=duration,
        container=container.format.name,
        video_codec=video.codec_context.name,
        audio_codec=audio.codec_context.name if audio else None,
        frame_rate=float(rate) if rate else None,
    )


def _header_duration(container: InputContainer) -> float | None:
    if not container.duration or container.duration <= 0:
        return None
    return container.duration / av.time_base


def _read_packets(container: InputContainer, video: VideoStream) -> float:
    """Where the last packet ends, in seconds from the start; fails without a video frame.

    Demuxing reads the whole file (not decoding it): a cut file ends before its header says.
    """
    start = (container.start_time or 0) / av.time_base
    end = 0.0
    decoded = False
    for packet in container.demux():
        if packet.pts is not None and packet.time_base:
            ticks = packet.pts + (packet.duration or 0)
            end = max(end, float(Fraction(ticks) * packet.time_base) - start)
        if not decoded and packet.stream.index == video.index:
            decoded = bool(packet.decode())  # the last, empty packet flushes the decoder
    if not decoded:
        raise ProbeError("no video frame could be decoded")
    return end
