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
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import cv2
import numpy as np
import tifffile

from ..errors import InputError, OutputError, one_line
from .metadata import Metadata, png_chunk, png_parts, tiff_kwargs

__all__ = ["decode_cv2", "decode_tiff", "decode_raw", "is_dng", "encode_cv2", "encode_tiff", "encode_png_bands",
           "BANDS_FROM"]


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


# --- Large PNGs on every core ---
# A PNG encoder for large images that uses every core: rows Up-filtered with numpy, deflated in bands on
# threads, joined into one zlib stream.
#
# libpng (through OpenCV, :data:`PNG_PARAMS`: Paeth, run-length deflate) filters and deflates on one core:
# 0.48 s of a denoised 12 MP photo, after its last tile, in a whole process of 2.8 s here. The Up filter
# (:math:`(x - b) \bmod 256`, :math:`b` the byte above, zero above the top row) is one numpy subtraction where
# Paeth's predictor costs 0.8 s in numpy; with run-length deflate on two threads the same photo is encoded in
# 0.14-0.19 s and comes out 4 % larger (17.4 against 16.7 MB).
#
# Each band is deflated by its own compressor ended with a sync flush (the last with a finish), so the raw
# deflate pieces join into one stream; a zlib header and the Adler-32 of all filtered bytes, joined from each
# band's (:func:`_adler_join`), frame it (RFC 1950/1951).

BANDS_FROM = 1 << 22
"""Samples from which :func:`encode_png_bands` is worth it (about 1.4 MP of RGB); smaller images go to OpenCV."""


def _up_rows(raw: np.ndarray, prev: np.ndarray) -> np.ndarray:
    r"""Rows ``raw`` ``(n, rowbytes)`` uint8 Up-filtered, ``prev`` the row above the first (zeros at the top):
    ``(n, 1 + rowbytes)`` uint8, the filter type 2 first in each row, then :math:`(x - b) \bmod 256`."""
    out = np.empty((raw.shape[0], raw.shape[1] + 1), np.uint8)
    out[:, 0] = 2
    np.subtract(raw[0], prev, out=out[0, 1:])
    np.subtract(raw[1:], raw[:-1], out=out[1:, 1:])
    return out


def encode_png_bands(image: np.ndarray, workers: int | None = None) -> bytes:
    """A whole PNG (IHDR, IDAT, IEND) of ``image``: ``(H, W)`` or ``(H, W, C)`` with C 1 (gray), 3 (RGB) or
    4 (RGBA), uint8 or uint16 (written big-endian as PNG wants), rows split into ``workers`` bands (default:
    the CPUs this process may use).

    >>> import cv2
    >>> x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 9
    >>> y = cv2.imdecode(np.frombuffer(encode_png_bands(x), np.uint8), cv2.IMREAD_UNCHANGED)
    >>> bool((y == x[..., [2, 1, 0, 3]]).all())
    True
    """
    if image.ndim == 2:
        image = image[..., None]
    h, w, ch = image.shape
    if ch not in (1, 3, 4) or image.dtype not in (np.uint8, np.uint16) or h < 1 or w < 1:
        raise ValueError(f"cannot write {image.dtype} samples with {ch} channels as PNG")
    depth = 8 * image.dtype.itemsize
    raw = np.ascontiguousarray(image, ">u2" if depth == 16 else np.uint8).view(np.uint8).reshape(h, -1)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = max(1, min(workers or cpus, h))
    edges = [h * k // n for k in range(n + 1)]

    def band(k: int) -> tuple[bytes, int]:
        lo, hi = edges[k], edges[k + 1]
        prev = raw[lo - 1] if lo else np.zeros(raw.shape[1], np.uint8)
        rows = _up_rows(raw[lo:hi], prev)
        comp = zlib.compressobj(3, zlib.DEFLATED, -15, 8, zlib.Z_RLE)
        data = comp.compress(rows) + comp.flush(zlib.Z_FINISH if k == n - 1 else zlib.Z_SYNC_FLUSH)
        return data, zlib.adler32(rows)

    with ThreadPoolExecutor(n) as pool:
        parts = list(pool.map(band, range(n)))
    adler = _adler_join([(p[1], (edges[k + 1] - edges[k]) * (raw.shape[1] + 1)) for k, p in enumerate(parts)])
    stream = b"\x78\x01" + b"".join(p[0] for p in parts) + struct.pack(">I", adler)
    colour = {1: 0, 3: 2, 4: 6}[ch]
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0))
            + png_chunk(b"IDAT", stream) + png_chunk(b"IEND", b""))


def _adler_join(pieces: list[tuple[int, int]]) -> int:
    """The Adler-32 of consecutive byte strings from each one's Adler-32 and length (zlib's adler32_combine):
    with :math:`A = 1 + \\sum x`, :math:`B = n + \\sum (n - i) x_i` (mod 65521), joining a piece of length
    :math:`n_2` adds its sums and :math:`n_2 (A_1 - 1)` to B."""
    mod = 65521
    a, b = 1, 0
    for value, length in pieces:
        a2, b2 = value & 0xFFFF, value >> 16
        b = (b + b2 + length * (a - 1)) % mod      # the second piece's B assumed a start of A = 1
        a = (a + a2 - 1) % mod
    return (b << 16) | a
