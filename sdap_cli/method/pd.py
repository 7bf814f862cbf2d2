r"""Pixel-shuffle down-sampling (PD) and padding to a multiple of the PD factor.

PD with factor f moves the f*f phase-shifted sub-images of an image into the batch dimension:

.. math:: \mathrm{PD}_f(x)[b f^2 + f i + j, c, h, w] = x[b, c, f h + i, f w + j]

so that a blind-spot network sees a sub-sampled image whose spatially correlated real noise is closer
to independent (AP-BSN, CVPR 2022). ``pd_up`` is its exact inverse. Shapes: ``(B, C, H, W)`` with H and W
multiples of f  <->  ``(B f^2, C, H/f, W/f)``. Any value range.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["pd_down", "pd_up", "pad_to_multiple"]


def pd_down(x: torch.Tensor, f: int) -> torch.Tensor:
    """(B, C, H, W) -> (B*f*f, C, H/f, W/f).

    Raises:
        ValueError: if H or W is not a multiple of f.

    Example:
        >>> pd_down(torch.arange(16.).view(1, 1, 4, 4), 2)[1, 0].tolist()
        [[1.0, 3.0], [9.0, 11.0]]
    """
    if f == 1:
        return x
    b, c, h, w = x.shape
    if h % f or w % f:
        raise ValueError(f"image size {h}x{w} is not a multiple of the PD factor {f}")
    x = x.reshape(b, c, h // f, f, w // f, f).permute(0, 3, 5, 1, 2, 4)
    return x.reshape(b * f * f, c, h // f, w // f)


def pd_up(x: torch.Tensor, f: int) -> torch.Tensor:
    """Inverse of :func:`pd_down`: (B*f*f, C, h, w) -> (B, C, h*f, w*f).

    Example:
        >>> x = torch.rand(2, 3, 6, 8)
        >>> bool((pd_up(pd_down(x, 2), 2) == x).all())
        True
    """
    if f == 1:
        return x
    bff, c, h, w = x.shape
    if bff % (f * f):
        raise ValueError(f"batch {bff} is not a multiple of f*f = {f * f}")
    b = bff // (f * f)
    x = x.reshape(b, f, f, c, h, w).permute(0, 3, 4, 1, 5, 2)
    return x.reshape(b, c, h * f, w * f)


def pad_to_multiple(x: torch.Tensor, f: int, mode: str = "reflect") -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad bottom/right so H and W become multiples of f; returns the padded tensor and the original (H, W).

    Reflect padding needs a side of at least 2 pixels; 1-pixel sides fall back to replicate.

    Example:
        >>> y, hw = pad_to_multiple(torch.zeros(1, 3, 5, 7), 2)
        >>> tuple(y.shape), hw
        ((1, 3, 6, 8), (5, 7))
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % f, (-w) % f
    if ph == 0 and pw == 0:
        return x, (h, w)
    if mode == "reflect" and (h < 2 or w < 2 or ph >= h or pw >= w):
        mode = "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)
