r"""The noise measurement and the one-pass path's steps as torch modules that export (ONNX, TorchScript).

:class:`NoiseMeter` computes what :func:`~.noise.measure_noise` computes, from the same constants, with
tensor operations only: block means are ``avg_pool2d``, the lowest fraction of blocks per brightness bin is a
sort of each bin's energies (the other bins' masked to infinity) and a rank mask, the choice between the whole
image and the grid of sampling windows (images over ``max_pixels``) is arithmetic on the shape, not Python
control flow. So a graph traced on one size takes any size (no data-dependent loop or branch), and an image
read in the graph gives the estimate ``measure_noise`` gives it, up to float32 summation order.

:class:`PinnedNoise` holds one :class:`~.noise.NoiseEstimate` as constants instead (``sdap export
--noise-from PHOTO``): every tile a host cuts from an image is then told the same noise, and tiled equals
whole up to the network's receptive field.

The one-pass path around the network (``adaptive``): :func:`level_at` (the noise level function at each
pixel's value, as ``NoiseEstimate.condition_tensor`` and ``sigma_map`` interpolate it), :func:`condition_maps`
(what the student is told), :func:`wiener_blend` (the residual Wiener blend over a ``WINDOW`` x ``WINDOW``
box with cv2's ``BORDER_REFLECT``) and :func:`blend_amount` (``onepass_blend_weight``).

Shapes: images ``(N, 3, H, W)`` float32 in [0, 1]; estimates per image: ``nlf`` ``(N, 3, BINS)`` (std,
0-255 scale), ``rho1``, ``rho2``, ``sigma`` ``(N,)`` float32, ``measured`` ``(N,)`` bool (False: too small to
measure, the zero estimate of ``measure_noise``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .adaptive import BETA, ONEPASS_BETA_LIGHT, ONEPASS_BLEND, ONEPASS_BLEND_LIGHT, WINDOW, reads_heavy
from .noise import (BINS, CONDITION_SCALE, CORR_BLOCK, CORR_FRACTION, DIRECTIONS, LAG, LEVEL_BLOCK,
                    LEVEL_FRACTION, LEVEL_GAIN, MIN_BLOCKS, NoiseEstimate)
from .noise import WINDOW as SAMPLE_WINDOW

__all__ = ["NoiseMeter", "PinnedNoise", "level_at", "condition_maps", "sigma_map", "wiener_blend",
           "blend_amount", "blend_beta", "MIN_MEASURED"]

PAD = 2 * LAG
MIN_MEASURED = 2 * PAD + CORR_BLOCK
"""Sides below this (32) are not measured (``measure_noise`` returns the zero estimate)."""


def _size(x: torch.Tensor, dim: int) -> torch.Tensor:
    """A side as a 0-d int64 tensor: traced as a shape operation, so a traced graph takes any size."""
    return torch.as_tensor(x.shape[dim])


def _shift(x: torch.Tensor, oy: int, ox: int) -> torch.Tensor:
    """The core ``x[..., PAD:-PAD, PAD:-PAD]`` moved by (oy, ox), |oy|, |ox| < PAD."""
    return x[..., PAD + oy:-PAD + oy, PAD + ox:-PAD + ox]


def _windows(y: torch.Tensor, max_pixels: int) -> torch.Tensor:
    """``noise._windows`` as arithmetic: ``(N K, C, h, w)``, the image (K = 1), or its grid of K SAMPLE_WINDOW
    windows when it has more than ``max_pixels``."""
    n, c = y.shape[0], y.shape[1]
    h, w = _size(y, 2), _size(y, 3)
    large = (h * w > max_pixels) & (h >= SAMPLE_WINDOW) & (w >= SAMPLE_WINDOW)
    side = torch.as_tensor(SAMPLE_WINDOW)
    wh, ww = torch.where(large, side, h), torch.where(large, side, w)
    ny, nx = h // wh, w // ww
    keep = max(1, max_pixels // (SAMPLE_WINDOW * SAMPLE_WINDOW))
    step = torch.where(large, torch.ceil(torch.sqrt((ny * nx).double() / keep)).long(), torch.ones_like(ny))
    step = step.clamp(min=1)
    rows, cols = torch.arange(step // 2, ny, step), torch.arange(step // 2, nx, step)
    grid = y[:, :, :ny * wh, :nx * ww].reshape(n, c, ny, wh, nx, ww)
    grid = grid.index_select(2, rows).index_select(4, cols).permute(0, 2, 4, 1, 3, 5)
    return grid.reshape(-1, c, wh, ww)


def _blocks(m: torch.Tensor, n: int, c: int) -> torch.Tensor:
    """Per-window block maps ``(N K, C, bh, bw)`` -> ``(N, C, K bh bw)``."""
    return m.reshape(n, -1, c, m.shape[2] * m.shape[3]).permute(0, 2, 1, 3).reshape(n, c, -1)


def _energies(win: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[int, torch.Tensor]]:
    r"""Per 8x8 block of each window's core: the least over DIRECTIONS of the mean :math:`\Delta_L^2` and the
    mean brightness; per 16x16 block: the mean :math:`\tfrac12(\Delta_{k,h}^2 + \Delta_{k,v}^2)` for k in
    1, 2, L (``noise._least_direction_energy``, ``_second_diff_energy``, ``_block_means``)."""
    core = _shift(win, 0, 0)
    least = None
    for dy, dx in DIRECTIONS:
        oy, ox = dy * LAG, dx * LAG
        r = core - 0.5 * (_shift(win, -oy, -ox) + _shift(win, oy, ox))
        m = F.avg_pool2d(r * r, LEVEL_BLOCK)
        least = m if least is None else torch.minimum(least, m)
    corr = {}
    for k in (1, 2, LAG):
        dh = core - 0.5 * (_shift(win, 0, -k) + _shift(win, 0, k))
        dv = core - 0.5 * (_shift(win, -k, 0) + _shift(win, k, 0))
        corr[k] = F.avg_pool2d(F.avg_pool2d(0.5 * (dh * dh + dv * dv), LEVEL_BLOCK), CORR_BLOCK // LEVEL_BLOCK)
    return least, F.avg_pool2d(core, LEVEL_BLOCK), corr


def _lower_envelope(energy: torch.Tensor, bright: torch.Tensor, fraction: float
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``noise._lower_envelope`` for ``(N, C, M)`` blocks at once: the mean energy of the lowest ``fraction``
    of each brightness bin's blocks ``(N, C, BINS)``, which bins count ``(N, C, BINS)`` bool, which blocks were
    kept ``(N, C, M)`` bool, and the blocks per bin ``(N, C, BINS)`` float. A channel with no bin of
    MIN_BLOCKS blocks keeps all its blocks at one level."""
    bins = torch.arange(BINS, device=energy.device)
    idx = (bright * BINS / 255).floor().clamp(0, BINS - 1).long()
    member = idx.unsqueeze(2) == bins.view(1, 1, BINS, 1)                          # (N, C, BINS, M)
    counts = member.sum(-1)
    valid = counts >= MIN_BLOCKS
    take = torch.ceil(counts.double() * fraction).clamp(min=MIN_BLOCKS // 2).float()
    masked = torch.where(member, energy.unsqueeze(2), torch.full_like(energy.unsqueeze(2), float("inf")))
    ordered, order = torch.sort(masked, dim=-1)
    rank = torch.arange(energy.shape[-1], device=energy.device).float()
    chosen = (rank < take.unsqueeze(-1)) & valid.unsqueeze(-1)
    level = torch.where(chosen, ordered, torch.zeros_like(ordered)).sum(-1) / take
    kept = torch.zeros_like(chosen).scatter(-1, order, chosen).any(2)
    none = ~valid.any(-1, keepdim=True)                                            # (N, C, 1)
    level = torch.where(none, energy.mean(-1, keepdim=True), torch.where(valid, level, torch.zeros_like(level)))
    return level, valid | none, kept | none, counts.float()


def _fill_bins(var: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    """``np.interp(arange(BINS), flatnonzero(ok), var[ok])`` per ``(N, C)`` row: empty bins take the line
    between their counted neighbours, or the nearest counted bin beyond the outer ones."""
    j = torch.arange(BINS, device=var.device).float()
    okm = ok.unsqueeze(2)                                                          # (N, C, 1, BINS): over i
    i = j.view(1, 1, 1, BINS)
    left = torch.where(okm & (i <= j.view(1, 1, BINS, 1)), i, torch.full_like(i, -1.0)).amax(-1)
    right = torch.where(okm & (i >= j.view(1, 1, BINS, 1)), i, torch.full_like(i, float(BINS))).amin(-1)
    lo = torch.where(left < 0, right, left)
    hi = torch.where(right >= BINS, left, right)
    v_lo = var.gather(2, lo.clamp(0, BINS - 1).long())
    v_hi = var.gather(2, hi.clamp(0, BINS - 1).long())
    t = torch.where(hi > lo, (j - lo) / (hi - lo).clamp(min=1.0), torch.zeros_like(lo))
    return v_lo + t * (v_hi - v_lo)


class NoiseMeter(nn.Module):
    r""":func:`~.noise.measure_noise` as a graph: ``(N, 3, H, W)`` in [0, 1] -> ``nlf, rho1, rho2, sigma,
    measured`` (module docstring), per image of the batch.

    .. math::
        \sigma_c^2(I_b) = \frac{G^2}{1.5}\,\overline{\min_d \Delta_{L,d}^2}\Big|_{\text{lowest 5 \% of bin } b},
        \qquad \rho_2 = 0.75\,(1 - a_2), \quad \rho_1 = 0.75\,(1 - a_1) + 0.25\,\rho_2

    (``noise`` module docstring: :math:`G` = ``LEVEL_GAIN``, :math:`a_k` the ratio of lag-k to lag-L energy over
    the flattest 16x16 blocks).

    Args:
        max_pixels: images with more pixels are read on a grid of windows (``measure_noise``'s argument).

    Example:
        >>> nlf, rho1, rho2, sigma, measured = NoiseMeter()(0.5 + 0.02 * torch.randn(1, 3, 64, 64))
        >>> nlf.shape, bool(measured[0]), 4.0 < float(sigma[0]) < 6.5
        (torch.Size([1, 3, 8]), True, True)
    """

    def __init__(self, max_pixels: int = 1 << 20) -> None:
        super().__init__()
        self.max_pixels = int(max_pixels)

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n, c = y.shape[0], y.shape[1]
        h, w = _size(y, 2), _size(y, 3)
        measured = ((h >= MIN_MEASURED) & (w >= MIN_MEASURED)).expand(n)
        # a side too short to measure is padded so every step is defined; its estimate is then dropped
        ph, pw = (MIN_MEASURED - h).clamp(min=0), (MIN_MEASURED - w).clamp(min=0)
        y = F.pad(y, [0, pw, 0, ph], mode="replicate")
        win = _windows(y.float() * 255, self.max_pixels)
        least, bright, corr = _energies(win)
        level, ok, _, counts = _lower_envelope(_blocks(least, n, c), _blocks(bright, n, c), LEVEL_FRACTION)
        var = level / 1.5 * LEVEL_GAIN ** 2
        okf = ok.float()
        sig_c = torch.sqrt((var * counts * okf).sum(-1) / (counts * okf).sum(-1).clamp(min=1.0))
        nlf = torch.sqrt(_fill_bins(var, ok).clamp(min=0.0))
        bright16 = F.avg_pool2d(bright, CORR_BLOCK // LEVEL_BLOCK)
        e16 = {k: _blocks(v, n, c) for k, v in corr.items()}
        _, _, kept, _ = _lower_envelope(e16[LAG], _blocks(bright16, n, c), CORR_FRACTION)
        keptf = kept.float()

        def kept_mean(e: torch.Tensor) -> torch.Tensor:
            return (e * keptf).sum(-1) / keptf.sum(-1).clamp(min=1.0)

        denom = kept_mean(e16[LAG]).clamp(min=1e-12)
        rho2_c = 0.75 * (1 - kept_mean(e16[2]) / denom)
        rho1_c = 0.75 * (1 - kept_mean(e16[1]) / denom) + 0.25 * rho2_c
        zero = torch.zeros_like(sig_c[:, 0])
        sigma = torch.sqrt((sig_c * sig_c).mean(-1))
        return (torch.where(measured.view(n, 1, 1), nlf, torch.zeros_like(nlf)),
                torch.where(measured, rho1_c.mean(-1), zero), torch.where(measured, rho2_c.mean(-1), zero),
                torch.where(measured, sigma, zero), measured)


class PinnedNoise(nn.Module):
    """One :class:`~.noise.NoiseEstimate` as constants, in :class:`NoiseMeter`'s output form, whatever the input.

    Example:
        >>> e = NoiseEstimate(5.0, [5.0] * 3, torch.full((3, BINS), 5.0).numpy(), 0.4, 0.05, 1)
        >>> float(PinnedNoise(e)(torch.zeros(2, 3, 8, 8))[3][1])
        5.0
    """

    def __init__(self, est: NoiseEstimate) -> None:
        super().__init__()
        nlf = torch.as_tensor(est.nlf, dtype=torch.float32).reshape(-1, BINS)
        self.register_buffer("nlf", nlf[[min(c, nlf.shape[0] - 1) for c in range(3)]])
        self.register_buffer("scalars", torch.tensor([est.rho1, est.rho2, est.sigma, float(est.pixels > 0)]))

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n = y.shape[0]
        s = self.scalars.unsqueeze(0).expand(n, 4)
        return self.nlf.unsqueeze(0).expand(n, 3, BINS), s[:, 0], s[:, 1], s[:, 2], s[:, 3] > 0


def level_at(v: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    r"""The level function ``table`` ``(N, C, BINS)`` at each value of ``v`` ``(N, C, H, W)`` in [0, 1], linear
    between bin centres and constant beyond the outer ones: :math:`t = vB - \tfrac12` clamped to
    :math:`[0, B - 1]`, :math:`i = \min(\lfloor t \rfloor, B - 2)`, :math:`s_i + (t - i)(s_{i+1} - s_i)`
    (``NoiseEstimate.condition_tensor``, ``np.interp`` in ``sigma_map``)."""
    n, c = v.shape[0], v.shape[1]
    t = (v * BINS - 0.5).clamp(0, BINS - 1)
    i = t.floor().clamp(max=BINS - 2)
    k = i.long().reshape(n, c, -1)
    lo = table.gather(2, k)
    hi = table.gather(2, k + 1)
    return (lo + (t.reshape(n, c, -1) - i.reshape(n, c, -1)) * (hi - lo)).reshape(v.shape)


def condition_maps(y: torch.Tensor, nlf: torch.Tensor, rho1: torch.Tensor, rho2: torch.Tensor) -> torch.Tensor:
    """``NoiseEstimate.condition`` of ``y`` ``(N, 3, H, W)``: ``(N, 5, H, W)``, the level per channel times
    ``CONDITION_SCALE / 255`` and the two correlations as constant maps."""
    levels = level_at(y, nlf * (CONDITION_SCALE / 255))
    const = torch.stack([rho1, rho2], 1).view(-1, 2, 1, 1).expand(-1, -1, y.shape[2], y.shape[3])
    return torch.cat([levels, const.to(levels.dtype)], 1)


def sigma_map(x: torch.Tensor, nlf: torch.Tensor) -> torch.Tensor:
    """``NoiseEstimate.sigma_map``: the noise variance on the [0, 1] scale at ``x``'s values, channel mean,
    ``(N, 1, H, W)``."""
    s = level_at(x, nlf) / 255
    return (s * s).mean(1, keepdim=True)


def _reflect(e: torch.Tensor, r: int) -> torch.Tensor:
    """Pad H and W by ``r`` the way cv2's BORDER_REFLECT does (the edge pixel repeated: ``cba|abc``)."""
    e = torch.cat([e[..., :r].flip(-1), e, e[..., -r:].flip(-1)], -1)
    return torch.cat([e[..., :r, :].flip(-2), e, e[..., -r:, :].flip(-2)], -2)


def wiener_blend(y: torch.Tensor, x_hat: torch.Tensor, var: torch.Tensor, amount: torch.Tensor,
                 beta: torch.Tensor | None = None) -> torch.Tensor:
    r"""``adaptive.wiener_blend`` per image: :math:`y - w (y - \hat x)`, :math:`w = 1 - a\,(1 - \min(1,
    \beta \sigma^2 / \overline{r^2}))`, clamped to [0, 1]; ``amount`` and ``beta`` ``(N,)`` (None: ``BETA``);
    sides of at least WINDOW // 2."""
    r = y - x_hat
    energy = F.avg_pool2d(_reflect((r * r).mean(1, keepdim=True), WINDOW // 2), WINDOW, stride=1)
    b = BETA if beta is None else beta.view(-1, 1, 1, 1)
    w = torch.clamp(b * var / energy.clamp(min=1e-12), max=1.0)
    w = 1.0 - amount.view(-1, 1, 1, 1) * (1.0 - w)
    return (y - w * r).clamp(0.0, 1.0)


def blend_beta(rho1: torch.Tensor, rho2: torch.Tensor) -> torch.Tensor:
    """``adaptive.onepass_blend_beta`` per image: ``BETA`` where the noise reads as the heavy path's
    (``adaptive.reads_heavy``), else ``ONEPASS_BETA_LIGHT``; ``(N,)`` float32."""
    return torch.where(reads_heavy(rho1, rho2), torch.full_like(rho1, BETA), torch.full_like(rho1, ONEPASS_BETA_LIGHT))


def blend_amount(sigma: torch.Tensor, measured: torch.Tensor, rho1: torch.Tensor, rho2: torch.Tensor) -> torch.Tensor:
    """``adaptive.onepass_blend_weight`` per image: the ramp of ``adaptive.onepass_blend_ramp`` (``ONEPASS_BLEND``
    where the noise reads as the heavy path's, ``adaptive.reads_heavy``, else ``ONEPASS_BLEND_LIGHT``):
    its full amount up to its first level, falling linearly to 0 at its second; 0 for an image not measured."""
    def ramp(a, lo, hi):
        return a * ((hi - sigma) / max(hi - lo, 1e-6)).clamp(0.0, 1.0)
    amount = torch.where(reads_heavy(rho1, rho2), ramp(*ONEPASS_BLEND), ramp(*ONEPASS_BLEND_LIGHT))
    return torch.where(measured, amount, torch.zeros_like(amount))
