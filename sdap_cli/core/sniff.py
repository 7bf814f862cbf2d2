"""Recognise an image format from its first bytes (file suffixes can lie; stdin has none)."""

from __future__ import annotations

from .pillow_codec import is_heif


def sniff(data: bytes) -> str | None:
    """The image format the bytes start with ('png', 'jpeg', 'tiff', 'bmp', 'webp', 'heic'), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
        return "tiff"
    if data.startswith(b"BM"):
        return "bmp"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return "heic" if is_heif(data) else None


def png_complete(data: bytes) -> bool:
    """Walk the PNG chunks: True only if a whole IEND chunk is present."""
    pos = 8
    while pos + 8 <= len(data):
        size, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        pos += 12 + size
        if kind == b"IEND":
            return pos <= len(data)
    return False
