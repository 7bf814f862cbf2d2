r"""Cyclic sample-difference loss of SDAP.

Given the p^2 RSG sub-samples :math:`y_1..y_{p^2}` of a noisy batch and the blind-spot network
:math:`f_\theta`, the output for sub-sample j is supervised by the next one, cyclically:

.. math:: \mathcal{L} = \sum_{j=1}^{p^2} \frac{1}{N} \lVert f_\theta(y_j) - y_{(j \bmod p^2) + 1} \rVert_1

i.e. a sum of p^2 mean-reduced L1 terms (not their average), as in SDAP ``train.py``.
"""

from __future__ import annotations

import torch

__all__ = ["cyclic_l1"]


def cyclic_l1(outputs: torch.Tensor, subs: torch.Tensor) -> torch.Tensor:
    """Cyclic L1 between ``outputs[j]`` and ``subs[(j + 1) % K]``.

    Args:
        outputs: network outputs ``(K, B, C, h, w)`` for the K sub-samples.
        subs: the sub-samples ``(K, B, C, h, w)`` (see :func:`sdap_cli.method.sampler.rsg_sample`).

    Returns:
        scalar: sum over j of the mean absolute difference.

    Example:
        >>> s = torch.arange(3.).view(3, 1, 1, 1, 1)
        >>> float(cyclic_l1(s, s))   # |0-1| + |1-2| + |2-0|
        4.0
    """
    target = torch.roll(subs, shifts=-1, dims=0)
    return (outputs.float() - target.float()).abs().flatten(1).mean(dim=1).sum()
