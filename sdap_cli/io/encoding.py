"""Encode denoised samples into image files: sample type, gray/colour, alpha and metadata of the source.

``encode_to`` streams into an open file (``images.write_image`` hands it the atomic temporary file),
so a large TIFF is never held in memory and a PNG is written from OpenCV's buffer without a copy.
"""

from __future__ import annotations

import io

import numpy as np

from .formats import FORMATS, check_samples, normalise_format
from .metadata import Metadata
from .samples import Image, from_unit

__all__ = ["encode_image", "encode_to", "check_encodable", "output_samples"]


def output_samples(rgb: np.ndarray, like: Image) -> np.ndarray:
    """``(H, W, C)`` samples in the sample type and channels of ``like`` (alpha re-attached): what an
    output file of ``like`` holds (float samples outside [0, 1] or NaN in ``like.pixels`` as read).

    ``rgb`` is float in [0, 1] ``(H, W, 3)``, or already the colour samples (``Image.output_buffer``:
    ``like``'s type, 1 channel for a gray source), which integer types use as they are (no copy)."""
    dtype = np.dtype(like.dtype)
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
    """OutputError when ``fmt`` cannot hold ``like``'s samples or alpha (``formats.FORMATS``); ValueError
    for a wrongly shaped ``rgb``."""
    if rgb.ndim != 3 or rgb.shape[2] not in (1, 3):
        raise ValueError(f"expected an (H, W, 3) array, got shape {rgb.shape}")
    check_samples(fmt, np.dtype(like.dtype), like.alpha is not None)
    if like.alpha is not None and like.alpha.shape != rgb.shape[:2]:
        raise ValueError(f"alpha shape {like.alpha.shape} does not match image {rgb.shape[:2]}")


def encode_to(fh, rgb: np.ndarray, like: Image, fmt: str, quality: int = 95,
              metadata: Metadata | None = None) -> None:
    """:func:`encode_image` written to the binary file object ``fh`` as it is encoded, by the format's
    encoder (``formats.FORMATS``: TIFF samples go straight to the file; a PNG is written from the
    encoder's buffer without a copy)."""
    fmt = normalise_format(fmt)
    rgb = np.asarray(rgb)
    check_encodable(rgb, like, fmt)
    out = output_samples(rgb, like)
    FORMATS[fmt].encode(fh, out, quality, metadata, out is not rgb)
