r"""The distilled student: an ordinary (not blind-spot) residual UNet that learns noisy -> teacher output.

Blind-spot networks cannot see the pixel they denoise, so SDAP needs PD-2 plus a second full pass (E)
and 3.65 MMAC per pixel per pass. A student that sees every pixel can match the teacher's output
with a small fraction of that (AT-BSN(D), TM-BSN(D), Spatially-Adaptive SSID distil the same way).

Layout (``ch = (c1, c2, c3)``, ``blocks = (b1, b2, b3)``), every conv 3x3 with zero padding unless noted:

* ``PixelUnshuffle(2)``: (3, H, W) -> (12, H/2, W/2); the first level already works at half resolution,
  which keeps convolutions wide enough (c1 channels) for the CPU's vector units;
* level 1 (H/2): ``head`` conv 12 -> c1, ``b1`` residual blocks; level 2 (H/4): 2x2 stride-2 conv
  c1 -> c2, ``b2`` blocks; level 3 (H/8): 2x2 stride-2 conv c2 -> c3, ``b3`` blocks;
* decoder: 1x1 conv + ``PixelShuffle(2)`` up, added to the skip, ``b2`` (then ``b1``) blocks;
* ``tail`` conv c1 -> 12, ``PixelShuffle(2)``, plus the input: :math:`\hat x = y + g_\phi(y)`.

Noise-conditional (``cond_ch`` > 0, the one-pass student of ``sdap distill --condition``): the network is
also told the image's measured noise, ``cond_ch`` per-pixel maps (``inference.noise.NoiseEstimate.condition``:
the noise level function at each pixel's brightness per channel, and the correlations rho1 and rho2), which
go in beside the image: :math:`\hat x = y + g_\phi([y, m])`, ``head`` then takes (3 + cond_ch) x 4 channels
(as FFDNet and CBDNet condition a denoiser on a noise map).

A residual block is :math:`x + C(\mathrm{ReLU}(C(x)))`. Input and output range [0, 1] (unclamped).
H and W must be multiples of ``align`` = 8; ``receptive_radius`` bounds how far an output pixel sees, so
tiles with that margin and 8-aligned origins reproduce the whole-image result exactly.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .roles import STUDENT

__all__ = ["StudentUNet", "ResBlock"]


class ResBlock(nn.Module):
    r""":math:`x + C_{3\times3}(\mathrm{ReLU}(C_{3\times3}(x)))`."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(ch, ch, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout * 4, 1), nn.PixelShuffle(2))


class StudentUNet(nn.Module):
    """Three-level residual UNet behind a 2x pixel-unshuffle (see the module docstring).

    Example:
        >>> net = StudentUNet(ch=(8, 8, 8), blocks=(1, 1, 1))
        >>> net(torch.zeros(1, 3, 16, 24)).shape
        torch.Size([1, 3, 16, 24])
    """

    kind = "student"
    """Name of the network in weight-file metadata (``network``)."""
    role = STUDENT
    """A plain one-pass network distilled from a teacher: PD 1, no refinement (``roles.STUDENT``)."""
    align = 8
    """H and W (and tile origins) must be multiples of 8: three 2x down-samplings."""

    def __init__(self, in_ch: int = 3, ch: tuple[int, int, int] = (32, 64, 128),
                 blocks: tuple[int, int, int] = (1, 1, 2), cond_ch: int = 0) -> None:
        super().__init__()
        c1, c2, c3 = (int(c) for c in ch)
        b1, b2, b3 = (int(b) for b in blocks)
        self.arch = {"in_ch": int(in_ch), "ch": [c1, c2, c3], "blocks": [b1, b2, b3]}
        if cond_ch:
            self.arch["cond_ch"] = int(cond_ch)
        self.in_ch, self.cond_ch = in_ch, int(cond_ch)
        self.unshuffle = nn.PixelUnshuffle(2)
        self.head = nn.Conv2d((in_ch + self.cond_ch) * 4, c1, 3, padding=1)
        self.enc1 = nn.Sequential(*[ResBlock(c1) for _ in range(b1)])
        self.down1 = nn.Conv2d(c1, c2, 2, stride=2)
        self.enc2 = nn.Sequential(*[ResBlock(c2) for _ in range(b2)])
        self.down2 = nn.Conv2d(c2, c3, 2, stride=2)
        self.mid = nn.Sequential(*[ResBlock(c3) for _ in range(b3)])
        self.up2 = _up(c3, c2)
        self.dec2 = nn.Sequential(*[ResBlock(c2) for _ in range(b2)])
        self.up1 = _up(c2, c1)
        self.dec1 = nn.Sequential(*[ResBlock(c1) for _ in range(b1)])
        self.tail = nn.Conv2d(c1, in_ch * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        nn.init.zeros_(self.tail.weight)                 # starts as the identity: x_hat = y
        nn.init.zeros_(self.tail.bias)

    precise_layers = ()
    r"""Layers kept in float32 under bf16/fp16: none, since the output is :math:`y + g_\phi(y)` with the
    skip in the input's dtype (float32 from ``inference.Denoiser``), so only the small correction g carries
    the low precision's rounding (2^-9 of |g|), not the whole signal."""

    def forward(self, y: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The body runs in its weights' dtype; the residual add in ``y``'s (see ``precise_layers``).
        ``cond``: the ``(B, cond_ch, H, W)`` noise maps of a conditional network (required then)."""
        x = y if not self.cond_ch else torch.cat([y, cond.to(y.dtype)], dim=1)
        x1 = self.enc1(torch.relu(self.head(self.unshuffle(x.to(self.head.weight.dtype)))))
        x2 = self.enc2(self.down1(x1))
        x3 = self.mid(self.down2(x2))
        d2 = self.dec2(self.up2(x3) + x2)
        d1 = self.dec1(self.up1(d2) + x1)
        return y + self.shuffle(self.tail(d1)).to(y.dtype)

    @property
    def receptive_radius(self) -> int:
        """Upper bound, in input pixels, of how far an output pixel depends on the input.

        Each 3x3 conv at scale s (input pixels per feature pixel) reaches s further; the 2x2 stride-2
        downsamplings and the (un)shuffles reach at most one feature pixel of their scale.

        Example:
            >>> StudentUNet(ch=(8, 8, 8), blocks=(1, 2, 3)).receptive_radius
            118
        """
        b1, b2, b3 = self.arch["blocks"]
        r = 2 * (1 + 2 * b1 + 2 * b1 + 1)          # head, enc1, dec1, tail at scale 2 (+ unshuffle/shuffle)
        r += 4 * (1 + 2 * b2 + 2 * b2 + 1)         # down1, enc2, dec2, up1 at scale 4
        r += 8 * (1 + 2 * b3 + 1)                  # down2, mid, up2 at scale 8
        return r + 2

    @property
    def activation_bytes_per_pixel(self) -> float:
        """Estimated peak fp32 activation bytes per tile pixel (measured ~240 B/px at ch (32, 64, 128),
        half resolution; 300 with a margin, scaled with the first width)."""
        return 300 * self.arch["ch"][0] / 32

    def macs_per_pixel(self) -> float:
        """Multiply-accumulates per input pixel of one forward pass (convolutions only), counted with
        forward hooks on a 64x64 input: sum over convs of output elements x (C_in x k_h x k_w)."""
        total = [0]

        def hook(m: nn.Conv2d, inp, out) -> None:
            total[0] += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

        hs = [m.register_forward_hook(hook) for m in self.modules() if isinstance(m, nn.Conv2d)]
        try:
            with torch.no_grad():
                w = self.head.weight
                z = torch.zeros(1, self.in_ch, 64, 64, device=w.device, dtype=w.dtype)
                self(z, torch.zeros(1, self.cond_ch, 64, 64, device=w.device, dtype=w.dtype) if self.cond_ch else None)
        finally:
            for h in hs:
                h.remove()
        return total[0] / (64 * 64)
