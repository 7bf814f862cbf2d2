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

Inference fast path (``forward_hwc``, what ``inference.Denoiser`` runs): the same function on an ``(H, W, 3)``
image in the layout it is decoded in, with the pixel-unshuffle, the concatenation with the noise maps and the
cast done as one strided copy into the head's channels-last input, the pixel-shuffle and the residual add as
one strided add into ``(H, W, 3)``, and on the CPU (``fused``) each convolution's ReLU or residual add
computed inside oneDNN's convolution (``torch.ops.mkldnn._convolution_pointwise``) instead of as a separate
pass over memory; ``benchmarks/student_layers.py`` times each part.
H and W must be multiples of ``align`` = 8; ``receptive_radius`` bounds how far an output pixel sees, so
tiles with that margin and 8-aligned origins reproduce the whole-image result exactly.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .fused import fused_conv, fusing
from .roles import STUDENT

__all__ = ["StudentUNet", "ResBlock", "cells_last_order"]


def cells_last_order(c: int) -> torch.Tensor:
    """For the ``4 c`` channels that ``PixelShuffle(2)`` turns into ``c`` channels at twice the size, in the
    order (i, j, channel) with the channel innermost, each one's index in PixelShuffle's order ``k * 4 + 2 i + j``.

    Example:
        >>> cells_last_order(2).tolist()
        [0, 4, 1, 5, 2, 6, 3, 7]
    """
    return torch.tensor([k * 4 + 2 * i + j for i in range(2) for j in range(2) for k in range(c)])


class ResBlock(nn.Module):
    r""":math:`x + C_{3\times3}(\mathrm{ReLU}(C_{3\times3}(x)))`."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(ch, ch, 3, padding=1))

    def forward(self, x: torch.Tensor, fused: bool = False) -> torch.Tensor:
        if fused:
            return fused_conv(self.body[2], fused_conv(self.body[0], x, relu=True), add=x)
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

    fused = False
    """Compute each convolution's ReLU or residual add inside it (``fused.fused_conv``; CPU inference only,
    ``fused.can_fuse``). ``inference.Denoiser`` sets it; training, export and ``torch.compile`` use the
    plain layers (``fused.fusing``)."""

    def forward(self, y: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The body runs in its weights' dtype; the residual add in ``y``'s (see ``precise_layers``).
        ``cond``: the ``(B, cond_ch, H, W)`` noise maps of a conditional network (required then)."""
        return y + self.correction(y, cond).to(y.dtype)

    def correction(self, y: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        r""":math:`g_\phi(y)`, what :meth:`forward` adds to ``y``: ``(B, 3, H, W)`` in the body's dtype (a runtime
        that computes in bf16 adds it to ``y`` in float32 itself, ``inference.runtime``)."""
        x = y if not self.cond_ch else torch.cat([y, cond.to(y.dtype)], dim=1)
        return self.shuffle(self.body(self.unshuffle(x.to(self.head.weight.dtype))))

    def body(self, x: torch.Tensor, head: torch.Tensor | None = None, cells_last: bool = False) -> torch.Tensor:
        r"""The UNet between the pixel-unshuffle and the pixel-shuffle: ``(B, (3 + cond_ch) 4, H/2, W/2)`` ->
        ``(B, 12, H/2, W/2)``, the correction :math:`g_\phi` before the shuffle. ``head``: the head's
        weights with their input channels permuted to ``x``'s order (:meth:`forward_hwc`). ``cells_last``
        (inference, channels-last ``x``): each up-sampling writes into its skip (:meth:`_up_into`) and the
        result's 12 channels come in the order (i, j, c) of :func:`cells_last_order`, not PixelShuffle's."""
        f = fusing(self.fused)

        def blocks(seq: nn.Sequential, h: torch.Tensor) -> torch.Tensor:
            for block in seq:
                h = block(h, f)
            return h

        hw = self.head.weight if head is None else head
        x1 = blocks(self.enc1, fused_conv(self.head, x, relu=True, weight=hw) if f else
                    torch.relu(self.head(x) if head is None else F.conv2d(x, hw, self.head.bias, padding=1)))
        x2 = blocks(self.enc2, self.down1(x1))
        x3 = blocks(self.mid, self.down2(x2))
        if not cells_last:
            d2 = blocks(self.dec2, self.up2(x3) + x2)
            d1 = blocks(self.dec1, self.up1(d2) + x1)
            return self.tail(d1)
        d2 = blocks(self.dec2, self._up_into(self.up2, x3, x2, f))
        d1 = blocks(self.dec1, self._up_into(self.up1, d2, x1, f))
        order = cells_last_order(self.in_ch).to(x.device)
        return F.conv2d(d1, self.tail.weight[order], self.tail.bias[order], padding=1)

    @staticmethod
    def _up_into(up: nn.Sequential, x: torch.Tensor, skip: torch.Tensor, f: bool) -> torch.Tensor:
        r"""``skip + up(x)`` (1x1 conv, PixelShuffle(2)), written into ``skip`` (both channels last). The
        conv's output channels are permuted to :func:`cells_last_order`, so the shuffle is a view with the
        channels innermost and the add one pass over memory."""
        if not (x.is_contiguous(memory_format=torch.channels_last)
                and skip.is_contiguous(memory_format=torch.channels_last)):
            return up(x) + skip
        conv = up[0]
        c = conv.out_channels // 4
        order = cells_last_order(c).to(x.device)
        w, b = conv.weight[order], conv.bias[order]
        u = fused_conv(conv, x, weight=w, bias=b) if f else F.conv2d(x, w, b)
        n, _, h, wd = u.shape
        cells = u.permute(0, 2, 3, 1).reshape(n, h, wd, 2, 2, c).permute(0, 1, 3, 2, 4, 5)  # (n, h, i, w, j, c)
        skip.permute(0, 2, 3, 1).view(n, h, 2, wd, 2, c).add_(cells)
        return skip

    def forward_hwc(self, y: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        r""":meth:`forward` of one image in its decoded layout: ``y`` ``(H, W, 3)`` float32 (H, W even),
        ``cond`` ``(H, W, cond_ch)`` (conditional networks) -> :math:`\hat x` ``(H, W, 3)`` float32, the same
        function.

        The head's input is built by one strided copy per source, in the order the memory already has: for
        each 2x2 cell and each of its rows i = 0, 1, the row's two pixels of ``y`` (j, c), then the same two
        pixels of ``cond`` (j, k), cast to the body's dtype; the head's weights are permuted to that order
        (:meth:`hwc_channels`), so it computes what the unshuffled concatenation would. The body's output
        comes in (i, j, c) order (``cells_last``), so the shuffle + residual add is one add of contiguous
        runs into ``(H, W, 3)``.
        """
        h, w, _ = y.shape
        y = y.contiguous()                          # the views below need it (a no-op on decoded tiles)
        parts = [y] if not self.cond_ch else [y, cond.contiguous()]
        c = sum(p.shape[2] for p in parts)
        x = torch.empty(h // 2, w // 2, 2, 2 * c, dtype=self.head.weight.dtype, device=y.device)
        at = 0
        for p in parts:
            k = 2 * p.shape[2]
            x[..., at:at + k].copy_(p.view(h // 2, 2, w // 2, k).permute(0, 2, 1, 3))
            at += k
        head = self.head.weight[:, self.hwc_channels().to(self.head.weight.device)]
        x = x.view(1, h // 2, w // 2, 4 * c).permute(0, 3, 1, 2)          # NCHW view of channels-last memory
        g = self.body(x, head, cells_last=True).permute(0, 2, 3, 1)       # (1, H/2, W/2, 12), (i, j, c)
        g = g.reshape(h // 2, w // 2, 2, 2 * self.in_ch).permute(0, 2, 1, 3)     # (H/2, i, W/2, (j, c))
        return (y.view(h // 2, 2, w // 2, 2 * self.in_ch) + g).view(h, w, self.in_ch)

    def hwc_channels(self) -> torch.Tensor:
        """For each input channel of the head in :meth:`forward_hwc`'s order, its index in PixelUnshuffle's
        order (``c * 4 + 2 i + j``, c over the image's then the maps' channels).

        Example:
            >>> StudentUNet(ch=(8, 8, 8), blocks=(1, 1, 1)).hwc_channels().tolist()
            [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
        """
        order = []
        for i in range(2):
            for first, n in ((0, self.in_ch), (self.in_ch, self.cond_ch)):
                order += [(first + c) * 4 + 2 * i + j for j in range(2) for c in range(n)]
        return torch.tensor(order)

    @property
    def receptive_radius(self) -> int:
        r"""How far, in input pixels, an output pixel depends on the input (exact; ``test_student`` moves
        one pixel at each offset of an 8-pixel cell and finds this reach).

        Each 3x3 conv at scale s (input pixels per feature pixel) reaches s further: level 1 (scale 2)
        has the head, 2 b1 + 2 b1 block convs and the tail, level 2 (scale 4) 4 b2 block convs, level 3
        (scale 8) 2 b3, that is :math:`2 (2 + 4 b_1) + 16 b_2 + 16 b_3`; the 2x2 stride-2
        down-samplings, the 1x1 + shuffle up-samplings and the (un)shuffle only regroup pixels into cells
        of the deepest level (8 pixels), which adds at most 7.

        Example:
            >>> StudentUNet(ch=(8, 8, 8), blocks=(1, 2, 3)).receptive_radius
            99
        """
        b1, b2, b3 = self.arch["blocks"]
        return 2 * (2 + 4 * b1) + 16 * b2 + 16 * b3 + 7

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
        fused, self.fused = self.fused, False              # fused convolutions bypass the modules' hooks
        try:
            with torch.no_grad():
                w = self.head.weight
                z = torch.zeros(1, self.in_ch, 64, 64, device=w.device, dtype=w.dtype)
                self(z, torch.zeros(1, self.cond_ch, 64, 64, device=w.device, dtype=w.dtype) if self.cond_ch else None)
        finally:
            self.fused = fused
            for h in hs:
                h.remove()
        return total[0] / (64 * 64)
