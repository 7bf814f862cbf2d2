r"""DBSNl: the dilated blind-spot network used by AP-BSN (CVPR 2022) and SDAP (ICCV 2023).

Architecture as in AP-BSN ``src/model/DBSNl.py`` (SDAP ``model/DBSNl.py`` is the same network):
a 1x1 head, two parallel branches whose first layer is a centre-masked convolution (3x3 in branch 1,
5x5 in branch 2) followed by ``num_module`` residual blocks with dilation 2 / 3, and a 1x1 fusion tail.
The centre-masked first layer plus the matching dilations make every output pixel independent of the
input pixel at the same position (the blind spot).

Submodule names (``head``, ``branch1``, ``branch2``, ``body``, ``tail``, the ``mask`` buffer) are API: they
produce the state_dict keys of the official SDAP checkpoints.

Value range: any; SDAP's checkpoints expect [0, 1], AP-BSN's [0, 255] (see ``checkpoints.py``).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .fused import fused_conv, fusing, run_fused
from .roles import TEACHER

__all__ = ["CentralMaskedConv2d", "DCl", "DC_branchl", "DBSNl", "receptive_radius", "macs_per_pixel"]


class CentralMaskedConv2d(nn.Conv2d):
    r"""Convolution whose centre tap is zero: :math:`y = (W \odot M) * x + b`, :math:`M_{:,:,k/2,k/2} = 0`.

    Unlike the reference (``self.weight.data *= self.mask`` on every call) the mask is applied
    functionally, so ``forward`` has no side effect and works under ``torch.inference_mode`` and
    ``torch.compile``. The ``mask`` buffer keeps the official state_dict layout.

    Example:
        >>> conv = CentralMaskedConv2d(2, 2, kernel_size=3, padding=1)
        >>> float(conv.masked_weight().detach()[:, :, 1, 1].abs().sum())
        0.0
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        kh, kw = self.kernel_size
        mask = torch.ones_like(self.weight, requires_grad=False)
        mask[:, :, kh // 2, kw // 2] = 0
        self.register_buffer("mask", mask)

    def masked_weight(self) -> torch.Tensor:
        return self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.masked_weight(), self.bias)


class DCl(nn.Module):
    r"""Dilated residual block: :math:`x + C_{1\times1}(\mathrm{ReLU}(C_{3\times3,d}(x)))`, dilation d = stride."""

    def __init__(self, stride: int, in_ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, in_ch, kernel_size=3, stride=1, padding=stride, dilation=stride),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_ch, in_ch, kernel_size=1),
        )

    fuses = True
    """``forward(x, fused=True)`` runs the block as two fused convolutions (``fused.run_fused``)."""

    def forward(self, x: torch.Tensor, fused: bool = False) -> torch.Tensor:
        if fused:
            return fused_conv(self.body[2], fused_conv(self.body[0], x, relu=True), add=x)
        return x + self.body(x)


class DC_branchl(nn.Module):
    """One DBSNl branch: masked (2s-1)x(2s-1) conv, two 1x1 convs, ``num_module`` DCl blocks, 1x1 conv."""

    def __init__(self, stride: int, in_ch: int, num_module: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            CentralMaskedConv2d(in_ch, in_ch, kernel_size=2 * stride - 1, stride=1, padding=stride - 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_ch, in_ch, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_ch, in_ch, kernel_size=1),
            nn.ReLU(inplace=True),
        ]
        layers += [DCl(stride, in_ch) for _ in range(num_module)]
        layers += [nn.Conv2d(in_ch, in_ch, kernel_size=1), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, fused: bool = False) -> torch.Tensor:
        return run_fused(self.body, x) if fused else self.body(x)


class DBSNl(nn.Module):
    r"""Dilated blind-spot network :math:`f_\theta`, the denoiser of SDAP.

    Args:
        in_ch: input channels (3 for sRGB).
        out_ch: output channels.
        base_ch: width of the branches (128 in the paper; 3,656,131 parameters at the defaults).
        num_module: residual blocks per branch (9 in the paper).

    Shapes: ``(B, in_ch, H, W) -> (B, out_ch, H, W)``; no normalisation, no global residual.

    Example:
        >>> net = DBSNl(base_ch=8, num_module=1)
        >>> tuple(net(torch.zeros(1, 3, 9, 9)).shape)
        (1, 3, 9, 9)
    """

    kind = "dbsnl"
    """Name of the network in weight-file metadata (``network``)."""
    role = TEACHER
    """The blind-spot network SDAP trains: PD-f and a refinement at inference (``roles.TEACHER``)."""
    align = 1
    """Tile origins and padded sides are multiples of ``lcm(align, pd)``."""

    def __init__(self, in_ch: int = 3, out_ch: int = 3, base_ch: int = 128, num_module: int = 9) -> None:
        super().__init__()
        if base_ch % 2:
            raise ValueError(f"base_ch must be even, got {base_ch}")
        self.in_ch, self.out_ch, self.base_ch, self.num_module = in_ch, out_ch, base_ch, num_module
        self.head = nn.Sequential(nn.Conv2d(in_ch, base_ch, kernel_size=1), nn.ReLU(inplace=True))
        self.branch1 = DC_branchl(2, base_ch, num_module)
        self.branch2 = DC_branchl(3, base_ch, num_module)
        self.tail = nn.Sequential(
            nn.Conv2d(base_ch * 2, base_ch, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(base_ch, base_ch // 2, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(base_ch // 2, base_ch // 2, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(base_ch // 2, out_ch, kernel_size=1),
        )

    precise_layers = ("tail.6",)
    """Layers kept in float32 when the rest runs in bf16/fp16 (``inference.Denoiser``): the last 1x1 conv
    (base_ch/2 -> 3, 0.01 % of the MACs), so the output is not rounded to bf16's 8 bits (steps of 1/256
    in [0.5, 1), 128-256 codes of a 16-bit file)."""

    fused = False
    """Compute each convolution's ReLU or residual add inside it (``fused``; CPU inference only). Set by
    ``inference.Denoiser``; training, export and ``torch.compile`` use the plain layers (``fused.fusing``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Each part runs in its weights' dtype: the input is cast to the head's, the features to the last
        layer's (the same dtype in training, where autocast chooses)."""
        f = fusing(self.fused)
        x = x.to(self.head[0].weight.dtype)
        x = run_fused(self.head, x) if f else self.head(x)
        f = torch.cat([self.branch1(x, f), self.branch2(x, f)], dim=1) if f else \
            torch.cat([self.branch1(x), self.branch2(x)], dim=1)
        if fusing(self.fused):
            f = run_fused(self.tail[:-1], f)
        else:
            for layer in self.tail[:-1]:
                f = layer(f)
        last = self.tail[-1]
        return last(f.to(last.weight.dtype))

    @property
    def arch(self) -> dict:
        """Constructor arguments, stored in weight files so the network can be rebuilt."""
        return {"in_ch": self.in_ch, "out_ch": self.out_ch, "base_ch": self.base_ch, "num_module": self.num_module}

    @property
    def receptive_radius(self) -> int:
        """Receptive-field radius in input pixels (see :func:`receptive_radius`)."""
        return receptive_radius(self.num_module)

    def macs_per_pixel(self) -> int:
        """Multiply-accumulates per pixel of one pass (see :func:`macs_per_pixel`)."""
        return macs_per_pixel(self)

    @property
    def activation_bytes_per_pixel(self) -> float:
        """Estimated peak fp32 activation bytes per tile pixel of one pass (drives the automatic tile).

        Measured on CPU with inference_mode at base_ch 128: ~2,600 B/px fp32, with a margin; scaled
        linearly with the width.
        """
        return 3200 * self.base_ch / 128


def macs_per_pixel(model: nn.Module) -> int:
    r"""Multiply-accumulates per output pixel of one pass: :math:`\sum_{conv} C_{in} C_{out} k_h k_w / g`
    (all DBSNl convolutions run at the input resolution; masked centre taps are still computed).

    Example:
        >>> macs_per_pixel(DBSNl())
        3650112
    """
    return int(sum(m.in_channels * m.out_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups
                   for m in model.modules() if isinstance(m, nn.Conv2d)))


def receptive_radius(num_module: int) -> int:
    r"""Receptive-field radius of DBSNl in its input's pixels: :math:`\max(1 + 2M,\ 2 + 3M)` (29 for M = 9)."""
    return max(1 + 2 * num_module, 2 + 3 * num_module)
