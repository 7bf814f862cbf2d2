"""Read and write images keeping their bit depth; camera RAW; stdin/stdout.

Inside the core an image is a float32 ``(H, W, 3)`` array with values in ``[0, 1]``; this
module is the only place that converts from and to file sample types (8- or 16-bit
unsigned integers; float32/float16 TIFF). The source alpha plane is kept aside untouched and
re-attached on writing. JPEG and HEIC orientation is applied when reading. EXIF, ICC and XMP are
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
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import tifffile

from ..errors import InputError, OutputError
from .atomic import atomic_write
from .metadata import Metadata, png_with_metadata, read_metadata, tiff_kwargs
from .pillow_codec import decode_heif, encode_pillow
from .sniff import png_complete, sniff

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".heic", ".heif", ".hif"})
RAW_SUFFIXES = frozenset(
    ".dng .cr2 .cr3 .crw .nef .nrw .arw .srf .sr2 .raf .rw2 .rwl .orf .pef .srw .kdc .dcr"
    " .mrw .3fr .erf .mef .mos .raw .x3f .iiq".split()
)
_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff",
            ".bmp": "bmp", ".webp": "webp", ".heic": "heic", ".heif": "heic", ".hif": "heic"}
_SUFFIX = {"png": ".png", "jpeg": ".jpg", "tiff": ".tif", "bmp": ".bmp", "webp": ".webp", "heic": ".heic"}
_EIGHT_BIT_ONLY = frozenset({"jpeg", "bmp", "webp"})
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
    return _SUFFIX[_normalise_format(fmt)]


@dataclass
class Image:
    """A decoded image: float RGB for the core plus what is needed to write it back.

    Attributes:
        rgb: float32 ``(H, W, 3)`` in ``[0, 1]``; gray sources are replicated to 3 channels.
        dtype: sample type of the source: uint8, uint16 (RAW, 10-bit HEIC), float16 or float32 (TIFF).
        channels: channels in the source: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
        alpha: the source alpha plane ``(H, W)`` in the source dtype, or None.
        format: 'png', 'jpeg', 'tiff', 'bmp', 'webp', 'heic' or 'raw'.
        metadata: the source's EXIF, ICC profile and XMP (None: none to write).
        outside: float sources with samples outside [0, 1] (or NaN): their colour samples as read, so
            those samples are written back unchanged; else None.
    """

    rgb: np.ndarray
    dtype: np.dtype
    channels: int
    alpha: np.ndarray | None
    format: str
    metadata: Metadata | None = None
    outside: np.ndarray | None = None

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


def as_float(x: np.ndarray) -> np.ndarray:
    """uint8 samples -> float32 in [0, 1]; float arrays -> float32 as they are."""
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)


def png_like(arr: np.ndarray) -> Image:
    """The :class:`Image` to write ``arr`` (uint8, or float for 16 bits) back as an RGB PNG of its depth."""
    dt = np.uint8 if arr.dtype == np.uint8 else np.uint16
    return Image(rgb=as_float(arr), dtype=dt, channels=3, alpha=None, format="png")


def _oneline(msg: object) -> str:
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    return " ".join(str(msg).split())


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
        raise InputError(f"{name}: cannot read ({_oneline(e.strerror or e)})") from None


def read_image(path: str | os.PathLike) -> Image:
    """Read an image file (or ``'-'``: all of stdin) into an :class:`Image`.

    Args:
        path: a file path, or ``'-'`` for standard input (format sniffed from the bytes).

    Returns:
        The decoded image. The file itself is never modified.

    Raises:
        InputError: one line starting with the path (or ``<stdin>``) and the reason.
    """
    name, data, raw = _read_bytes(path)
    if not data:
        raise InputError(f"{name}: not a readable image (file is empty)")
    img = _decode(data, name, raw)
    meta = read_metadata(data, rotated=img.format in ("jpeg", "heic"))
    img.metadata = meta or None
    return img


def _decode(data: bytes, name: str, raw: bool) -> Image:
    kind = sniff(data)
    if raw or (kind is None and name == _STDIN):
        return _decode_raw(data, name, guess=not raw)
    if kind is None:
        raise InputError(f"{name}: not a readable image (unrecognised data)")
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
        except cv2.error:
            arr = None
        if arr is None:
            raise InputError(f"{name}: not a readable image (corrupt or truncated data)")
        if arr.ndim == 3 and arr.shape[2] in (3, 4):  # BGR(A) -> RGB(A)
            arr = arr[..., [2, 1, 0, 3][: arr.shape[2]]]
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
                         f"{name}: not a readable camera RAW file ({_oneline(e)})") from None
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
    scale = np.float32({1: 255, 2: 65535}[arr.dtype.itemsize] if arr.dtype.kind == "u" else 1)
    colour = arr[..., :3] if c >= 3 else arr[..., :1]
    rgb = colour.astype(np.float32) / scale
    outside = None
    if arr.dtype.kind == "f":
        if not ((rgb >= 0) & (rgb <= 1)).all():
            outside = rgb.copy()
        np.clip(np.nan_to_num(rgb, copy=False, nan=0.0), 0.0, 1.0, out=rgb)
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    alpha = arr[..., c - 1].copy() if c in (2, 4) else None
    return Image(rgb=np.ascontiguousarray(rgb), dtype=arr.dtype, channels=c, alpha=alpha,
                 format=fmt, outside=outside)


def _normalise_format(fmt: str) -> str:
    f = {"jpg": "jpeg", "tif": "tiff"}.get(fmt.lower().lstrip("."), fmt.lower().lstrip("."))
    if f not in _SUFFIX:
        raise OutputError(f"unsupported output format '{fmt}' (use png, jpeg, tiff, bmp, webp or heic)")
    return f


def _samples(rgb: np.ndarray, like: Image, dtype: np.dtype) -> np.ndarray:
    """``(H, W, C)`` samples of ``dtype`` in the channels of ``like`` (alpha re-attached)."""
    # one float32 working copy, then in place: a 24 MP photo needs 288 MB here, not four times that
    x = np.array(rgb, dtype=np.float32, copy=True)
    np.nan_to_num(x, copy=False, nan=0.0)
    np.clip(x, 0.0, 1.0, out=x)
    if like.channels in (1, 2):
        x = x.mean(axis=2, keepdims=True)
    if dtype.kind == "f":
        if like.outside is not None and like.outside.shape == x.shape:
            keep = ~((like.outside >= 0) & (like.outside <= 1))  # out of range or NaN: as read
            x[keep] = like.outside[keep]
        out = x.astype(dtype)
    else:
        x *= np.float32(255 if dtype == np.uint8 else 65535)
        out = np.rint(x, out=x).astype(dtype)
    del x
    if like.alpha is not None:
        out = np.concatenate([out, like.alpha.astype(dtype, copy=False)[..., None]], axis=2)
    return out


def encode_image(rgb: np.ndarray, like: Image, fmt: str, quality: int = 95,
                 metadata: Metadata | None = None) -> bytes:
    """Encode denoised RGB in the sample type, channels and alpha of ``like``.

    Args:
        rgb: float ``(H, W, 3)``, nominally in ``[0, 1]`` (clipped; NaN becomes 0).
        like: the source image: gives dtype, gray/colour and the alpha plane.
        fmt: 'png', 'jpeg', 'tiff', 'bmp', 'webp' or 'heic' ('jpg' and 'tif' accepted).
        quality: 1-100 for jpeg, webp and heic (JPEG with 4:4:4 chroma); ignored otherwise.
        metadata: EXIF/ICC/XMP to embed where ``fmt`` can hold them (none for BMP).

    Returns:
        The encoded file bytes.

    Raises:
        OutputError: the format cannot hold the data (16 bits, floats or alpha), or encoding failed.
        ValueError: ``rgb`` has the wrong shape.
    """
    fmt = _normalise_format(fmt)
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
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
    out = _samples(rgb, like, dtype)
    if fmt in ("jpeg", "webp", "heic"):
        return encode_pillow(out, fmt, quality, metadata)
    if fmt == "tiff":
        buf = io.BytesIO()
        gray = out.shape[2] <= 2
        tifffile.imwrite(buf, out[..., 0] if out.shape[2] == 1 else out,
                         photometric="minisblack" if gray else "rgb",
                         planarconfig=None if out.shape[2] == 1 else "contig",
                         extrasamples=("unassalpha",) if like.alpha is not None else None,
                         **tiff_kwargs(metadata))
        return buf.getvalue()
    if out.shape[2] == 2:  # OpenCV cannot encode gray+alpha: write it as RGBA
        out = out[..., [0, 0, 0, 1]]
    if out.shape[2] >= 3:
        out = out[..., [2, 1, 0, 3][: out.shape[2]]]  # RGB(A) -> BGR(A)
    params = [cv2.IMWRITE_PNG_COMPRESSION, 3] if fmt == "png" else []
    try:
        out = np.ascontiguousarray(out[..., 0] if out.shape[2] == 1 else out)
        ok, enc = cv2.imencode(_SUFFIX[fmt], out, params)
    except cv2.error as e:
        raise OutputError(f"cannot encode {fmt} ({_oneline(e)})") from None
    if not ok:
        raise OutputError(f"cannot encode {fmt}")
    return png_with_metadata(enc.tobytes(), metadata) if fmt == "png" else enc.tobytes()


def write_image(path: str | os.PathLike, rgb: np.ndarray, like: Image, fmt: str | None = None,
                quality: int = 95, metadata: Metadata | None = None) -> None:
    """Encode ``rgb`` like ``like`` and write it atomically (or to stdout for ``'-'``).

    A temporary file in the destination folder is written, fsynced and renamed onto
    ``path``; on any failure it is removed and an existing ``path`` is left as it was.
    Parent folders are not created and existing files are overwritten without asking.

    Args:
        path: destination file, or ``'-'`` for standard output (PNG unless ``fmt``).
        rgb: float ``(H, W, 3)`` in ``[0, 1]``.
        like: the source image (dtype, channels, alpha).
        fmt: output format; by default from the suffix of ``path``.
        quality, metadata: as in :func:`encode_image`.

    Raises:
        OutputError: one line starting with the path (or ``<stdout>``) and the reason.
    """
    std = _is_std(path)
    name = _STDOUT if std else os.fspath(path)
    try:
        fmt = fmt or ("png" if std else format_for_suffix(Path(path).suffix))
        data = encode_image(rgb, like, fmt, quality, metadata)
    except OutputError as e:
        raise OutputError(f"{name}: {e}") from None
    if std:
        try:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        except OSError as e:
            raise OutputError(f"{name}: cannot write ({_oneline(e.strerror or e)})") from None
        return
    p = Path(path)
    if not p.parent.is_dir():
        raise OutputError(f"{name}: cannot write (folder {os.fspath(p.parent)} does not exist)")
    try:
        atomic_write(p, lambda fh: fh.write(data))
    except OSError as e:
        raise OutputError(f"{name}: cannot write ({_oneline(e.strerror or e)})") from None
