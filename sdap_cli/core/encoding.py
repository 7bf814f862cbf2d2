"""Encode denoised samples into image files: sample type, gray/colour, alpha and metadata of the source.

``encode_to`` streams into an open file (``images.write_image`` hands it the atomic temporary file),
so a large TIFF is never held in memory and a PNG is written from OpenCV's buffer without a copy.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import cv2
import numpy as np
import tifffile

from ..errors import OutputError, one_line
from .metadata import Metadata, png_parts, tiff_kwargs
from .pillow_codec import encode_pillow
from .samples import from_unit

if TYPE_CHECKING:
    from .images import Image

__all__ = ["SUFFIX", "normalise_format", "encode_image", "encode_to", "check_encodable"]

SUFFIX = {"png": ".png", "jpeg": ".jpg", "tiff": ".tif", "bmp": ".bmp", "webp": ".webp", "heic": ".heic"}
_EIGHT_BIT_ONLY = frozenset({"jpeg", "bmp", "webp"})


def normalise_format(fmt: str) -> str:
    f = {"jpg": "jpeg", "tif": "tiff"}.get(fmt.lower().lstrip("."), fmt.lower().lstrip("."))
    if f not in SUFFIX:
        raise OutputError(f"unsupported output format '{fmt}' (use png, jpeg, tiff, bmp, webp or heic)")
    return f


def _samples(rgb: np.ndarray, like: Image, dtype: np.dtype) -> np.ndarray:
    """``(H, W, C)`` samples of ``dtype`` in the channels of ``like`` (alpha re-attached).

    ``rgb`` is float in [0, 1] ``(H, W, 3)``, or already the colour samples (``Image.output_buffer``:
    ``dtype``, 1 channel for a gray source), which integer types use as they are (no copy)."""
    gray = like.channels in (1, 2)
    if rgb.dtype == dtype and rgb.shape[2] == (1 if gray else 3) and dtype.kind == "u":
        out = rgb
    else:                           # one float32 working copy, converted in place
        out = from_unit(np.array(rgb, dtype=np.float32, copy=True), dtype, 1 if gray else None)
    if dtype.kind == "f" and like.out_of_range and like.pixels is not None and like.pixels.shape == out.shape:
        keep = ~((like.pixels >= 0) & (like.pixels <= 1))  # out of range or NaN: as read
        out[keep] = like.pixels[keep]
    if like.alpha is not None:
        out = np.concatenate([out, like.alpha.astype(dtype, copy=False)[..., None]], axis=2)
    return out


def encode_image(rgb: np.ndarray, like: Image, fmt: str, quality: int = 95,
                 metadata: Metadata | None = None) -> bytes:
    """Encode denoised RGB in the sample type, channels and alpha of ``like``; the file's bytes.

    Args:
        rgb: float ``(H, W, 3)``, nominally in ``[0, 1]`` (clipped; NaN becomes 0); or the colour
            samples already in ``like``'s type (``Image.output_buffer``), used as they are.
        like: the source image: gives dtype, gray/colour and the alpha plane.
        fmt: 'png', 'jpeg', 'tiff', 'bmp', 'webp' or 'heic' ('jpg' and 'tif' accepted).
        quality: 1-100 for jpeg, webp and heic (JPEG with 4:4:4 chroma); ignored otherwise.
        metadata: EXIF/ICC/XMP to embed where ``fmt`` can hold them (none for BMP).

    Raises:
        OutputError: the format cannot hold the data (16 bits, floats or alpha), or encoding failed.
        ValueError: ``rgb`` has the wrong shape.
    """
    buf = io.BytesIO()
    encode_to(buf, rgb, like, fmt, quality, metadata)
    return buf.getvalue()


def check_encodable(rgb: np.ndarray, like: Image, fmt: str) -> None:
    if rgb.ndim != 3 or rgb.shape[2] not in (1, 3):
        raise ValueError(f"expected an (H, W, 3) array, got shape {rgb.shape}")
    dtype = np.dtype(like.dtype)
    if dtype.kind == "f" and fmt != "tiff":
        raise OutputError(f"{fmt} cannot store float samples; use tiff to keep them")
    if dtype == np.uint16 and fmt in _EIGHT_BIT_ONLY:
        raise OutputError(f"{fmt} cannot store 16-bit samples; use png, tiff or heic to keep more than 8 bits")
    if like.alpha is not None and fmt == "jpeg":
        raise OutputError("jpeg cannot store an alpha channel; use png, tiff or webp")
    if like.alpha is not None and like.alpha.shape != rgb.shape[:2]:
        raise ValueError(f"alpha shape {like.alpha.shape} does not match image {rgb.shape[:2]}")


def encode_to(fh, rgb: np.ndarray, like: Image, fmt: str, quality: int = 95,
              metadata: Metadata | None = None) -> None:
    """:func:`encode_image` written to the binary file object ``fh`` as it is encoded (TIFF samples
    go straight to the file; a PNG is written from the encoder's buffer without a copy)."""
    fmt = normalise_format(fmt)
    rgb = np.asarray(rgb)
    check_encodable(rgb, like, fmt)
    out = _samples(rgb, like, np.dtype(like.dtype))
    if fmt in ("jpeg", "webp", "heic"):
        fh.write(encode_pillow(out, fmt, quality, metadata))
    elif fmt == "tiff":
        tifffile.imwrite(fh, out[..., 0] if out.shape[2] == 1 else out,
                         photometric="minisblack" if out.shape[2] <= 2 else "rgb",
                         planarconfig=None if out.shape[2] == 1 else "contig",
                         extrasamples=("unassalpha",) if like.alpha is not None else None,
                         **tiff_kwargs(metadata))
    else:
        for part in _encode_cv2(out, fmt, metadata, own=out is not rgb):
            fh.write(part)


def _encode_cv2(out: np.ndarray, fmt: str, metadata: Metadata | None, own: bool) -> list:
    """PNG or BMP through OpenCV; RGB is turned to BGR in place (and back, when ``out`` is not ours)."""
    if out.shape[2] == 2:  # OpenCV cannot encode gray+alpha: write it as RGBA
        out, own = out[..., [0, 0, 0, 1]], True
    swap = {3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGRA}.get(out.shape[2])
    if swap is not None and not out.flags.c_contiguous:
        out, own = np.ascontiguousarray(out), True
    params = [cv2.IMWRITE_PNG_COMPRESSION, 3] if fmt == "png" else []
    try:
        if swap is not None:
            cv2.cvtColor(out, swap, dst=out)
        ok, enc = cv2.imencode(SUFFIX[fmt], out[..., 0] if out.shape[2] == 1 else out, params)
    except cv2.error as e:
        raise OutputError(f"cannot encode {fmt} ({one_line(e)})") from None
    finally:
        if swap is not None and not own:
            cv2.cvtColor(out, swap, dst=out)            # the swap is its own inverse
    if not ok:
        raise OutputError(f"cannot encode {fmt}")
    return png_parts(enc, metadata) if fmt == "png" else [memoryview(enc).cast("B")]
