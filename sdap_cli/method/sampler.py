r"""RSG: Random Sub-samples Generation (SDAP, Pan et al., ICCV 2023).

Each image is cut into p x p cells (p = 5 in SDAP). For every cell of every image an independent,
uniformly random permutation :math:`\pi` of the :math:`p^2` positions is drawn, and sub-image k takes the
pixel at position :math:`\pi(k)` of each cell (all colour channels share it):

.. math:: y_k[b, c, i, j] = y[b, c, p i + \pi_{bij}(k) \,//\, p,\; p j + \pi_{bij}(k) \bmod p]

The :math:`p^2` sub-images therefore partition the image: every pixel is used exactly once.
Adapted in meaning from SDAP ``train.py::generate_mask_pair/generate_subimages`` (numpy loop over
cells, one boolean mask per sub-image); here one ``argsort`` of uniform noise draws all permutations
at once on the tensor's device.
"""

from __future__ import annotations

import torch

__all__ = ["rsg_permutations", "rsg_sample"]


def rsg_permutations(b: int, h: int, w: int, p: int, *, generator: torch.Generator | None = None,
                     device: torch.device | str | None = None) -> torch.Tensor:
    """Independent uniform permutations of the p*p cell positions: ``(B, h, w, p*p)`` int64."""
    noise = torch.rand(b, h, w, p * p, generator=generator, device=device)
    return noise.argsort(dim=-1)


def rsg_sample(y: torch.Tensor, p: int = 5, *, generator: torch.Generator | None = None,
               perm: torch.Tensor | None = None) -> torch.Tensor:
    """Split a batch into p*p random sub-images.

    Args:
        y: noisy batch ``(B, C, H, W)``, H and W multiples of p, any value range.
        p: cell size (the RSG stride factor).
        generator: torch RNG for the permutations (must live on ``y``'s device).
        perm: optional precomputed permutations ``(B, H/p, W/p, p*p)``.

    Returns:
        ``(p*p, B, C, H/p, W/p)``: sub-image k at cell (i, j) is the pixel at in-cell position
        ``perm[b, i, j, k]`` (row-major in the cell).

    Raises:
        ValueError: if H or W is not a multiple of p.

    Example:
        >>> subs = rsg_sample(torch.arange(25.).view(1, 1, 5, 5), 5)
        >>> sorted(subs.flatten().tolist()) == list(range(25))
        True
    """
    b, c, H, W = y.shape
    if H % p or W % p:
        raise ValueError(f"patch {H}x{W} is not a multiple of the RSG cell size {p}")
    h, w = H // p, W // p
    # cells[b, c, i, j, k] = y[b, c, p*i + k//p, p*j + k%p]
    cells = y.reshape(b, c, h, p, w, p).permute(0, 1, 2, 4, 3, 5).reshape(b, c, h, w, p * p)
    if perm is None:
        perm = rsg_permutations(b, h, w, p, generator=generator, device=y.device)
    subs = cells.gather(-1, perm.unsqueeze(1).expand(b, c, h, w, p * p))
    return subs.permute(4, 0, 1, 2, 3)
