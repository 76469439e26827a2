"""What the Snapchat fake refuses, as the platform would (snapchat.md, "Publish flow" and
"Constraints"): a container's key and IV that are not 32 and 16 bytes of base64, parts over
32 MB or out of range, and at FINALIZE a file that does not decrypt with the container's
key (AES-256-CBC, PKCS#7) or is not a Story's media: a JPEG or PNG image of up to 20 MB, an
MP4 video of 5 to 60 s and at least 540x960. The error codes of these refusals are (U).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from soku.media.probe import ProbeError, probe_video
from soku.media.sniff import JPEG, MOV, MP4, PNG, sniff
from soku.sandbox.snapchat_faults import SnapError, api_error
from soku.sandbox.snapchat_state import FakeConfig, Media

IMAGE_TYPES, VIDEO_TYPES = (JPEG, PNG), (MP4, MOV)


def invalid(message: str, code: str = "INVALID_REQUEST") -> SnapError:
    return api_error(400, code, message)


def key_bytes(value: Any, size: int, name: str) -> bytes:
    """A base64 field of exactly `size` bytes."""
    try:
        decoded = base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) != size:
        raise invalid(f"{name} must be {size} bytes, base64-encoded")
    return decoded


def check_part(config: FakeConfig, media: Media, number: int, data: bytes) -> None:
    if media.status != "PENDING_UPLOAD":
        raise invalid("The media is finalized already; no part can be added")
    if not 1 <= number <= config.max_parts:
        raise invalid(f"part_number must be from 1 to {config.max_parts}")
    if not data or len(data) > config.part_max_bytes or len(data) % 16:
        raise invalid(
            f"A part must hold whole AES blocks and at most {config.part_max_bytes} bytes"
        )
    total = sum(len(part) for n, part in media.parts.items() if n != number) + len(data)
    if total > config.max_total_bytes:
        raise invalid(f"The media is over {config.max_total_bytes} bytes")


def finalized(config: FakeConfig, media: Media) -> dict[str, Any]:
    """What the file is, once its parts (numbered 1..n, none missing) are decrypted."""
    numbers = sorted(media.parts)
    if not numbers or numbers != list(range(1, len(numbers) + 1)):
        raise invalid(f"The media's parts are incomplete: {numbers}", "MEDIA_INCOMPLETE")
    data = _decrypted(media, b"".join(media.parts[n] for n in numbers))
    found = sniff(data[:4096])
    if media.type == "IMAGE":
        if found not in IMAGE_TYPES or len(data) > config.max_image_bytes:
            raise invalid("A Story image must be a JPEG or PNG of up to 20 MB", "INVALID_MEDIA")
    elif found not in VIDEO_TYPES:
        raise invalid("A Story video must be an MP4", "INVALID_MEDIA")
    view = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    view["format"] = found.content_type if found else ""
    if media.type == "VIDEO":
        view.update(_video(config, data))
    return view


def _decrypted(media: Media, sealed: bytes) -> bytes:
    try:
        decryptor = Cipher(algorithms.AES(media.key), modes.CBC(media.iv)).decryptor()
        padded = decryptor.update(sealed) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise invalid(
            "The media could not be decrypted with its key and iv", "MEDIA_DECRYPTION_FAILED"
        ) from None


def _video(config: FakeConfig, data: bytes) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "video.mp4"
        path.write_bytes(data)
        try:
            probed = probe_video(path)
        except ProbeError as exc:
            raise invalid(f"The video cannot be read: {exc.message}", "INVALID_MEDIA") from None
    seconds, (low, high) = probed.duration_seconds or 0.0, config.video_seconds
    width, height = probed.width or 0, probed.height or 0
    if not low <= seconds <= high:
        raise invalid(f"A Story video must last {low:g} to {high:g} s", "INVALID_MEDIA")
    min_width, min_height = config.video_min_size
    if width < min_width or height < min_height:
        message = f"A Story video must be at least {min_width}x{min_height}"
        raise invalid(message, "INVALID_MEDIA")
    return {"duration_seconds": seconds, "dimensions": [width, height]}
