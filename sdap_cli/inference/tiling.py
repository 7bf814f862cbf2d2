r"""Tiling geometry: how much context a tile needs, where tiles go, and how large they may be.

Tiles overlap by a margin of at least the pipeline's receptive radius (:func:`tile_margin`) and start on
multiples of the PD factor (and of the network's alignment), so each tile's core is computed exactly as
in the whole image and the cores, stitched without blending, give the whole-image result.
"""

from __future__ import annotations

import math

from collections.abc import Callable

import numpy as np

from ..io.samples import from_unit, to_unit
from .memory import TILE_BUDGET, available_memory, cuda_free_memory

__all__ = ["tile_margin", "required_margin", "tile_boxes", "padded_window", "auto_tile", "fit_tile", "run_tiles", "tile_shape",
           "MIN_CORE"]

MIN_CORE = 64
"""The core (the part of a tile it is kept for) of a tile raised because it could not hold its overlap: the
smallest valid one, twice the overlap plus 2 pixels, would be correct but slow (one tile per 2 pixels)."""


def tile_margin(radius: int, pd: int, refine: str, align: int) -> int:
    r"""Context a tile needs on each side: :math:`r f` for the PD-f pass plus the refinement's margin
    (``refine.REFINEMENTS``: 0 for none, :math:`r` for E, :math:`r + 2` for R3; r = the network's
    receptive radius), rounded up to a multiple of the tile alignment.

    Example:
        >>> tile_margin(29, 2, "none", 2), tile_margin(29, 2, "e", 2)
        (58, 88)
    """
    extra = 0
    if refine != "none":            # the table imports torch; 'none' adds nothing (the torch-free runtime path)
        from ..method.refine import REFINEMENTS

        extra = REFINEMENTS[refine].margin(radius)
    m = radius * pd + extra
    return int(math.ceil(m / align) * align)


def required_margin(num_module: int, pd: int, refine: str) -> int:
    r""":func:`tile_margin` of a DBSNl with ``num_module`` blocks per branch (tiles aligned to f).

    Example:
        >>> required_margin(9, 2, "none"), required_margin(9, 2, "e")
        (58, 88)
    """
    from ..method.dbsnl import receptive_radius

    return tile_margin(receptive_radius(num_module), pd, refine, pd)


def tile_boxes(h: int, w: int, tile: int, margin: int, f: int) -> list[tuple[tuple[int, int, int, int],
                                                                          tuple[int, int, int, int]]]:
    """Cover an (h, w) image (multiples of f) with tiles of side <= ``tile``, all of one shape.

    Returns ``[(tile_box, core_box), ...]`` with boxes ``(y0, y1, x0, x1)``; cores partition the image,
    each tile holds its core grown by ``margin`` (clipped to the image) and all corners are multiples of
    f. Along each axis the image is split into the fewest cores that fit (``ceil(n / (tile - 2 margin))``)
    of equal size (up to rounding to f), and every tile is ``core + 2 margin`` long: tiles at the border
    slide inwards instead of shrinking. So compiled graphs, CUDA graphs and cuDNN's autotuner see one
    input shape per image, at the cost of one margin of extra work per border tile.

    Example:
        >>> len(tile_boxes(100, 100, 100, 10, 2)), len(tile_boxes(100, 100, 60, 10, 2))
        (1, 9)
        >>> {(t[1] - t[0], t[3] - t[2]) for t, _ in tile_boxes(100, 90, 60, 10, 2)}
        {(54, 50)}
    """
    if h <= tile and w <= tile:
        return [((0, h, 0, w), (0, h, 0, w))]
    core_max = (tile - 2 * margin) // f * f
    if core_max < f:
        raise ValueError(f"tile {tile} is too small for the overlap {margin}: need tile > {2 * margin + f}")

    def split(n: int) -> tuple[int, int]:               # (core, tile length) along one axis
        if n <= tile:
            return n, n
        parts = -(-n // core_max)
        core = -(-n // (parts * f)) * f
        return core, min(core + 2 * margin, n)

    (core_y, th), (core_x, tw) = split(h), split(w)
    boxes = []
    for cy in range(0, h, core_y):
        for cx in range(0, w, core_x):
            cb = (cy, min(cy + core_y, h), cx, min(cx + core_x, w))
            y0 = min(max(cy - margin, 0), h - th)
            x0 = min(max(cx - margin, 0), w - tw)
            boxes.append(((y0, y0 + th, x0, x0 + tw), cb))
    return boxes


def padded_window(image: np.ndarray, y0: int, y1: int, x0: int, x1: int, f: int) -> np.ndarray:
    """Rows y0:y1 and columns x0:x1 of ``image`` padded at the bottom/right to a multiple of f, as
    ``pd.pad_to_multiple`` pads the whole image (reflect; replicate where a side is too short to
    reflect), without padding, copying or converting the rest of it.

    Example:
        >>> padded_window(np.arange(10).reshape(5, 2, 1), 2, 6, 0, 2, 2)[:, 0, 0].tolist()
        [4, 6, 8, 6]
    """
    h, w = image.shape[:2]
    ph, pw = (-h) % f, (-w) % f
    if y1 <= h and x1 <= w:
        return image[y0:y1, x0:x1]
    reflect = not (h < 2 or w < 2 or ph >= h or pw >= w)

    def index(a: int, b: int, n: int) -> np.ndarray:
        i = np.arange(a, b)
        return np.where(i < n, i, 2 * (n - 1) - i if reflect else n - 1)

    return image[index(y0, y1, h)[:, None], index(x0, x1, w)[None, :]]


def auto_tile(device, bytes_per_pixel: float, margin: int, f: int) -> int:
    """Largest tile side whose activations (``bytes_per_pixel`` per tile pixel) fit the budget: half of what
    the CUDA allocator can give (``memory.cuda_free_memory``: free plus reserved but unused, so the tile
    does not shrink from the second image on); on CPU a quarter of the memory this process can still use
    (``memory.available_memory``), at most ``memory.TILE_BUDGET`` (1 GiB, which keeps a 24 MP photo under
    2 GiB of RSS at a few percent of extra overlap work). Clamped to [max(256, 2*margin + 64), 2048] and
    rounded to a multiple of f. ``device``: a torch device, or 'cpu'."""
    if getattr(device, "type", device) == "cuda":
        budget = cuda_free_memory(device) / 2
    else:
        free = available_memory()
        budget = min((free if free is not None else 8 << 30) / 4, TILE_BUDGET)
    side = int(math.sqrt(budget / bytes_per_pixel))
    lo = max(256, 2 * margin + 64)
    side = max(lo, min(side, 2048))
    return side // f * f


def tile_shape(h: int, w: int, tile: int, margin: int, f: int) -> tuple[int, int]:
    """The shape every tile of an h x w image has (:func:`tile_boxes` after padding to a multiple of f).

    Example:
        >>> tile_shape(3000, 4000, 2048, 72, 8)
        (1648, 1480)
    """
    (y0, y1, x0, x1), _ = tile_boxes(-(-h // f) * f, -(-w // f) * f, tile, margin, f)[0]
    return y1 - y0, x1 - x0


def fit_tile(tile: int, margin: int, post_halo: int, f: int) -> tuple[int, int]:
    """The overlap and tile side a tiled denoise uses: ``margin + post_halo`` rounded up to a multiple of f,
    and ``tile`` raised to twice that plus ``MIN_CORE`` when it cannot hold it (the result does not depend
    on the tile side).

    Example:
        >>> fit_tile(100, 72, 3, 8), fit_tile(1024, 72, 3, 8)
        ((80, 224), (80, 1024))
    """
    margin = -(-(margin + post_halo) // f) * f
    if tile < 2 * margin + 2 * f:                  # no room for a core: make room (tiled == whole anyway)
        tile = 2 * margin + MIN_CORE
    return margin, tile


def run_tiles(image: np.ndarray, out: np.ndarray, tile: int, margin: int, f: int,
              forward: Callable[[np.ndarray, tuple[int, int]], np.ndarray], strength: float = 1.0,
              post: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
              on_tile: Callable[[int, int], None] | None = None) -> None:
    r"""Denoise ``image`` ``(H, W, 3)`` into ``out`` tile by tile, whatever runs the network.

    Each tile (:func:`tile_boxes`, read with :func:`padded_window` and converted on its own,
    ``samples.to_unit``) goes through ``forward(y, origin) -> x`` (``(h, w, 3)`` float32 in [0, 1], the
    tile's denoised samples clamped), is cut to the image, blended with the input by the strength s
    (:math:`y + s\,(x - y)`), passed through ``post(y, x)`` and its core written into ``out`` in ``out``'s
    sample type (``samples.from_unit``; one channel: the channel mean). ``on_tile(done, total)`` after each.
    Shared by ``Denoiser`` (torch) and ``runtime.RuntimeDenoiser`` (ONNX Runtime), so both tile alike.
    """
    h0, w0 = image.shape[:2]
    H, W = -(-h0 // f) * f, -(-w0 // f) * f
    boxes = tile_boxes(H, W, tile, margin, f)
    gray = 1 if out.shape[2] == 1 else None
    for i, ((ty0, ty1, tx0, tx1), (cy0, cy1, cx0, cx1)) in enumerate(boxes):
        y = to_unit(padded_window(image, ty0, ty1, tx0, tx1, f))
        d = forward(y, (ty0, tx0))
        vh, vw = min(ty1, h0) - ty0, min(tx1, w0) - tx0         # the part of the tile inside the image
        x = d[:vh, :vw]
        y = y[:vh, :vw]
        if strength != 1.0:                                     # y + s (x_hat - y), in place
            x = np.ascontiguousarray(x)
            np.subtract(x, y, out=x)
            x *= strength
            np.add(x, y, out=x)
        if post is not None:
            x = post(y, np.ascontiguousarray(x))
        cy1, cx1 = min(cy1, h0), min(cx1, w0)
        core = x[cy0 - ty0:cy1 - ty0, cx0 - tx0:cx1 - tx0]
        if core.size:               # x is this tile's scratch: converted in place
            from_unit(core, out.dtype, gray, out=out[cy0:cy1, cx0:cx1])
        if on_tile is not None:
            on_tile(i + 1, len(boxes))
