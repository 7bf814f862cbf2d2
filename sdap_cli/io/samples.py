r"""File sample types <-> the networks' float scale, one tile at a time; the decoded image (:class:`Image`).

A decoded image stays in the sample type of its file (uint8, uint16, float16 or float32): a 400 MP
8-bit photo is 1.2 GB as read and would be 4.8 GB as float32. The denoiser converts each tile on the
way in (:func:`to_unit`) and each tile's result on the way out (:func:`from_unit`), so float copies of
the whole image are never made.

.. math::
    u = \mathrm{clip}(s / S, 0, 1), \qquad s' = \mathrm{round}(S\,\mathrm{clip}(u, 0, 1))

with :math:`S` = 255 (uint8), 65535 (uint16) or 1 (float; NaN reads as 0). ``from_unit`` to one channel
averages the three (a gray source comes back gray). Float results are stored unrounded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .metadata import Metadata

__all__ = ["scale_of", "to_unit", "from_unit", "unit_clip", "copy_samples", "SAMPLE_TYPES", "Image"]

SAMPLE_TYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float16), np.dtype(np.float32))


def scale_of(dtype: np.dtype) -> float:
    """S of a sample type: 255, 65535, or 1 for floats."""
    dtype = np.dtype(dtype)
    if dtype.kind == "u":
        return float(np.iinfo(dtype).max)
    return 1.0


def to_unit(samples: np.ndarray) -> np.ndarray:
    """Samples of any type in :data:`SAMPLE_TYPES` -> a new C-contiguous float32 array in [0, 1] (same
    shape), whatever the strides of ``samples`` (a Fortran-ordered .mat block, a caller's slice).

    Example:
        >>> to_unit(np.array([0, 255], np.uint8)).tolist(), to_unit(np.array([np.nan, 2.0], np.float32)).tolist()
        ([0.0, 1.0], [0.0, 1.0])
    """
    x = np.asarray(samples)
    if x.dtype.kind == "u":
        u = x.astype(np.float32, order="C")
        u /= np.float32(scale_of(x.dtype))
        return u
    out = np.array(x, dtype=np.float32, copy=True, order="C")
    return unit_clip(out)


def unit_clip(x: np.ndarray) -> np.ndarray:
    """Clip float ``x`` to [0, 1] in place, NaN to 0 (what ``nan_to_num`` then ``clip`` give, in two passes:
    ``fmax`` takes the number where one side is NaN).

    Example:
        >>> unit_clip(np.array([np.nan, -np.inf, np.inf, 0.5], np.float32)).tolist()
        [0.0, 0.0, 1.0, 0.5]
    """
    np.fmax(x, 0.0, out=x)
    return np.fmin(x, 1.0, out=x)


def from_unit(x: np.ndarray, dtype: np.dtype, channels: int | None = None, out: np.ndarray | None = None
              ) -> np.ndarray:
    """Float ``(H, W, C)`` (nominally [0, 1]; clipped, NaN as 0) -> samples of ``dtype``.

    Args:
        x: float array; it may be changed in place (it is a scratch copy for the callers).
        dtype: the target sample type.
        channels: 1 for a gray target (the mean of the channels), else None to keep them.
        out: where to write (``(H, W, channels or C)`` of ``dtype``); a new array when None.

    Example:
        >>> from_unit(np.array([[[0.5, 0.5, 0.5]]], np.float32), np.uint8, 1).tolist()
        [[[128]]]
    """
    x = unit_clip(np.asarray(x, dtype=np.float32))
    if channels == 1 and x.shape[-1] != 1:
        x = x.mean(axis=-1, keepdims=True)
    dtype = np.dtype(dtype)
    if dtype.kind == "u":
        x *= np.float32(scale_of(dtype))
        np.rint(x, out=x)
    if out is None:
        return x.astype(dtype, copy=False)
    out[...] = x            # casting float32 -> dtype (values already integral for integer types)
    return out


def copy_samples(image: np.ndarray, out: np.ndarray | None = None, band: int = 512) -> np.ndarray:
    """``image`` (H, W, 3) as ``from_unit(to_unit(image))`` into ``out`` (default float32 (H, W, 3)),
    ``band`` rows at a time: an unchanged image in the output's type without a float copy of it. For
    integer samples into the same type this is the identity.

    Example:
        >>> a = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
        >>> bool((copy_samples(a, np.empty_like(a)) == a).all())
        True
    """
    h = image.shape[0]
    if out is None:
        out = np.empty((h, image.shape[1], 3), np.float32)
    gray = 1 if out.shape[2] == 1 else None
    if out.dtype == image.dtype and out.dtype.kind == "u" and (gray is None or image.shape[2] == 1):
        np.copyto(out, image)                                   # the identity: no float round trip
        return out
    for r0 in range(0, h, band):
        from_unit(to_unit(image[r0:r0 + band]), out.dtype, gray, out=out[r0:r0 + band])
    return out


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
