"""What a file's header says before decoding: its size and sample type (``probe``), whether a PNG is
whole. (Which format the bytes are: ``formats.sniff``.)"""

from __future__ import annotations

import numpy as np


def png_complete(data: bytes) -> bool:
    """Walk the PNG chunks: True only if a whole IEND chunk is present."""
    pos = 8
    while pos + 8 <= len(data):
        size, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        pos += 12 + size
        if kind == b"IEND":
            return pos <= len(data)
    return False


# PNG colour type -> channels as OpenCV decodes them (gray+alpha comes back as BGRA)
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 4, 6: 4}


def probe(data: bytes, kind: str) -> tuple[int, int, int, int] | None:
    """``(height, width, channels, bytes per sample)`` of the pixels decoding will produce, read from
    the header alone (None when the header does not say: camera RAW, unreadable headers).

    PNG from its IHDR chunk (bit depth 16 -> 2 bytes; a palette with transparency -> 4 channels);
    TIFF from tifffile's first page; HEIC from pillow-heif; the others from Pillow's lazy open, which
    reads no pixels.
    """
    try:
        if kind == "png":
            w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
            depth, colour = data[24], data[25]
            c = _PNG_CHANNELS.get(colour, 4)
            if colour == 3 and b"tRNS" in data[:data.find(b"IDAT")]:
                c = 4
            return h, w, c, 2 if depth == 16 else 1
        if kind == "tiff":
            import io

            import tifffile

            with tifffile.TiffFile(io.BytesIO(data)) as tif:
                page = tif.pages[0]
                h, w = page.imagelength, page.imagewidth
                samples = int(np.prod(page.shape, dtype=np.int64))
                return h, w, max(1, samples // max(1, h * w)), page.dtype.itemsize
        if kind == "heic":
            from .pillow_codec import heif_header

            return heif_header(data)
        from .metadata import open_header

        with open_header(data) as im:
            w, h = im.size
            return h, w, min(len(im.getbands()), 4 if kind in ("png", "webp", "bmp") else 3), 1
    except Exception:  # noqa: BLE001 - a header we cannot read: the decoder reports the file
        return None
