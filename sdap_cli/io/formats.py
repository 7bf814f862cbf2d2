"""The file formats: one entry per file type, the one place that says what each can do.

A :class:`Format` gives the suffixes (the first names outputs), how its bytes are recognised, its
decoder and encoder (``codecs``, ``pillow_codec``; camera RAW is read only), the sample types and alpha
its files can hold, the metadata blocks its outputs carry, and whether its reader turns the pixels
upright (then the Orientation written is 1). ``images`` (read/write), ``encoding`` (what an output can
hold), the CLI's ``--format`` choices (``config.OutputFormat``; a test checks they agree) and
``sdap denoise``'s output names read this table. docs/architecture.md says how to add a format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, OutputError
from .codecs import decode_cv2, decode_raw, decode_tiff, encode_cv2, encode_tiff, is_dng
from .pillow_codec import decode_heif, encode_pillow, is_heif
from .sniff import png_complete

__all__ = ["Format", "FORMATS", "sniff", "format_for_suffix", "suffix_for_format", "is_image_path",
           "normalise_format", "writable", "check_samples", "READ_SUFFIXES", "RAW_SUFFIXES"]

Decoder = Callable[[bytes, str], np.ndarray]
Encoder = Callable[..., None]           # (fh, samples (H, W, C), quality, metadata, own) -> None


@dataclass(frozen=True)
class Format:
    """One file type (module docstring). ``samples``: numpy sample types its files hold; ``metadata``:
    the blocks an output of it carries ('exif', 'icc', 'xmp'); ``upright``: the decoder applies the
    EXIF orientation."""

    name: str
    suffixes: tuple[str, ...]
    magic: Callable[[bytes], bool]
    decode: Decoder
    encode: Encoder | None
    samples: frozenset[str]
    alpha: bool
    metadata: frozenset[str]
    upright: bool = False


def _png(data: bytes, name: str) -> np.ndarray:
    if not png_complete(data):
        raise InputError(f"{name}: not a readable image (corrupt or truncated data)")
    return decode_cv2(data, name)


_ALL = frozenset({"exif", "icc", "xmp"})
_RAW = (".dng .cr2 .cr3 .crw .nef .nrw .arw .srf .sr2 .raf .rw2 .rwl .orf .pef .srw .kdc .dcr"
        " .mrw .3fr .erf .mef .mos .raw .x3f .iiq").split()

FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("png", (".png",), lambda d: d.startswith(b"\x89PNG\r\n\x1a\n"), _png,
           lambda fh, out, q, meta, own: encode_cv2(fh, out, "png", meta, own),
           frozenset({"uint8", "uint16"}), True, _ALL),
    Format("jpeg", (".jpg", ".jpeg"), lambda d: d.startswith(b"\xff\xd8\xff"),
           lambda d, n: decode_cv2(d, n, jpeg=True),
           lambda fh, out, q, meta, own: fh.write(encode_pillow(out, "jpeg", q, meta)),
           frozenset({"uint8"}), False, _ALL, upright=True),
    # raw before tiff: a DNG is a TIFF too
    Format("raw", tuple(_RAW), is_dng, decode_raw, None, frozenset({"uint16"}), False, frozenset({"exif", "icc"})),
    Format("tiff", (".tif", ".tiff"), lambda d: d[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"), decode_tiff,
           lambda fh, out, q, meta, own: encode_tiff(fh, out, out.shape[2] in (2, 4), meta),
           frozenset({"uint8", "uint16", "float16", "float32"}), True, _ALL),
    Format("bmp", (".bmp",), lambda d: d.startswith(b"BM"), decode_cv2,
           lambda fh, out, q, meta, own: encode_cv2(fh, out, "bmp", None, own),
           frozenset({"uint8"}), True, frozenset()),
    Format("webp", (".webp",), lambda d: d[:4] == b"RIFF" and d[8:12] == b"WEBP", decode_cv2,
           lambda fh, out, q, meta, own: fh.write(encode_pillow(out, "webp", q, meta)),
           frozenset({"uint8"}), True, _ALL),
    Format("heic", (".heic", ".heif", ".hif"), is_heif, decode_heif,
           lambda fh, out, q, meta, own: fh.write(encode_pillow(out, "heic", q, meta)),
           frozenset({"uint8", "uint16"}), True, _ALL, upright=True),
)}
"""Every format, in the order :func:`sniff` tries them."""

RAW_SUFFIXES = frozenset(FORMATS["raw"].suffixes)
READ_SUFFIXES = frozenset(s for f in FORMATS.values() for s in f.suffixes)
_BY_SUFFIX = {s: f.name for f in FORMATS.values() for s in f.suffixes}


def sniff(data: bytes) -> str | None:
    """The format the bytes start with (file suffixes can lie; stdin has none), or None.

        >>> sniff(b"\\x89PNG\\r\\n\\x1a\\n...."), sniff(b"hello")
        ('png', None)
    """
    return next((f.name for f in FORMATS.values() if f.magic(data)), None)


def is_image_path(path: str | Path) -> bool:
    """Whether ``path`` has a suffix (any case) of a format this package reads."""
    return Path(path).suffix.lower() in READ_SUFFIXES


def normalise_format(fmt: str) -> str:
    """An output format's name from a name or suffix ('jpg' -> 'jpeg', '.tif' -> 'tiff'); OutputError for
    a format that cannot be written."""
    name = _BY_SUFFIX.get("." + fmt.lower().lstrip("."), fmt.lower().lstrip("."))
    if name not in FORMATS or FORMATS[name].encode is None:
        raise OutputError(f"unsupported output format '{fmt}' (use {', '.join(writable())})")
    return name


def writable() -> list[str]:
    """The formats an output can be written in."""
    return [f.name for f in FORMATS.values() if f.encode is not None]


def format_for_suffix(suffix: str) -> str:
    """Output format for a file suffix (``'.JPG'`` -> ``'jpeg'``); OutputError if it cannot be written."""
    s = suffix.lower() if suffix.startswith(".") else "." + suffix.lower()
    name = _BY_SUFFIX.get(s)
    if name is not None and FORMATS[name].encode is not None:
        return name
    if name == "raw":
        raise OutputError(f"cannot write camera RAW ('{suffix}'); use .png or .tif")
    out = ", ".join(FORMATS[n].suffixes[0] for n in writable())
    raise OutputError(f"unsupported output file type '{suffix}' (use {out})")


def suffix_for_format(fmt: str) -> str:
    """File suffix for an output format (``'jpeg'`` -> ``'.jpg'``, ``'tiff'`` -> ``'.tif'``)."""
    return FORMATS[normalise_format(fmt)].suffixes[0]


def check_samples(fmt: str, dtype: np.dtype, alpha: bool) -> None:
    """OutputError when format ``fmt`` cannot hold samples of ``dtype`` (with an alpha plane)."""
    f = FORMATS[fmt]
    if np.dtype(dtype).name not in f.samples:
        keep = [n for n in writable() if np.dtype(dtype).name in FORMATS[n].samples]
        what = "float samples" if np.dtype(dtype).kind == "f" else f"{8 * np.dtype(dtype).itemsize}-bit samples"
        raise OutputError(f"{fmt} cannot store {what}; use {' or '.join(keep)} to keep them")
    if alpha and not f.alpha:
        raise OutputError(f"{fmt} cannot store an alpha channel; use png, tiff or webp")
