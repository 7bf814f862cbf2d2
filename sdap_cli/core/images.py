"""Read and write images keeping their bit depth; camera RAW; stdin/stdout.

A decoded image keeps the sample type of its file (8- or 16-bit unsigned integers; float32/float16
TIFF): ``Image.pixels``. The denoiser converts it to float ``[0, 1]`` one tile at a time and writes
into an output buffer of the same type (``core/samples.py``), so memory stays near twice the decoded
image at any size; ``Image.rgb`` is the whole image as float32 for callers that want it. Before
decoding, the header's size is checked against the memory available (``core/memory.py``) when the
caller says what it needs. The source alpha plane is kept aside untouched and re-attached on writing. JPEG and HEIC orientation is applied when reading. EXIF, ICC and XMP are
read into ``Image.metadata`` and written back where the format holds them (``core/metadata.py``).

Float TIFFs keep their dtype. The network sees the values clipped to [0, 1] (NaN as 0); samples
outside [0, 1] (HDR highlights, negative values, NaN) are written back as they were in the input,
the others as denoised: the denoiser's [0, 1] model does not cover them, so they are not changed.
"""

from __future__ import annotations

import io
import os
import sys
from contextlib import contextmanager
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import tifffile

from ..errors import InputError, OutputError, one_line
from .atomic import atomic_write
from .encoding import SUFFIX, check_encodable, encode_image, encode_to, normalise_format
from .memory import available_memory, fmt_bytes
from .metadata import Metadata, needs_exif_keys, read_metadata, write_exif_keys
from .pillow_codec import decode_heif
from .samples import from_unit, to_unit
from .sniff import png_complete, probe, sniff

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".heic", ".heif", ".hif"})
RAW_SUFFIXES = frozenset(
    ".dng .cr2 .cr3 .crw .nef .nrw .arw .srf .sr2 .raf .rw2 .rwl .orf .pef .srw .kdc .dcr"
    " .mrw .3fr .erf .mef .mos .raw .x3f .iiq".split()
)
_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff",
            ".bmp": "bmp", ".webp": "webp", ".heic": "heic", ".heif": "heic", ".hif": "heic"}
_STDIN, _STDOUT = "<stdin>", "<stdout>"


def is_image_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` has a suffix (any case) this module can read."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES | RAW_SUFFIXES


def format_for_suffix(suffix: str) -> str:
    """Output format for a file suffix (``'.JPG'`` -> ``'jpeg'``); OutputError if unknown."""
    s = suffix.lower() if suffix.startswith(".") else "." + suffix.lower()
    if s in _FORMATS:
        return _FORMATS[s]
    if s in RAW_SUFFIXES:
        raise OutputError(f"cannot write camera RAW ('{suffix}'); use .png or .tif")
    raise OutputError(
        f"unsupported output file type '{suffix}' (use .png, .jpg, .tif, .bmp, .webp or .heic)")


def suffix_for_format(fmt: str) -> str:
    """File suffix for an output format (``'jpeg'`` -> ``'.jpg'``, ``'tiff'`` -> ``'.tif'``)."""
    return SUFFIX[normalise_format(fmt)]


@dataclass
class Image:
    """A decoded image: its samples as the file holds them, plus what is needed to write it back.

    Attributes:
        pixels: the colour samples ``(H, W, 1)`` (gray) or ``(H, W, 3)`` (RGB) in ``dtype``, as read
            (float samples unclipped); None once :meth:`release` dropped them.
        dtype: sample type of the source: uint8, uint16 (RAW, 10-bit HEIC), float16 or float32 (TIFF).
        channels: channels in the source: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
        alpha: the source alpha plane ``(H, W)`` in the source dtype, or None.
        format: 'png', 'jpeg', 'tiff', 'bmp', 'webp', 'heic' or 'raw'.
        metadata: the source's EXIF, ICC profile and XMP (None: none to write).
        out_of_range: a float source has samples outside [0, 1] (or NaN); those are written back as
            read, which needs ``pixels`` until the output is written.
    """

    pixels: np.ndarray | None
    dtype: np.dtype
    channels: int
    alpha: np.ndarray | None
    format: str
    metadata: Metadata | None = None
    out_of_range: bool = False

    def __post_init__(self) -> None:
        self.shape = tuple(self.pixels.shape[:2])

    @property
    def height(self) -> int:
        return int(self.shape[0])

    @property
    def width(self) -> int:
        return int(self.shape[1])

    @property
    def colour(self) -> np.ndarray:
        """The samples as ``(H, W, 3)`` for the denoiser: ``pixels``, or a gray plane broadcast (no copy)."""
        p = self.pixels
        return p if p.shape[2] == 3 else np.broadcast_to(p, (*p.shape[:2], 3))

    @property
    def rgb(self) -> np.ndarray:
        """The whole image as float32 ``(H, W, 3)`` in [0, 1] (a new array; gray replicated)."""
        return np.ascontiguousarray(to_unit(self.colour))

    def output_buffer(self) -> np.ndarray:
        """An empty ``(H, W, 1 or 3)`` array of the source's sample type for the denoised colour samples."""
        return np.empty(self.pixels.shape, self.dtype)

    def release(self) -> None:
        """Drop the input samples once denoised (kept when out-of-range floats must be written back)."""
        if not self.out_of_range:
            self.pixels = None


def as_float(x: np.ndarray) -> np.ndarray:
    """uint8 samples -> float32 in [0, 1]; float arrays -> float32 as they are."""
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)


def png_like(arr: np.ndarray) -> Image:
    """The :class:`Image` to write ``arr`` (uint8, or float for 16 bits) back as an RGB PNG of its depth."""
    pixels = arr if arr.dtype == np.uint8 else from_unit(np.array(arr, np.float32), np.uint16)
    return Image(pixels=pixels, dtype=pixels.dtype, channels=3, alpha=None, format="png")


def _is_std(path: str | os.PathLike) -> bool:
    return os.fspath(path) == "-"


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
    if suffix not in IMAGE_SUFFIXES | RAW_SUFFIXES:
        raise InputError(f"{name}: unsupported file type '{p.suffix}'")
    try:
        return name, p.read_bytes(), suffix in RAW_SUFFIXES
    except OSError as e:
        raise InputError(f"{name}: cannot read ({one_line(e.strerror or e)})") from None


def read_image(path: str | os.PathLike, need: Callable[[int, int], int] | None = None) -> Image:
    """Read an image file (or ``'-'``: all of stdin) into an :class:`Image`.

    Args:
        path: a file path, or ``'-'`` for standard input (format sniffed from the bytes).
        need: ``need(decoded_bytes, available_bytes)``, the memory the caller will use for an image of
            that many decoded sample bytes (``memory.denoise_need``); when it exceeds what is available
            the file is refused before decoding. None: no check.

    Returns:
        The decoded image. The file itself is never modified.

    Raises:
        InputError: one line starting with the path (or ``<stdin>``) and the reason.
    """
    name, data, raw = _read_bytes(path)
    if not data:
        raise InputError(f"{name}: not a readable image (file is empty)")
    try:
        img = _decode(data, name, raw, need)
    except MemoryError:
        raise InputError(f"{name}: not enough memory to decode this image") from None
    meta = read_metadata(data, rotated=img.format in ("jpeg", "heic"), raw=img.format == "raw")
    img.metadata = meta or None
    return img


def _check_fits(data: bytes, kind: str, name: str, need: Callable[[int, int], int] | None) -> None:
    """InputError when the header's size needs more memory than is available (module docstring)."""
    geometry = probe(data, kind) if need is not None else None
    available = available_memory() if geometry is not None else None
    if available is None:
        return
    h, w, c, b = geometry
    required = need(h * w * c * b, available)
    if required > available:
        raise InputError(f"{name}: {w}x{h} pixels ({c} x {8 * b}-bit samples, {h * w / 1e6:.0f} MP) need about "
                         f"{fmt_bytes(required)} of memory, {fmt_bytes(available)} is available; "
                         "denoise a smaller crop or use a machine with more memory")


def _decode(data: bytes, name: str, raw: bool, need=None) -> Image:
    kind = sniff(data)
    if raw or (kind is None and name == _STDIN):
        return _decode_raw(data, name, guess=not raw)
    if kind is None:
        raise InputError(f"{name}: not a readable image (unrecognised data)")
    _check_fits(data, kind, name, need)
    if kind == "heic":
        return _to_image(decode_heif(data, name), name, kind)
    arr = None
    if kind == "tiff":
        try:
            with tifffile.TiffFile(io.BytesIO(data)) as tif:
                page = tif.pages[0]
                if page.is_dng:
                    return _decode_raw(data, name)
                if page.photometric in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB):
                    arr = page.asarray()
                    if page.axes.startswith("S"):  # planar (S, Y, X) -> (Y, X, S)
                        arr = np.moveaxis(arr, 0, -1)
        except InputError:
            raise
        except Exception:  # compression without imagecodecs, odd layouts: let OpenCV try
            arr = None
    elif kind == "png" and not png_complete(data):
        raise InputError(f"{name}: not a readable image (corrupt or truncated data)")
    if arr is None:
        # JPEG: ANYCOLOR|ANYDEPTH applies EXIF orientation (UNCHANGED would not); others keep alpha.
        flags = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH if kind == "jpeg" else cv2.IMREAD_UNCHANGED
        try:
            with _quiet_cv2():
                arr = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
        except cv2.error as e:
            if "memory" in str(e).lower():
                raise InputError(f"{name}: not enough memory to decode this image") from None
            arr = None
        if arr is None:
            raise InputError(f"{name}: not a readable image (corrupt or truncated data)")
        if arr.ndim == 3 and arr.shape[2] in (3, 4):  # BGR(A) -> RGB(A), in place
            cv2.cvtColor(arr, cv2.COLOR_BGR2RGB if arr.shape[2] == 3 else cv2.COLOR_BGRA2RGBA, dst=arr)
    return _to_image(arr, name, kind)


def _decode_raw(data: bytes, name: str, guess: bool = False) -> Image:
    unknown = f"{name}: not a readable image (unrecognised data)"
    try:
        import rawpy
    except ImportError:
        raise InputError(unknown if guess else f"{name}: camera RAW needs the rawpy package "
                         "(pip install rawpy)") from None
    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            # Camera white balance, sRGB primaries and sRGB tone curve, libraw's default
            # auto-brightness: close to what the camera's own JPEG would look like.
            arr = raw.postprocess(output_bps=16, use_camera_wb=True, gamma=(2.4, 12.92),
                                  output_color=rawpy.ColorSpace.sRGB)
    except (rawpy.LibRawError, ValueError, OSError) as e:
        raise InputError(unknown if guess else
                         f"{name}: not a readable camera RAW file ({one_line(e)})") from None
    return _to_image(arr, name, "raw")


def _to_image(arr: np.ndarray, name: str, fmt: str) -> Image:
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
