r"""Ground-truth-free measurement of an image's noise: its level (per channel and brightness) and its
spatial correlation, the part of it that survives PD-2.

Statistic. For a channel :math:`y` and a lag :math:`k`, the second difference

.. math::
    \Delta_k(p) = y(p) - \tfrac12\,(y(p - k) + y(p + k))

(horizontal and vertical) removes the image's linear trend. For stationary noise of variance
:math:`\sigma^2` and lag-:math:`j` correlation :math:`\rho_j` on a locally linear signal

.. math::
    E[\Delta_k^2] = \sigma^2\,(1.5 - 2\rho_k + 0.5\rho_{2k}).

At a lag beyond the noise's correlation length (:math:`k = L = 4`; real sRGB noise has
:math:`\rho_4 \approx 0`) this is :math:`1.5\,\sigma^2` whatever the correlation, so the level is read
there, and not at lag 1, where a MAD/Haar estimate under-reads correlated noise. The ratios
:math:`a_k = E[\Delta_k^2] / E[\Delta_L^2]` then give :math:`\rho_2 = 0.75\,(1 - a_2)` (taking
:math:`\rho_4 = 0`) and :math:`\rho_1 = 0.75\,(1 - a_1) + 0.25\,\rho_2`. White noise: 0 and 0. After PD-2
the nearest neighbours inside a sub-image are 2 pixels apart, so :math:`\rho_2` is the correlation
that survives PD-2.

Where. Texture adds to :math:`\Delta_L^2`, so the energies are averaged in blocks and only the
flattest blocks count: blocks are binned by brightness (real noise grows with brightness) and in each
bin the lowest fraction by :math:`\Delta_L^2` is kept (the lower envelope, as in noise-level-function
estimation). The level is read from 8x8 blocks, giving a noise level function :math:`\sigma_c(I)` per
channel; the correlation from 16x16 blocks (the lowest 25 %), where a block's own noise sways its
selection less.

Texture. On detailed photos (grass, brick, fences) no block is flat, and the lower envelope reads
texture as noise. Noise is the same in every direction; most texture is not (edges, stripes, fences,
brick courses): for the level each 8x8 block takes the **least** of its mean :math:`\Delta_L^2` along the
four directions (horizontal, vertical and both diagonals, lag :math:`L` each), and the lowest
``LEVEL_FRACTION`` (5 %) of blocks per bin counts. Both choices read noise low by a fixed factor (the
minimum of four estimates, and a lower tail), taken back by ``LEVEL_GAIN``, fixed so that real camera
noise reads as before on the shared paired sets (SIDD, CC15): the thresholds of ``inference.adaptive``
and what the students were told keep their meaning. On the 56 shared clean detailed photos (median
over them, |read - S| for white noise of std S added): S = 0: 3.9 -> 2.7, S = 2: 2.3 -> 1.1, worst
reading of a clean photo 19.8 -> 11.5 (``benchmarks/noise_texture.py``). Isotropic texture (grass,
fur) still reads as noise: what the student is told there is wrong the way this reading is wrong, and
it is trained so (``training.onepass``).

Cost: a few array passes over at most ``max_pixels`` pixels (a deterministic grid of windows on large
images); about 0.1 s per megapixel sampled on one CPU core.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..io.samples import to_unit

__all__ = ["NoiseEstimate", "measure_noise", "CONDITION_SCALE", "COND_CH"]

COND_CH = 5
"""Channels of ``NoiseEstimate.condition``: the level at each pixel per colour channel, rho1, rho2."""

LAG = 4                      # L: beyond the correlation length of real sRGB noise (rho_3 ~ 0.02 on SIDD)
LEVEL_BLOCK, LEVEL_FRACTION = 8, 0.05
DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))   # (dy, dx) of the level's second differences
LEVEL_GAIN = 1.14            # std factor that undoes the minimum's and the tail's low reading (module docstring)
CORR_BLOCK, CORR_FRACTION = 16, 0.25
BINS = 8                     # brightness bins over 0-255
MIN_BLOCKS = 8               # fewer blocks than this in a bin: the bin borrows its neighbours' level
WINDOW = 128                 # sampling window side on large images
CONDITION_SCALE = 10.0       # the condition maps carry 10 sigma / 255: levels 0-25 read 0-1, the range of rho


@dataclass
class NoiseEstimate:
    """What :func:`measure_noise` found. Levels are standard deviations on the 0-255 scale.

    Attributes:
        sigma: overall noise std, the RMS over channels of each channel's pixel-weighted level.
        sigma_channels: that level per channel.
        nlf: ``(C, BINS)`` noise level function, std at the centre of each brightness bin.
        rho1, rho2: correlation of the noise at 1 and 2 pixels (mean of both directions and all
            channels); rho2 is what survives PD-2.
        pixels: pixels measured.
    """

    sigma: float
    sigma_channels: list[float]
    nlf: np.ndarray = field(repr=False)
    rho1: float
    rho2: float
    pixels: int

    def sigma_map(self, image: np.ndarray) -> np.ndarray:
        """Per-pixel noise variance on the [0, 1] scale at the brightness of ``image`` ``(H, W, C)``,
        averaged over channels: ``(H, W, 1)`` float32."""
        centres = (np.arange(BINS) + 0.5) * 255 / BINS
        var = np.zeros(image.shape[:2], np.float32)
        for c in range(image.shape[2]):
            s = np.interp(image[..., c] * 255, centres, self.nlf[min(c, len(self.nlf) - 1)]) / 255
            var += (s * s).astype(np.float32)
        return (var / image.shape[2])[..., None]

    def condition(self, image: np.ndarray) -> np.ndarray:
        r"""What a noise-conditional network is told about this image, per pixel of ``image`` ``(H, W, C)``
        in [0, 1] (the noisy samples themselves: the map is pointwise, so tiles give the whole image's):
        ``(H, W, 5)`` float32 = :math:`[k\,\sigma_c(y_c(p)) / 255]_{c=1..3}`, :math:`\rho_1`, :math:`\rho_2`,
        with :math:`\sigma_c` the noise level function (``nlf``, linear between bin centres, constant beyond
        the outer ones) and :math:`k` = ``CONDITION_SCALE`` (a level of 25.5 reads 1). Computed by
        :meth:`condition_tensor`, the one implementation.

            >>> e = NoiseEstimate(5.1, [5.1] * 3, np.full((3, BINS), 5.1), 0.4, 0.05, 1)
            >>> [round(float(v), 2) for v in e.condition(np.full((2, 2, 3), 0.5, np.float32))[0, 0]]
            [0.2, 0.2, 0.2, 0.4, 0.05]
        """
        import torch

        return self.condition_tensor(torch.from_numpy(np.asarray(image, np.float32))).numpy()

    def condition_tensor(self, image: torch.Tensor) -> torch.Tensor:
        r""":meth:`condition` of an ``(H, W, C)`` float32 tensor, on its device: ``(H, W, 5)`` float32.

        The interpolation between bin centres :math:`(i + 0.5) \cdot 255 / B` is done on the bin position
        :math:`t = y B - 0.5` clamped to :math:`[0, B - 1]`: :math:`\sigma = s_i + (t - i)(s_{i+1} - s_i)`,
        :math:`i = \min(\lfloor t \rfloor, B - 2)`, which is ``np.interp`` on those centres.
        """
        import torch                    # this module is imported on the torch-free path (inference.runtime)

        h, w = image.shape[:2]
        out = torch.empty(h, w, COND_CH, dtype=torch.float32, device=image.device)
        table = torch.as_tensor(self.condition_table(), device=image.device)
        for c in range(3):
            t = (image[..., min(c, image.shape[2] - 1)].float() * BINS - 0.5).clamp_(0, BINS - 1)
            i = t.floor().clamp_(max=BINS - 2)
            row = table[min(c, table.shape[0] - 1)]
            lo, slope = row[:-1], row[1:] - row[:-1]
            k = i.long()
            torch.addcmul(lo[k], t.sub_(i), slope[k], out=out[..., c])
        out[..., 3], out[..., 4] = self.rho1, self.rho2
        return out

    def condition_table(self) -> np.ndarray:
        """The level function as the maps carry it: ``nlf * CONDITION_SCALE / 255``, ``(C, BINS)`` float32 (the
        table :meth:`condition_tensor` and the runtime's graph interpolate, ``inference.runtime``)."""
        return (np.asarray(self.nlf, np.float64) * (CONDITION_SCALE / 255)).astype(np.float32)

    def scaled(self, k: float) -> "NoiseEstimate":
        r"""This estimate with every level times ``k`` > 0 (:math:`k\sigma`, :math:`k\sigma_c`, :math:`k\,\mathrm{nlf}`;
        the correlations and pixel count as they are): what a network is told when told more (k > 1) or less.

            >>> NoiseEstimate(5.0, [5.0, 4.0, 6.0], np.full((3, BINS), 5.0), 0.4, 0.05, 9).scaled(1.1).sigma_channels
            [5.5, 4.4, 6.6000000000000005]
        """
        if not k > 0:
            raise ValueError(f"scale {k}: must be > 0")
        return NoiseEstimate(self.sigma * k, [s * k for s in self.sigma_channels],
                             np.asarray(self.nlf, np.float64) * k, self.rho1, self.rho2, self.pixels)

    def to_dict(self) -> dict:
        return {"sigma": round(self.sigma, 3), "rho1": round(self.rho1, 3), "rho2": round(self.rho2, 3)}

    def told(self) -> dict:
        """What :meth:`condition` tells a network, as reports show it: the level per colour channel, rho1, rho2."""
        return {"sigma_channels": [round(s, 3) for s in self.sigma_channels], "rho1": round(self.rho1, 3),
                "rho2": round(self.rho2, 3)}


def _second_diff_energy(c: np.ndarray, k: int, pad: int) -> np.ndarray:
    """0.5 (Delta_k_h^2 + Delta_k_v^2) on the common core ``c[pad:-pad, pad:-pad]``."""
    h, w = c.shape
    core = c[pad:h - pad, pad:w - pad]
    dh = core - 0.5 * (c[pad:h - pad, pad - k:w - pad - k] + c[pad:h - pad, pad + k:w - pad + k])
    dv = core - 0.5 * (c[pad - k:h - pad - k, pad:w - pad] + c[pad + k:h - pad + k, pad:w - pad])
    return 0.5 * (dh * dh + dv * dv)


def _least_direction_energy(c: np.ndarray, k: int, pad: int, b: int) -> np.ndarray:
    r"""Per ``b`` x ``b`` block of the core ``c[pad:-pad, pad:-pad]``: the least over ``DIRECTIONS`` of the
    block mean of :math:`\Delta_k^2 = (y(p) - \tfrac12 (y(p - k d) + y(p + k d)))^2`."""
    h, w = c.shape
    core = c[pad:h - pad, pad:w - pad]
    least = None
    for dy, dx in DIRECTIONS:
        oy, ox = dy * k, dx * k
        r = core - 0.5 * (c[pad - oy:h - pad - oy, pad - ox:w - pad - ox] + c[pad + oy:h - pad + oy, pad + ox:w - pad + ox])
        m = _block_means(r * r, b)
        least = m if least is None else np.minimum(least, m)
    return least


def _block_means(a: np.ndarray, b: int) -> np.ndarray:
    h, w = a.shape[0] // b * b, a.shape[1] // b * b
    return a[:h, :w].reshape(h // b, b, w // b, b).mean((1, 3))


def _windows(h: int, w: int, max_pixels: int) -> list[tuple[int, int, int, int]]:
    """The whole image, or a regular grid of WINDOW x WINDOW windows holding about max_pixels."""
    if h * w <= max_pixels or h < WINDOW or w < WINDOW:
        return [(0, h, 0, w)]
    ny, nx = h // WINDOW, w // WINDOW
    keep = max(1, max_pixels // (WINDOW * WINDOW))
    step = max(1, int(np.ceil(np.sqrt(ny * nx / keep))))
    return [(i * WINDOW, (i + 1) * WINDOW, j * WINDOW, (j + 1) * WINDOW)
            for i in range(step // 2, ny, step) for j in range(step // 2, nx, step)]


def _lower_envelope(energy: np.ndarray, bright: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean energy of the lowest ``fraction`` of blocks per brightness bin (NaN where a bin is empty)
    and the indices of the kept blocks."""
    idx = np.clip((bright * BINS / 255).astype(int), 0, BINS - 1)
    level = np.full(BINS, np.nan)
    kept = []
    for b in range(BINS):
        ii = np.flatnonzero(idx == b)
        if len(ii) < MIN_BLOCKS:
            continue
        n = max(MIN_BLOCKS // 2, int(np.ceil(fraction * len(ii))))
        sel = ii[np.argsort(energy[ii], kind="stable")[:n]]
        kept.append(sel)
        level[b] = energy[sel].mean()
    if not kept:                                    # a tiny image: all blocks, one level
        kept = [np.arange(len(energy))]
        level[:] = energy.mean() if len(energy) else 0.0
    return level, np.concatenate(kept)


def measure_noise(image: np.ndarray, max_pixels: int = 1 << 20) -> NoiseEstimate:
    r"""Measure the noise level function and correlation of an ``(H, W, C)`` image: float in [0, 1], or
    integer samples (each window is converted on its own, ``samples.to_unit``).

    Deterministic; images smaller than 4 * LAG + CORR_BLOCK (32) pixels on a side give a zero estimate.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> e = measure_noise(np.clip(0.5 + rng.normal(0, 5 / 255, (128, 128, 3)), 0, 1))
        >>> 4 < e.sigma < 5.5, abs(e.rho1) < 0.1
        (True, True)
    """
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[..., None]
    h, w, ch = img.shape
    pad = 2 * LAG
    wins = [(y0, y1, x0, x1) for y0, y1, x0, x1 in _windows(h, w, max_pixels)
            if y1 - y0 >= 2 * pad + CORR_BLOCK and x1 - x0 >= 2 * pad + CORR_BLOCK]
    if not wins:
        return NoiseEstimate(0.0, [0.0] * ch, np.zeros((ch, BINS)), 0.0, 0.0, 0)
    sig_c, nlf, r1, r2 = [], np.zeros((ch, BINS)), [], []
    for c in range(ch):
        e = {k: [] for k in (1, 2, LAG)}
        e16 = {k: [] for k in (1, 2, LAG)}
        br, br16 = [], []
        for y0, y1, x0, x1 in wins:
            win = to_unit(img[y0:y1, x0:x1, c]) * 255
            for k in e:
                m = _block_means(_second_diff_energy(win, k, pad), LEVEL_BLOCK)
                e16[k].append(_block_means(m, CORR_BLOCK // LEVEL_BLOCK).ravel())
            e[LAG].append(_least_direction_energy(win, LAG, pad, LEVEL_BLOCK).ravel())
            b = _block_means(win[pad:-pad, pad:-pad], LEVEL_BLOCK)
            br.append(b.ravel())
            br16.append(_block_means(b, CORR_BLOCK // LEVEL_BLOCK).ravel())
        e = {LAG: np.concatenate(e[LAG])}
        e16 = {k: np.concatenate(v) for k, v in e16.items()}
        bright = np.concatenate(br)
        level, _ = _lower_envelope(e[LAG], bright, LEVEL_FRACTION)
        ok = np.isfinite(level)
        counts = np.bincount(np.clip((bright * BINS / 255).astype(int), 0, BINS - 1), minlength=BINS)
        var = level / 1.5 * LEVEL_GAIN ** 2
        sig_c.append(float(np.sqrt((var[ok] * counts[ok]).sum() / max(counts[ok].sum(), 1))))
        nlf[c] = np.sqrt(np.interp(np.arange(BINS), np.flatnonzero(ok), var[ok]))
        _, sel = _lower_envelope(e16[LAG], np.concatenate(br16), CORR_FRACTION)
        denom = max(float(e16[LAG][sel].mean()), 1e-12)
        a1, a2 = e16[1][sel].mean() / denom, e16[2][sel].mean() / denom
        rho2 = 0.75 * (1 - a2)
        r2.append(rho2)
        r1.append(0.75 * (1 - a1) + 0.25 * rho2)
    pixels = sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in wins)
    return NoiseEstimate(float(np.sqrt(np.mean(np.square(sig_c)))), sig_c, nlf, float(np.mean(r1)),
                         float(np.mean(r2)), pixels)
