"""Probing generated media: Pillow for images, PyAV for videos, ProbeError for the rest."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import av
import pytest
from PIL import Image

from soku.media.probe import ProbeError, probe, probe_async, probe_image, probe_video
from soku.media.types import MediaKind

DECODED_NAME = {"libx264": "h264", "mpeg4": "mpeg4", "libvpx-vp9": "vp9", "libvpx": "vp8"}


def encoder(*names: str) -> str:
    """The first of `names` this PyAV build can encode with."""
    for name in names:
        if name not in av.codecs_available:
            continue
        try:
            av.codec.Codec(name, "w")
        except Exception:
            continue
        return name
    pytest.skip(f"none of the encoders {names} is in this PyAV build")


def make_video(
    path: Path,
    video_codec: str,
    audio_codec: str | None = None,
    *,
    frames: int = 50,
    fps: int = 25,
    size: tuple[int, int] = (160, 120),
    noise: bool = False,
) -> Path:
    """A video of `frames` frames; with `noise`, every frame weighs about the same."""
    width, height = size
    with av.open(str(path), "w") as container:
        video = container.add_stream(video_codec, rate=fps)
        assert isinstance(video, av.VideoStream)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream(audio_codec, rate=48000) if audio_codec else None
        for i in range(frames):
            if noise:
                image = Image.frombytes("RGB", size, os.urandom(width * height * 3))
            else:
                image = Image.new("RGB", size, (i * 5 % 256, 90, 160))
            container.mux(video.encode(av.VideoFrame.from_image(image)))
        container.mux(video.encode(None))
        if audio is not None:
            assert isinstance(audio, av.AudioStream)
            write_silence(container, audio, seconds=frames / fps)
    return path


def write_silence(
    container: av.container.OutputContainer, audio: av.AudioStream, seconds: float
) -> None:
    samples = audio.codec_context.frame_size or 1024
    for i in range(int(48000 * seconds / samples)):
        frame = av.AudioFrame(
            format=audio.codec_context.format.name, layout="stereo", samples=samples
        )
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate, frame.pts = 48000, i * samples
        container.mux(audio.encode(frame))
    container.mux(audio.encode(None))


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims `width` x `height` pixels (a decompression bomb's shape)."""
    Image.new("L", (1, 1)).save(path, "PNG")
    data = bytearray(path.read_bytes())
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])  # depth, colour, …
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("image_format", "mode"), [("JPEG", "RGB"), ("PNG", "RGBA"), ("GIF", "P"), ("WEBP", "RGB")]
)
def test_image(tmp_path: Path, image_format: str, mode: str) -> None:
    path = tmp_path / f"picture.{image_format.lower()}"
    Image.new(mode, (123, 45)).save(path, image_format)

    probed = probe_image(path)

    assert (probed.width, probed.height, probed.image_format) == (123, 45, image_format)
    assert probed.duration_seconds is None


def test_decompression_bomb(tmp_path: Path) -> None:
    with pytest.raises(ProbeError, match="decompression bomb"):
        probe_image(png_claiming(tmp_path / "bomb.png", 20_000, 20_000))


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_just_over_the_pixel_limit(tmp_path: Path) -> None:
    with pytest.raises(ProbeError, match="over the limit"):
        probe_image(png_claiming(tmp_path / "big.png", 10_000, 10_000))


def test_other_image_formats_are_not_tried(tmp_path: Path) -> None:
    path = tmp_path / "picture.bmp"
    Image.new("RGB", (10, 10)).save(path, "BMP")

    with pytest.raises(ProbeError, match="not a readable JPEG, PNG, GIF or WebP image"):
        probe_image(path)


@pytest.mark.parametrize(
    ("name", "video_codecs", "audio_codec"),
    [
        ("clip.mp4", ("libx264", "mpeg4"), "aac"),
        ("clip.mov", ("mpeg4",), None),
        ("clip.webm", ("libvpx-vp9", "libvpx"), "libopus"),
        ("clip.mkv", ("libvpx",), None),
    ],
)
def test_video(
    tmp_path: Path, name: str, video_codecs: tuple[str, ...], audio_codec: str | None
) -> None:
    video_codec = encoder(*video_codecs)
    audio = encoder(audio_codec) if audio_codec else None
    path = make_video(tmp_path / name, video_codec, audio, frames=50, fps=25)

    probed = probe_video(path)

    assert probed.duration_seconds == pytest.approx(50 / 25, abs=0.05)
    assert (probed.width, probed.height) == (160, 120)
    assert probed.video_codec == DECODED_NAME[video_codec]
    assert probed.audio_codec == ({"aac": "aac", "libopus": "opus"}[audio] if audio else None)
    assert probed.frame_rate == pytest.approx(25)
    assert probed.container == ("matroska" if name.endswith(("webm", "mkv")) else "mov")
    assert probed.image_format is None


def test_truncated_mp4(tmp_path: Path) -> None:
    path = make_video(
        tmp_path / "clip.mp4", encoder("libx264", "mpeg4"), frames=100, size=(64, 48), noise=True
    )
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    with pytest.raises(ProbeError, match="not a readable video"):
        probe_video(path)


def test_truncated_webm(tmp_path: Path) -> None:
    # WebM's header comes first and survives the cut: only reading on shows the file ends early.
    path = make_video(
        tmp_path / "clip.webm", encoder("libvpx"), frames=100, size=(64, 48), noise=True
    )
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    with pytest.raises(ProbeError, match="cut short"):
        probe_video(path)


@pytest.mark.parametrize("kind", ["image", "video"])
def test_random_bytes(tmp_path: Path, kind: MediaKind) -> None:
    path = tmp_path / "random.bin"
    path.write_bytes(os.urandom(100_000))

    with pytest.raises(ProbeError):
        probe(path, kind)


def test_a_fake_mp4(tmp_path: Path) -> None:
    path = tmp_path / "fake.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + os.urandom(100_000))

    with pytest.raises(ProbeError, match="not a readable video"):
        probe_video(path)


def test_an_image_is_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "picture.png"
    Image.new("RGB", (10, 10)).save(path, "PNG")

    with pytest.raises(ProbeError, match="not an MP4, MOV, WebM or MKV file"):
        probe_video(path)


def test_messages_do_not_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "secret-name.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(1000))

    with pytest.raises(ProbeError) as raised:
        probe_video(path)
    assert "secret-name" not in str(raised.value)


async def test_probe_async(tmp_path: Path) -> None:
    image = tmp_path / "picture.png"
    Image.new("RGB", (7, 3)).save(image, "PNG")
    video = make_video(tmp_path / "clip.mp4", encoder("libx264", "mpeg4"), frames=10)

    probed_image = await probe_async(image, "image")
    probed_video = await probe_async(video, "video")

    assert (probed_image.width, probed_image.height) == (7, 3)
    assert probed_video.duration_seconds == pytest.approx(10 / 25, abs=0.05)
