"""The photographer's metadata (EXIF, ICC colour profile, XMP), read from an input and attached to its output.

Read with Pillow, which knows every container this package reads (JPEG, PNG, TIFF and TIFF-based RAW such as
DNG/NEF/CR2, WebP, HEIC with pillow-heif): no hand-written EXIF or ICC parser. Pillow writes the three
blocks back on every format it encodes (JPEG, WebP, HEIC). Two things it cannot do are done with exiv2's
Python binding ``pyexiv2`` (a maintained wheel with exiv2 inside, installed with sdap on Linux and Windows;
where it is missing, both are skipped and the rest works as before):

* write the EXIF sub-IFDs (exposure, lens, GPS) into a TIFF: neither Pillow's TIFF path nor tifffile can;
* read the EXIF of camera RAW files that are not plain TIFF (KDC, CR2, NEF, DNG with odd layouts).

Their EXIF is kept as exiv2 keys (``Metadata.exif_keys``: ``Exif.Image.Make``, ``Exif.Photo.ExposureTime``,
``Exif.GPSInfo.*``, ...) and written after encoding (``write_exif_keys``) into TIFF outputs, and into every
output of a RAW source. A RAW source is rendered to sRGB (``images._decode_raw``), so its outputs also carry
an sRGB ICC profile (``srgb_profile``, made by Pillow's LittleCMS).

The pixel path (``images.py``) stays as it is; this module only adds the blocks:

* JPEG, WebP, HEIC: handed to Pillow's encoder (``pillow_kwargs``).
* PNG: the standard ``iCCP``, ``eXIf`` and ``iTXt`` (XML:com.adobe.xmp) chunks written after ``IHDR`` of the
  encoder's bytes (``png_with_metadata``; the pixels' bytes are untouched).
* TIFF: the ICC profile (tag 34675), XMP (700) and the descriptive base-IFD EXIF tags (Make, Model, DateTime,
  Artist, Copyright, ImageDescription, Software, Orientation) as tifffile tags (``tiff_kwargs``). tifffile
  cannot write the EXIF sub-IFD, so exposure, lens and GPS tags do not reach TIFF outputs.
* BMP: nothing (the format has no place for them).

The EXIF kept is the base IFD's descriptive tags plus the Exif and GPS sub-IFDs, never the source's own
layout tags (strips, sizes, compression of a TIFF) nor its thumbnail. When the reader rotated the pixels
(JPEG and HEIC: the decoder applies the orientation), the written Orientation tag is 1.
"""

from __future__ import annotations

import io
import zlib
from contextlib import contextmanager
from dataclasses import dataclass

# Base-IFD EXIF tags that describe the photo, not the file's layout.
DESCRIPTIVE = {270: "ImageDescription", 271: "Make", 272: "Model", 274: "Orientation", 305: "Software",
               306: "DateTime", 315: "Artist", 33432: "Copyright"}
EXIF_IFD, GPS_IFD, ORIENTATION = 0x8769, 0x8825, 274


@dataclass(frozen=True)
class Metadata:
    """Metadata blocks of an image, each None when absent.

    Attributes:
        exif: Pillow's EXIF bytes (``b'Exif\\0\\0'`` + TIFF structure), descriptive tags only.
        icc: the ICC colour profile.
        xmp: the XMP packet (UTF-8 XML).
        tags: the descriptive base-IFD tags as ``{tag: value}`` (for TIFF outputs).
    """

    exif: bytes | None = None
    icc: bytes | None = None
    xmp: bytes | None = None
    tags: tuple = ()
    exif_keys: tuple = ()
    """(exiv2 key, value) pairs of the descriptive EXIF, sub-IFDs included (``read_exif_keys``)."""
    raw: bool = False
    """From a camera RAW file: Pillow did not carry its EXIF, so every output gets ``exif_keys``."""

    def __bool__(self) -> bool:
        return bool(self.exif or self.icc or self.xmp or self.exif_keys)


@contextmanager
def open_header(data: bytes):
    """Pillow's lazy open of encoded bytes (headers and metadata only; no pixels are decoded), with
    Pillow's decompression-bomb limit off: sdap never decodes pixels through it, and the size of an
    image is checked against the memory available (``inference/memory.py``) instead."""
    from PIL import Image

    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
    except ImportError:
        pass
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(io.BytesIO(data)) as im:
            yield im
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def png_may_hold_exif(data: bytes) -> bool:
    r"""Whether a PNG has a chunk that can carry EXIF: ``eXIf``, or a text chunk (``tEXt``, ``zTXt``,
    ``iTXt``) whose keyword mentions exif (ImageMagick's "Raw profile type exif"). Reads the chunk headers
    only; a file that is not a well-formed PNG answers True (let Pillow decide).

    Example:
        >>> import struct, zlib
        >>> chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
        >>> png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", bytes(13)) + chunk(b"IDAT", b"x") + chunk(b"IEND", b"")
        >>> png_may_hold_exif(png), png_may_hold_exif(png[:-12] + chunk(b"eXIf", b"MM") + png[-12:])
        (False, True)
    """
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return True
    at, n = 8, len(data)
    while at + 8 <= n:
        length = int.from_bytes(data[at:at + 4], "big")
        kind = data[at + 4:at + 8]
        if kind == b"eXIf" or (kind in (b"tEXt", b"zTXt", b"iTXt") and b"exif" in data[at + 8:at + 8 + 80].lower()):
            return True
        if kind == b"IEND":
            return False
        at += 12 + length
    return True


def _written_by_tifffile(tag: int, value: object) -> bool:
    """tifffile's own JSON description and Software tag: file layout, not the photographer's data."""
    return isinstance(value, str) and ((tag == 270 and value.startswith('{"shape"')) or
                                       (tag == 305 and value.startswith("tifffile")))


def read_metadata(data: bytes, rotated: bool = False, raw: bool = False) -> Metadata:
    """The EXIF, ICC profile and XMP of an encoded image (empty :class:`Metadata` if none or unreadable),
    and its EXIF as exiv2 keys (``read_exif_keys``; only where Pillow found EXIF or could not read the
    file: exiv2 copies the whole file, which images without EXIF need not pay for).

    Args:
        data: the file's bytes.
        rotated: the pixels were turned upright on reading, so the Orientation written is 1.
        raw: a camera RAW file rendered to sRGB: its EXIF comes from exiv2 only, its ICC profile is sRGB's.
    """
    from PIL import Image

    if raw:
        return Metadata(icc=srgb_profile(), exif_keys=read_exif_keys(data, rotated=True), raw=True)
    try:
        with open_header(data) as im:
            icc = im.info.get("icc_profile") or None
            xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp") or None
            # Pillow looks for a PNG's EXIF after the pixel data by decoding them all; skip that when no
            # chunk can hold EXIF (0.28 s of a 12 MP PNG)
            src = im.getexif() if im.format != "PNG" or png_may_hold_exif(data) else Image.Exif()
            exif = Image.Exif()
            for tag in DESCRIPTIVE:
                if tag in src and not _written_by_tifffile(tag, src[tag]):
                    exif[tag] = src[tag]
            for ifd in (EXIF_IFD, GPS_IFD):
                sub = dict(src.get_ifd(ifd)) if ifd in src else {}
                if sub:
                    exif[ifd] = sub
    except Exception:  # noqa: BLE001 - metadata is best effort: never fail an image over it
        return _tiff_metadata(data, read_exif_keys(data, rotated))
    if rotated and ORIENTATION in exif:
        exif[ORIENTATION] = 1
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    tags = tuple((t, exif[t]) for t in DESCRIPTIVE if t in exif)
    keys = read_exif_keys(data, rotated) if len(exif) else ()
    return Metadata(exif=exif.tobytes() if len(exif) else None, icc=icc, xmp=xmp, tags=tags, exif_keys=keys)


# Exif.Image.* keys that describe the photo (TIFF/EP writes exposure data there too), not the file's layout.
IMAGE_KEYS = frozenset({"Make", "Model", "DateTime", "Artist", "Copyright", "ImageDescription", "ExposureTime",
                        "FNumber", "ExposureProgram", "ISOSpeedRatings", "DateTimeOriginal", "FocalLength",
                        "LensInfo", "Orientation"})
# formats exiv2 writes EXIF into (HEIC and BMP: not)
EXIV2_FORMATS = frozenset({"tiff", "jpeg", "png", "webp"})


def _pyexiv2():
    """The pyexiv2 module, quiet, or None where it is not installed."""
    try:
        import pyexiv2
    except Exception:  # noqa: BLE001 - ImportError, or a wheel whose library fails to load
        return None
    pyexiv2.set_log_level(4)
    return pyexiv2


def read_exif_keys(data: bytes, rotated: bool = False) -> tuple:
    """The descriptive EXIF of an encoded image as (exiv2 key, value) pairs: ``Exif.Photo.*`` (but the
    maker note, whose offsets do not survive a rewrite), ``Exif.GPSInfo.*`` and the ``IMAGE_KEYS`` of
    ``Exif.Image``; empty values left out; Orientation left out when ``rotated``. () without pyexiv2 or
    when exiv2 cannot read the file."""
    exiv2 = _pyexiv2()
    if exiv2 is None:
        return ()
    try:
        img = exiv2.ImageData(data)
        try:
            exif = img.read_exif()
        finally:
            img.close()
    except Exception:  # noqa: BLE001 - metadata is best effort
        return ()
    keep = []
    for key, value in exif.items():
        parts = key.split(".")
        if len(parts) != 3 or not isinstance(value, str) or not value.strip():
            continue
        group, tag = parts[1], parts[2]
        if (group == "Photo" and tag != "MakerNote") or group == "GPSInfo" or (
                group == "Image" and tag in IMAGE_KEYS and not (rotated and tag == "Orientation")):
            keep.append((key, value))
    return tuple(keep)


def needs_exif_keys(meta: Metadata | None, fmt: str) -> bool:
    """Whether an output of format ``fmt`` gets ``meta.exif_keys`` written by exiv2 after encoding: TIFF
    (its EXIF sub-IFDs), and every format exiv2 writes for a RAW source."""
    return bool(meta and meta.exif_keys and fmt in EXIV2_FORMATS and (fmt == "tiff" or meta.raw)
                and _pyexiv2() is not None)


def write_exif_keys(target: str | bytes, meta: Metadata) -> bytes | None:
    """Write ``meta.exif_keys`` into the file at path ``target`` (returns None), or into the encoded
    image ``target`` (returns the new bytes). Keys exiv2 refuses are skipped one by one. exiv2 keeps an
    XMP packet already in the file by parsing and re-serialising it (same properties, other bytes)."""
    exiv2 = _pyexiv2()
    img = exiv2.ImageData(target) if isinstance(target, bytes) else exiv2.Image(target)
    try:
        keys = dict(meta.exif_keys)
        try:
            img.modify_exif(keys)
        except Exception:  # noqa: BLE001 - one odd value: write the others
            for k, v in keys.items():
                try:
                    img.modify_exif({k: v})
                except Exception:  # noqa: BLE001
                    pass
        return img.get_bytes() if isinstance(target, bytes) else None
    finally:
        img.close()


def srgb_profile() -> bytes:
    """An sRGB ICC profile (Pillow's LittleCMS ``createProfile('sRGB')``), for RAW renders."""
    global _SRGB
    if _SRGB is None:
        from PIL import ImageCms

        _SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return _SRGB


_SRGB: bytes | None = None


def _tiff_metadata(data: bytes, keys: tuple) -> Metadata:
    """The ICC profile, XMP and descriptive tags of a TIFF Pillow cannot open (float16 samples, odd
    layouts), read by tifffile; empty :class:`Metadata` (but ``keys``) for anything else."""
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            t = tif.pages[0].tags
            icc, xmp = (t[k].value if k in t else None for k in (34675, 700))
            tags = tuple((k, t[k].value) for k in DESCRIPTIVE if k in t and isinstance(t[k].value, (str, int))
                         and not _written_by_tifffile(k, t[k].value))
    except Exception:  # noqa: BLE001
        return Metadata(exif_keys=keys)
    return Metadata(icc=bytes(icc) if icc is not None else None, xmp=bytes(xmp) if xmp is not None else None,
                    tags=tags, exif_keys=keys)


def pillow_kwargs(meta: Metadata | None) -> dict:
    """Keyword arguments of Pillow's ``save`` (JPEG, WebP, HEIC) that write ``meta``."""
    if not meta:
        return {}
    kw = {"exif": meta.exif, "icc_profile": meta.icc, "xmp": meta.xmp}
    return {k: v for k, v in kw.items() if v}


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, body and the CRC-32 of type and body."""
    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


def png_with_metadata(png: bytes, meta: Metadata | None) -> bytes:
    """``png`` with ``iCCP``, ``eXIf`` and ``iTXt`` XMP chunks after its ``IHDR`` (the PNG spec's places);
    ``png`` itself when ``meta`` is empty."""
    return b"".join(png_parts(png, meta))


def png_parts(png, meta: Metadata | None) -> list:
    """:func:`png_with_metadata` as pieces to write one after the other (views of ``png``, a bytes-like
    buffer, so a large encoded image is not copied)."""
    png = memoryview(png).cast("B")
    if not meta:
        return [png]
    end = 8 + 8 + int.from_bytes(png[8:12], "big") + 4  # signature, then IHDR (length, type, data, CRC)
    extra = b""
    if meta.icc:
        extra += png_chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(meta.icc))
    if meta.exif:
        extra += png_chunk(b"eXIf", meta.exif[6:] if meta.exif.startswith(b"Exif\0\0") else meta.exif)
    if meta.xmp:
        extra += png_chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + meta.xmp)
    return [png[:end], extra, png[end:]]


def tiff_kwargs(meta: Metadata | None) -> dict:
    """Keyword arguments of ``tifffile.imwrite`` that write ``meta``'s ICC profile, XMP and descriptive EXIF
    tags (the EXIF sub-IFDs are not written: tifffile has no way to)."""
    if not meta:
        return {}
    extra, kw = [], {}
    named = {270: "description", 305: "software", 306: "datetime"}  # tags tifffile writes itself
    for tag, value in meta.tags:
        if tag == ORIENTATION:
            extra.append((tag, "H", 1, int(value), True))
        elif tag in named and isinstance(value, str):
            kw[named[tag]] = value
            if tag == 270:
                kw["metadata"] = None  # else tifffile writes its own JSON description
        elif isinstance(value, str):
            extra.append((tag, "s", 0, value, True))
    if meta.xmp:
        extra.append((700, "B", len(meta.xmp), meta.xmp, True))
    if extra:
        kw["extratags"] = extra
    if meta.icc:
        kw["iccprofile"] = meta.icc
    return kw
