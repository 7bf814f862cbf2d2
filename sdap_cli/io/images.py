"""Read and write images keeping their bit depth; camera RAW; stdin/stdout.

A decoded image keeps the sample type of its file (8- or 16-bit unsigned integers; float32/float16
TIFF): ``Image.pixels``. The denoiser converts it to float ``[0, 1]`` one tile at a time and writes
into an output buffer of the same type (``io/samples.py``), so memory stays near twice the decoded
image at any size; ``Image.rgb`` is the whole image as float32 for callers that want it. Before
decoding, the header's size is handed to the caller's check (``fits``: ``inference/memory.py`` compares
what denoising it needs with the memory available). The source alpha plane is kept aside untouched and re-attached on writing. JPEG and HEIC orientation is applied when reading. EXIF, ICC and XMP are
read into ``Image.metadata`` and written back where the format holds them (``io/metadata.py``).

Float TIFFs keep their dtype. The network sees the values clipped to [0, 1] (NaN as 0); samples
outside [0, 1] (HDR highlights, negative values, NaN) are written back as they were in the input,
the others as denoised: the denoiser's [0, 1] model does not cover them, so they are not changed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import InputError, OutputError, one_line
from .atomic import atomic_write
from .encoding import check_encodable, encode_image, encode_to
from .formats import (
    FORMATS,
    RAW_SUFFIXES,
    READ_SUFFIXES,
    format_for_suffix,
    is_image_path,
    normalise_format,
    sniff,
    suffix_for_format,
)

__all__ = ["Image", "read_image", "write_image", "image_from_array", "as_float", "png_like", "is_image_path",
           "format_for_suffix", "suffix_for_format", "normalise_format", "RAW_SUFFIXES", "READ_SUFFIXES"]
from .metadata import Metadata, needs_exif_keys, read_metadata, write_exif_keys
from .samples import Image, from_unit
from .sniff import probe

_STDIN, _STDOUT = "<stdin>", "<stdout>"


def as_float(x: np.ndarray) -> np.ndarray:
    """uint8 samples -> float32 in [0, 1]; float arrays -> float32 as they are."""
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)


def png_like(arr: np.ndarray) -> Image:
    """The :class:`Image` to write ``arr`` (uint8, or float for 16 bits) back as an RGB PNG of its depth."""
    pixels = arr if arr.dtype == np.uint8 else from_unit(np.array(arr, np.float32), np.uint16)
    return Image(pixels=pixels, dtype=pixels.dtype, channels=3, alpha=None, format="png")


def _is_std(path: str | os.PathLike) -> bool:
    return os.fspath(path) == "-"


def _read_bytes(path: str | os.PathLike) -> tuple[str, bytes, bool]:
    """(name for messages, the file's bytes, whether its suffix is camera RAW); '-' reads all of stdin."""
    if _is_std(path):
        buf = getattr(sys.stdin, "buffer", None)
        if buf is None or getattr(buf, "isatty", lambda: False)():
            raise InputError(f"{_STDIN}: no image piped to standard input")
        return _STDIN, buf.read(), False
    name, p = os.fspath(path), Path(path)
    if p.is_dir():
        raise InputError(f"{name}: is a folder")
    if not p.exists():
        raise InputError(f"{name}: no such file")
    suffix = p.suffix.lower()
    if suffix not in READ_SUFFIXES:
        raise InputError(f"{name}: unsupported file type '{p.suffix}'")
    try:
        return name, p.read_bytes(), suffix in RAW_SUFFIXES
    except OSError as e:
        raise InputError(f"{name}: cannot read ({one_line(e.strerror or e)})") from None


def read_image(path: str | os.PathLike, fits: Callable[[str, tuple[int, int, int, int]], None] | None = None
               ) -> Image:
    """Read an image file (or ``'-'``: all of stdin) into an :class:`Image`.

    Args:
        path: a file path, or ``'-'`` for standard input (format sniffed from the bytes).
        fits: ``fits(name, (height, width, channels, bytes per sample))`` from the file's header,
            before decoding; it raises InputError for an image the caller cannot afford
            (``inference.memory.denoise_fits``). None: no check.

    Returns:
        The decoded image. The file itself is never modified.

    Raises:
        InputError: one line starting with the path (or ``<stdin>``) and the reason.
    """
    name, data, raw = _read_bytes(path)
    if not data:
        raise InputError(f"{name}: not a readable image (file is empty)")
    try:
        img = _decode(data, name, raw, fits)
    except MemoryError:
        raise InputError(f"{name}: not enough memory to decode this image") from None
    meta = read_metadata(data, rotated=FORMATS[img.format].upright, raw=img.format == "raw")
    img.metadata = meta or None
    return img


def _decode(data: bytes, name: str, raw: bool, fits=None) -> Image:
    """Decode with the format the bytes say (``formats.sniff``), or as camera RAW when the suffix says so
    or stdin's bytes are of no other format."""
    kind = "raw" if raw else sniff(data)
    if kind is None and name == _STDIN:
        kind = "raw"
    if kind is None:
        raise InputError(f"{name}: not a readable image (unrecognised data)")
    geometry = probe(data, kind) if fits is not None else None
    if geometry is not None:
        fits(name, geometry)
    try:
        return image_from_array(FORMATS[kind].decode(data, name), name, kind)
    except InputError:
        if raw or name != _STDIN:
            raise
        raise InputError(f"{name}: not a readable image (unrecognised data)") from None


def image_from_array(arr: np.ndarray, name: str, fmt: str) -> Image:
    """Decoded samples ``(H, W)`` or ``(H, W, 1-4)`` (gray, gray+alpha, RGB, RGBA; uint8, uint16, float16,
    float32, bool) as the :class:`Image` to denoise and write back; any strides (the arrays are views).

    Raises:
        InputError: ``name`` and the reason, for another sample type, layout, or an empty image.
    """
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.dtype.kind in "uf" and arr.dtype.itemsize in ((1, 2) if arr.dtype.kind == "u" else (2, 4)):
        arr = arr.astype(f"{arr.dtype.kind}{arr.dtype.itemsize}", copy=False)  # big-endian TIFF -> native
    else:
        raise InputError(f"{name}: unsupported sample type {arr.dtype.name} "
                         "(8- and 16-bit unsigned, float16 and float32 images are supported)")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or not 1 <= arr.shape[2] <= 4:
        raise InputError(f"{name}: unsupported image layout {tuple(arr.shape)}")
    h, w, c = arr.shape
    if h < 1 or w < 1:
        raise InputError(f"{name}: not a readable image (empty, {w}x{h} pixels)")
    colour = arr[..., :3] if c >= 3 else arr[..., :1]
    out_of_range = arr.dtype.kind == "f" and not ((colour >= 0) & (colour <= 1)).all()
    alpha = arr[..., c - 1] if c in (2, 4) else None
    return Image(pixels=colour, dtype=arr.dtype, channels=c, alpha=alpha, format=fmt, out_of_range=out_of_range)


def write_image(path: str | os.PathLike, rgb: np.ndarray, like: Image, fmt: str | None = None,
                quality: int = 95, metadata: Metadata | None = None) -> None:
    """Encode ``rgb`` like ``like`` and write it atomically (or to stdout for ``'-'``).

    A temporary file in the destination folder is written, fsynced and renamed onto
    ``path``; on any failure it is removed and an existing ``path`` is left as it was.
    Parent folders are not created and existing files are overwritten without asking.

    Args:
        path: destination file, or ``'-'`` for standard output (PNG unless ``fmt``).
        rgb: float ``(H, W, 3)`` in ``[0, 1]``, or the colour samples (as in :func:`encode_image`).
        like: the source image (dtype, channels, alpha).
        fmt: output format; by default from the suffix of ``path``.
        quality, metadata: as in :func:`encode_image`.

    Raises:
        OutputError: one line starting with the path (or ``<stdout>``) and the reason.
    """
    std = _is_std(path)
    name = _STDOUT if std else os.fspath(path)
    try:
        fmt = normalise_format(fmt or ("png" if std else format_for_suffix(Path(path).suffix)))
        check_encodable(np.asarray(rgb), like, fmt)
        data = encode_image(rgb, like, fmt, quality, metadata) if std else None
        if std and needs_exif_keys(metadata, fmt):
            data = write_exif_keys(data, metadata)
    except OutputError as e:
        raise OutputError(f"{name}: {e}") from None
    if std:
        try:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        except OSError as e:
            raise OutputError(f"{name}: cannot write ({one_line(e.strerror or e)})") from None
        return
    p = Path(path)
    if not p.parent.is_dir():
        raise OutputError(f"{name}: cannot write (folder {os.fspath(p.parent)} does not exist)")
    try:
        atomic_write(p, lambda fh: encode_to(fh, rgb, like, fmt, quality, metadata),
                     finish=(lambda tmp: write_exif_keys(tmp, metadata)) if needs_exif_keys(metadata, fmt) else None)
    except OutputError as e:
        raise OutputError(f"{name}: {e}") from None
    except OSError as e:
        raise OutputError(f"{name}: cannot write ({one_line(e.strerror or e)})") from None
