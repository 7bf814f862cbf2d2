r"""Refinement modes after the PD-f pass, in one table: name -> margin, passes, function.

Given the noisy tile :math:`y` (``(1, C, H, W)``, [0, 1]) and the PD-f result :math:`\hat x`:

* ``none``: :math:`\hat x` itself (one pass);
* ``e`` (SDAP(E), "denoise twice"): :math:`\hat x_E = f_\theta(\hat x)`, a second full-resolution pass
  (SDAP ``test.py``);
* ``r3`` (AP-BSN's random-replacing refinement): for t = 1..T, replace a random fraction p of
  :math:`\hat x` by :math:`y`, run :math:`f_\theta` at full resolution (reflect-padded by 2), and average
  the T results. The masks come from a counter-based hash of absolute pixel coordinates, so they are
  identical tiled or not.

Each entry also says how much context (beyond the PD pass) a tile needs, as a function of the
network's receptive radius r, and how many network passes it costs (the benchmark's MAC count).
Adding a mode is adding one entry here; ``config.py`` lists the same names (a test checks they agree).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["Refinement", "REFINEMENTS", "R3_PAD", "r3_mask"]

R3_PAD = 2


def r3_mask(shape: tuple[int, int, int], y0: int, x0: int, t: int, p: float, seed: int,
            device: torch.device) -> torch.Tensor:
    """Bernoulli(p) mask ``(C, h, w)`` for R3 round t, a pure function of absolute coordinates.

    A 32-bit integer hash (lowbias32) of (seed, t, c, y, x) gives a uniform value per element, so
    tiles draw the same mask as the whole image.
    """
    c, h, w = shape
    cc = torch.arange(c, device=device, dtype=torch.int64).view(c, 1, 1)
    yy = torch.arange(y0, y0 + h, device=device, dtype=torch.int64).view(1, h, 1)
    xx = torch.arange(x0, x0 + w, device=device, dtype=torch.int64).view(1, 1, w)
    v = (((seed * 8191 + t) * 4 + cc) * 1_000_003 + yy) * 1_000_033 + xx
    m32 = 0xFFFFFFFF
    v = v & m32
    v = ((v ^ (v >> 16)) * 0x7FEB352D) & m32
    v = ((v ^ (v >> 15)) * 0x846CA68B) & m32
    v = v ^ (v >> 16)
    return (v.double() / 2**32) < p


def _none(den, y: torch.Tensor, x_hat: torch.Tensor, origin: tuple[int, int]) -> torch.Tensor:
    return x_hat


def _e(den, y: torch.Tensor, x_hat: torch.Tensor, origin: tuple[int, int]) -> torch.Tensor:
    return den.net(x_hat)


def _r3(den, y: torch.Tensor, x_hat: torch.Tensor, origin: tuple[int, int]) -> torch.Tensor:
    acc = torch.zeros_like(x_hat)
    for t in range(den.r3_t):
        m = r3_mask(tuple(y.shape[1:]), origin[0], origin[1], t, den.r3_p, den.seed, y.device)
        mixed = torch.where(m.unsqueeze(0), y.float(), x_hat)
        padded = F.pad(mixed, (R3_PAD,) * 4, mode="reflect")
        acc += den.net(padded)[..., R3_PAD:-R3_PAD, R3_PAD:-R3_PAD]
    return acc / den.r3_t


@dataclass(frozen=True)
class Refinement:
    """One refinement mode.

    Attributes:
        margin: extra context per tile side, in pixels, given the network's receptive radius r.
        passes: full-resolution network passes per image, PD pass included, given the denoiser
            (R3's depends on its T).
        apply: ``apply(den, y, x_hat, origin)`` -> the refined tile (float32, unclamped); ``den.net``
            runs the network, ``origin`` is the tile's top-left corner in the whole image.
    """

    margin: Callable[[int], int]
    passes: Callable[[object], int]
    apply: Callable[[object, torch.Tensor, torch.Tensor, tuple[int, int]], torch.Tensor]


REFINEMENTS: dict[str, Refinement] = {
    "none": Refinement(margin=lambda r: 0, passes=lambda den: 1, apply=_none),
    "e": Refinement(margin=lambda r: r, passes=lambda den: 2, apply=_e),
    "r3": Refinement(margin=lambda r: r + R3_PAD, passes=lambda den: 1 + den.r3_t, apply=_r3),
}
