"""Decoders and encoders of the pixel data, one pair per library: OpenCV (PNG, JPEG, BMP, WebP), tifffile
(TIFF) and rawpy/LibRaw (camera RAW, decode only); Pillow's (JPEG/WebP/HEIC encoding, HEIC decoding)
are in ``pillow_codec``. ``formats.FORMATS`` says which format uses which.

A decoder takes ``(data, name)`` (the file's bytes and its name for messages) and returns the samples
as stored, ``(H, W)`` or ``(H, W, C)`` RGB(A) order; it raises InputError with a one-line reason. An
encoder takes ``(fh, samples, quality, metadata)`` with ``(H, W, C)`` samples and writes the file to the
binary file object ``fh``.
"""

from __future__ import annotations

import io
from contextlib import contextmanager

import cv2
import numpy as np
import tifffile

from ..errors import InputError, OutputError, one_line
from .metadata import Metadata, png_parts, tiff_kwargs
from .png_bands import BANDS_FROM, encode_png_bands

__all__ = ["decode_cv2", "decode_tiff", "decode_raw", "is_dng", "encode_cv2", "encode_tiff"]


@contextmanager
def _quiet_cv2():
    """Silence OpenCV's own warnings on stderr while decoding (we raise our own errors)."""
    log = getattr(getattr(cv2, "utils", None), "logging", None)
    try:
        old = log.getLogLevel()
        log.setLogLevel(log.LOG_LEVEL_SILENT)
    except AttributeError:
        log = None
    try:
        yield
    finally:
        if log is not None:
            log.setLogLevel(old)


def decode_cv2(data: bytes, name: str, jpeg: bool = False) -> np.ndarray:
    """OpenCV's decoder; ``jpeg``: applies the EXIF orientation (ANYCOLOR|ANYDEPTH; UNCHANGED would not,
    and keeps alpha, which the other formats need). BGR(A) is turned to RGB(A) in place."""
    flags = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH if jpeg else cv2.IMREAD_UNCHANGED
    try:
        with _quiet_cv2():
            arr = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as e:
        if "memory" in str(e).lower():
            raise InputError(f"{name}: not enough memory to decode this image") from None
        arr = None
    if arr is None:
        raise InputError(f"{name}: not a readable image (corrupt or truncated data)")
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        if arr.dtype in (np.uint8, np.uint16, np.float32):   # the depths cvtColor takes
            cv2.cvtColor(arr, cv2.COLOR_BGR2RGB if arr.shape[2] == 3 else cv2.COLOR_BGRA2RGBA, dst=arr)
        else:                                   # e.g. a 32-bit integer TIFF: image_from_array judges the type
            arr = arr[..., [2, 1, 0, 3][:arr.shape[2]]]
    return arr


def decode_tiff(data: bytes, name: str) -> np.ndarray:
    """tifffile's first page (gray or RGB, chunky or planar, any sample type); OpenCV where tifffile
    cannot (compression without imagecodecs, odd layouts)."""
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            if page.photometric in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB):
                arr = page.asarray()
                return np.moveaxis(arr, 0, -1) if page.axes.startswith("S") else arr   # planar (S, Y, X)
    except Exception:  # noqa: BLE001 - let OpenCV try
        pass
    return decode_cv2(data, name)


def is_dng(data: bytes) -> bool:
    """A TIFF whose first page is a DNG (camera RAW in a TIFF container)."""
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            return bool(tif.pages[0].is_dng)
    except Exception:  # noqa: BLE001
        return False


def decode_raw(data: bytes, name: str) -> np.ndarray:
    """A camera RAW file rendered by LibRaw (rawpy) to 16-bit sRGB: the camera's white balance, sRGB
    primaries and tone curve, LibRaw's default auto-brightness (close to the camera's own JPEG)."""
    try:
        import rawpy
    except ImportError:
        raise InputError(f"{name}: camera RAW needs the rawpy package (pip install rawpy)") from None
    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            return raw.postprocess(output_bps=16, use_camera_wb=True, gamma=(2.4, 12.92),
                                   output_color=rawpy.ColorSpace.sRGB)
    except (rawpy.LibRawError, ValueError, OSError) as e:
        raise InputError(f"{name}: not a readable camera RAW file ({one_line(e)})") from None


PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 3, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE,
              cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_PAETH]
"""How PNGs are compressed: every row Paeth-filtered, then run-length deflate. The pixels are the same
whatever these are; on a denoised 12 MP photo libpng's default (all five filters tried per row, level 3)
took 1.47 s for 13.1 MB, this 0.55-0.66 s for 12.45 MB (``benchmarks/png_encode.py``). A denoised photo is
smooth, so the Paeth residuals are small and runs of them long; on a noisy photo it is 24 % larger."""


def encode_cv2(fh, out: np.ndarray, fmt: str, metadata: Metadata | None, own: bool = True) -> None:
    """PNG (:data:`PNG_PARAMS`, the metadata chunks after IHDR) or BMP through OpenCV. RGB is turned to
    BGR in place, and back when ``out`` is not ``own`` (the caller's buffer)."""
    if out.shape[2] == 2:  # OpenCV cannot encode gray+alpha: write it as RGBA
        out, own = out[..., [0, 0, 0, 1]], True
    if fmt == "png" and out.size >= BANDS_FROM:   # large: filtered and deflated on every core, RGB order as it is
        try:
            enc = encode_png_bands(out)
        except (ValueError, MemoryError) as e:
            raise OutputError(f"cannot encode png ({one_line(e)})") from None
        for part in png_parts(enc, metadata):
            fh.write(part)
        return
    swap = {3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGRA}.get(out.shape[2])
    if swap is not None and not out.flags.c_contiguous:
        out, own = np.ascontiguousarray(out), True
    params = PNG_PARAMS if fmt == "png" else []
    try:
        if swap is not None:
            cv2.cvtColor(out, swap, dst=out)
        ok, enc = cv2.imencode("." + fmt, out[..., 0] if out.shape[2] == 1 else out, params)
    except cv2.error as e:
        raise OutputError(f"cannot encode {fmt} ({one_line(e)})") from None
    finally:
        if swap is not None and not own:
            cv2.cvtColor(out, swap, dst=out)            # the swap is its own inverse
    if not ok:
        raise OutputError(f"cannot encode {fmt}")
    for part in (png_parts(enc, metadata) if fmt == "png" else [memoryview(enc).cast("B")]):
        fh.write(part)


def encode_tiff(fh, out: np.ndarray, alpha: bool, metadata: Metadata | None) -> None:
    """A TIFF of any sample type straight into ``fh`` (gray, gray+alpha, RGB, RGBA; chunky), with the
    ICC profile, XMP and descriptive EXIF tags tifffile can write (``metadata.tiff_kwargs``)."""
    tifffile.imwrite(fh, out[..., 0] if out.shape[2] == 1 else out,
                     photometric="minisblack" if out.shape[2] <= 2 else "rgb",
                     planarconfig=None if out.shape[2] == 1 else "contig",
                     extrasamples=("unassalpha",) if alpha else None, **tiff_kwargs(metadata))
