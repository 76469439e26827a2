"""The encryption Snapchat asks of every upload: AES-256-CBC, the key and IV sent with the
media container (snapchat.md, "Publish flow" 1-3), the ciphertext sent in parts.

The key and IV are derived (HKDF-SHA256) from the delivery and the round of its steps, never
drawn at random and never stored: a worker that resumes an upload derives them again, and a
checkpoint holds no key. The file is one CBC stream cut into parts: each part but the last
holds a whole number of blocks and no padding, the last ends with PKCS#7 padding, and a
part's first block chains on the previous part's last ciphertext block, which that part's
result keeps (ciphertext, not a secret).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

BLOCK = 16  # AES's block, in bytes
KEY_BYTES, IV_BYTES = 32, 16
_SALT = b"soku/snapchat/media-key"


@dataclass(frozen=True)
class MediaKey:
    key: bytes
    iv: bytes

    @classmethod
    def derive(cls, delivery_id: str, post_id: str, round_number: int) -> MediaKey:
        info = f"delivery={delivery_id};post={post_id};round={round_number}".encode()
        material = HKDF(
            algorithm=hashes.SHA256(), length=KEY_BYTES + IV_BYTES, salt=_SALT, info=info
        ).derive(b"soku snapchat upload")
        return cls(material[:KEY_BYTES], material[KEY_BYTES:])

    def sent(self) -> dict[str, str]:
        """The key and IV as the media container's request carries them (base64)."""
        return {
            "key": base64.b64encode(self.key).decode(),
            "iv": base64.b64encode(self.iv).decode(),
        }

    def encrypt(self, data: bytes, chain: bytes | None, last: bool) -> bytes:
        """One part's ciphertext; `chain` is the previous part's last block (None: the first)."""
        if not last and len(data) % BLOCK:
            raise ValueError("a part before the last must hold whole blocks")
        if last:
            padder = padding.PKCS7(BLOCK * 8).padder()
            data = padder.update(data) + padder.finalize()
        encryptor = Cipher(algorithms.AES(self.key), modes.CBC(chain or self.iv)).encryptor()
        return encryptor.update(data) + encryptor.finalize()


@dataclass(frozen=True)
class PartPlan:
    """How a file of `total` bytes is cut: `plain` bytes of it per part, so that each part's
    ciphertext (the last with up to a block of padding) stays within `part_bytes`."""

    total: int
    part_bytes: int

    def __post_init__(self) -> None:
        if self.part_bytes < 2 * BLOCK or self.part_bytes % BLOCK:
            raise ValueError(f"part_bytes must be a multiple of {BLOCK} of at least {2 * BLOCK}")

    @property
    def plain(self) -> int:
        return self.part_bytes - BLOCK

    @property
    def count(self) -> int:
        return max(1, -(-self.total // self.plain))

    def span(self, index: int) -> tuple[int, int]:
        """(first byte, size) of part `index` in the file."""
        start = index * self.plain
        return start, min(self.plain, self.total - start)


def encode_block(block: bytes) -> str:
    return base64.b64encode(block).decode()


def decode_block(text: str) -> bytes:
    return base64.b64decode(text.encode())
