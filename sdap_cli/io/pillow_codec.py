"""Pillow-based codecs: JPEG, WebP and HEIC output (quality, 4:4:4 chroma, metadata) and HEIC input.

HEIC/HEIF needs pillow-heif (``pip install pillow-heif``, or ``pip install '.[heif]'`` in a clone). 8-bit HEIC reads as uint8; 10- and 12-bit
HEIC read as uint16 (pillow-heif scales them to the 16-bit range) and 16-bit images are written as 10-bit
HEIC. JPEG is written with 4:4:4 chroma (no subsampling): the denoiser keeps colour edges, halving the
chroma resolution would blur them again.
"""

from __future__ import annotations

import io

import numpy as np

from ..errors import InputError, OutputError
from .metadata import Metadata, pillow_kwargs

HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avci"})
HEIF_HINT = "pip install pillow-heif"


def is_heif(data: bytes) -> bool:
    """Whether ``data`` starts like an HEIF/HEIC file (an ISO-BMFF ``ftyp`` box with an HEIF brand)."""
    return data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS


def _heif():
    import pillow_heif

    return pillow_heif


def decode_heif(data: bytes, name: str) -> np.ndarray:
    """The primary image of an HEIC file as ``(H, W, C)`` uint8 (8-bit) or uint16 (10/12-bit), C = 3 or 4.

    Raises:
        InputError: pillow-heif is absent (the message says how to install it) or the data is corrupt.
    """
    try:
        heif = _heif()
    except ImportError:
        raise InputError(f"{name}: HEIC/HEIF needs pillow-heif ({HEIF_HINT})") from None
    try:
        f = heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=False)
        return np.asarray(f)
    except Exception as e:  # noqa: BLE001 - libheif reports corrupt files in many ways
        msg = " ".join(str(e).split())[:160]
        raise InputError(f"{name}: not a readable HEIC/HEIF image ({msg})") from None


def encode_pillow(out: np.ndarray, fmt: str, quality: int, meta: Metadata | None) -> bytes:
    """Encode ``(H, W, C)`` samples (C = 1, 2, 3, 4; uint8, or uint16 for HEIC) as jpeg, webp or heic.

    Raises:
        OutputError: pillow-heif is absent for heic, or encoding failed.
    """
    if out.shape[2] == 2:  # gray + alpha: as RGBA (as the OpenCV path does)
        out = out[..., [0, 0, 0, 1]]
    if fmt in ("webp", "heic") and out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    buf = io.BytesIO()
    kw = pillow_kwargs(meta)
    try:
        if fmt == "heic":
            try:
                heif = _heif()
            except ImportError:
                raise OutputError(f"heic output needs pillow-heif ({HEIF_HINT})") from None
            mode = {3: "RGB", 4: "RGBA"}[out.shape[2]] + (";16" if out.dtype == np.uint16 else "")
            img = heif.from_bytes(mode=mode, size=(out.shape[1], out.shape[0]),
                                  data=np.ascontiguousarray(out).tobytes())
            img.save(buf, quality=quality, **kw)
        else:
            from PIL import Image

            img = Image.fromarray(np.ascontiguousarray(out[..., 0] if out.shape[2] == 1 else out))
            extra = {"subsampling": 0, "optimize": False} if fmt == "jpeg" else {"method": 4}
            img.save(buf, format=fmt.upper(), quality=quality, **extra, **kw)
    except OutputError:
        raise
    except Exception as e:  # noqa: BLE001
        raise OutputError(f"cannot encode {fmt} ({' '.join(str(e).split())[:160]})") from None
    return buf.getvalue()


def heif_header(data: bytes) -> tuple[int, int, int, int] | None:
    """``(height, width, channels, bytes per sample)`` of an HEIC's primary image, from its header."""
    try:
        f = _heif().open_heif(io.BytesIO(data), convert_hdr_to_8bit=False)
        w, h = f.size
        return h, w, 4 if f.has_alpha else 3, 2 if f.bit_depth > 8 else 1
    except Exception:  # noqa: BLE001 - not installed or unreadable: decoding reports it
        return None
