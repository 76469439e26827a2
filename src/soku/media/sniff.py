"""What a file is, decided from its first bytes only (never a header or a file name)."""

from __future__ import annotations

from soku.media.types import Sniffed

SNIFF_BYTES = 4096  # enough head for every signature below, EBML DocType included

JPEG = Sniffed("image", "image/jpeg", "jpg")
PNG = Sniffed("image", "image/png", "png")
GIF = Sniffed("image", "image/gif", "gif")
WEBP = Sniffed("image", "image/webp", "webp")
MP4 = Sniffed("video", "video/mp4", "mp4")
MOV = Sniffed("video", "video/quicktime", "mov")
WEBM = Sniffed("video", "video/webm", "webm")
MKV = Sniffed("video", "video/x-matroska", "mkv")

_MAGIC: tuple[tuple[bytes, Sniffed], ...] = (
    (b"\xff\xd8\xff", JPEG),
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"GIF87a", GIF),
    (b"GIF89a", GIF),
)
# Major brands of the ISO BMFF `ftyp` box. HEIF/AVIF images and M4A audio share the box and are
# deliberately absent, so they are refused rather than taken for video.
_MP4_BRANDS = frozenset(
    {
        b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1",
        b"M4V ", b"M4VH", b"M4VP", b"mmp4", b"dash", b"msnv", b"MSNV", b"XAVC", b"f4v ",
    }
)  # fmt: skip
_QUICKTIME_BRANDS = frozenset({b"qt  "})
# QuickTime files older than the `ftyp` box start straight with one of these atoms.
_LEGACY_QUICKTIME_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"pnot"})
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_EBML_DOCTYPE_ID = b"\x42\x82"


def sniff(head: bytes) -> Sniffed | None:
    """The accepted image or video format `head` starts with, or None."""
    for magic, sniffed in _MAGIC:
        if head.startswith(magic):
            return sniffed
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head.startswith(_EBML_MAGIC):
        return _sniff_ebml(head)
    return _sniff_iso_bmff(head)


def _sniff_iso_bmff(head: bytes) -> Sniffed | None:
    box_type = head[4:8]
    if box_type == b"ftyp":
        brand = head[8:12]
        if brand in _MP4_BRANDS:
            return MP4
        return MOV if brand in _QUICKTIME_BRANDS else None
    if box_type in _LEGACY_QUICKTIME_ATOMS and int.from_bytes(head[:4], "big") >= 8:
        return MOV
    return None


def _sniff_ebml(head: bytes) -> Sniffed | None:
    """WebM or Matroska, by the DocType element inside the EBML header."""
    header_size = _read_vint(head, len(_EBML_MAGIC))
    if header_size is None:
        return None
    size, offset = header_size
    end = min(len(head), offset + size)
    while offset < end:
        element = _read_element(head, offset)
        if element is None:
            return None
        element_id, data_start, data_end = element
        if element_id == _EBML_DOCTYPE_ID:
            doctype = head[data_start:data_end].rstrip(b"\x00")
            return {b"webm": WEBM, b"matroska": MKV}.get(doctype)
        offset = data_end
    return None


def _read_element(data: bytes, offset: int) -> tuple[bytes, int, int] | None:
    """(raw id, data start, data end) of the EBML element at `offset`."""
    id_length = _vint_length(data, offset)
    if id_length is None or id_length > 4:
        return None
    element_id = data[offset : offset + id_length]
    size = _read_vint(data, offset + id_length)
    if size is None:
        return None
    length, data_start = size
    return element_id, data_start, data_start + length


def _vint_length(data: bytes, offset: int) -> int | None:
    if offset >= len(data) or data[offset] == 0:
        return None
    return 9 - data[offset].bit_length()


def _read_vint(data: bytes, offset: int) -> tuple[int, int] | None:
    """(value without its length marker, offset after it) of the EBML varint at `offset`."""
    length = _vint_length(data, offset)
    if length is None or offset + length > len(data):
        return None
    raw = int.from_bytes(data[offset : offset + length], "big")
    return raw & ((1 << (7 * length)) - 1), offset + length
