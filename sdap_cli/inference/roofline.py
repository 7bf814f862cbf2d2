r"""This machine's convolution roofline: the best rate a lone 3x3 convolution reaches here, per precision.

A network cannot multiply faster than its fastest layer, so `sdap benchmark` reports every setting as a
fraction of this rate, measured in the same run (issue 25): a figure of 0.5 means the whole denoise,
tiling, noise maps, conversions and all, runs at half the speed of the best single convolution.

The rate of a 3x3 convolution, C -> C channels, stride 1, zero padding, on a ``(1, C, S, S)`` input in
the channels-last layout oneDNN and cuDNN prefer, is

.. math::
    r = \frac{9\,C^2 S^2}{t}\ \mathrm{MAC/s},

with t the fastest of ``runs`` timed calls after one untimed call (which builds the kernel). The shapes
(:data:`SHAPES`) cover the widths of the shipped networks (student 32/64/128, teacher 48/96) and the
paper's 128/256; the roofline is the best rate over them. 2-core AMD EPYC Zen 4 (AVX512-BF16), 2 threads:
about 200 GMAC/s in bf16 and 95 in fp32, reached at 128 channels (``benchmarks/roofline.py`` prints each
shape).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch

from .device import DTYPES

__all__ = ["SHAPES", "ConvRate", "conv_rate", "roofline"]

SHAPES: tuple[tuple[int, int], ...] = ((32, 512), (48, 512), (64, 512), (96, 256), (128, 256), (128, 512),
                                       (256, 256))
"""(channels, side) of the timed convolutions: the networks' widths at sides whose activations span the
sizes a tile's have (a few MB to 64 MB)."""


@dataclass
class ConvRate:
    """The rate of one convolution shape in one precision."""

    precision: str
    channels: int
    side: int
    gmac_per_s: float

    def to_dict(self) -> dict:
        return {**asdict(self), "gmac_per_s": round(self.gmac_per_s, 1)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def conv_rate(channels: int, side: int, precision: str, device: torch.device, runs: int = 3) -> ConvRate:
    """Time one C -> C 3x3 convolution on a ``(1, C, side, side)`` channels-last input (see the module)."""
    dtype = DTYPES[precision]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, channels, side, side, generator=gen).to(device, dtype)
    x = x.contiguous(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1).to(device, dtype).to(memory_format=torch.channels_last)
    conv(x)
    _sync(device)
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        conv(x)
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return ConvRate(precision, channels, side, 9 * channels * channels * side * side / best / 1e9)


def roofline(device: torch.device, precisions: list[str], runs: int = 3,
             shapes: tuple[tuple[int, int], ...] = SHAPES) -> tuple[dict[str, ConvRate], list[ConvRate]]:
    """The best :func:`conv_rate` over ``shapes`` for each precision, and every shape's rate."""
    rates = [conv_rate(c, s, p, device, runs) for p in dict.fromkeys(precisions) for c, s in shapes]
    best: dict[str, ConvRate] = {}
    for r in rates:
        if r.precision not in best or r.gmac_per_s > best[r.precision].gmac_per_s:
            best[r.precision] = r
    return best, rates
