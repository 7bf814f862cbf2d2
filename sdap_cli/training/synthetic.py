r"""Synthetic noise on clean photos: training inputs whose target, the clean photo, is known exactly.

The one-pass student (``sdap distill --condition``) must leave clean photos alone and remove light, white
and correlated noise that real noisy data hardly holds. Each clean image gets noisy versions
:math:`y = \mathrm{q}(x + s\,\hat n)`, :math:`\mathrm{q}` rounding to 8 bits, :math:`\hat n` noise of
unit standard deviation of one kind, and :math:`s` the standard deviation in 8-bit levels:

* ``white``: independent per pixel and channel (a clean sensor's read noise, synthetic tests);
* ``signal``: independent, variance growing with brightness, :math:`\sigma^2(x) \propto 0.2 + x`
  (shot plus read noise; :math:`s` is its std at mid-grey);
* ``box``: white noise through a 3x3 box: correlated 1 and 2 pixels apart
  (:math:`\rho_1 = 2/3, \rho_2 = 1/3`), what PD-2 cannot split (light DSLR noise after processing);
* ``pd2``: white noise through :math:`[\tfrac14, 1, \tfrac14]^{\otimes 2}`: correlated 1 pixel apart,
  not 2 (:math:`\rho_1 \approx 0.44, \rho_2 \approx 0.05`), like phone noise, at levels a phone's is not;
* ``bayer``: white noise on an RGGB mosaic, demosaicked bilinearly (OpenCV): correlated in space and
  across channels, as a camera's sRGB noise starts;
* ``camera`` (drawn only when weighed, ``ALL_KINDS``): a phone's noise as it reaches sRGB (the sensor's
  noise after Brooks et al., "Unprocessing images for learned raw denoising", CVPR 2019): the photo taken back
  to the sensor (sRGB curve and drawn white-balance gains :math:`g` undone), shot and read noise there,
  :math:`\sigma^2_{raw} \propto r + x_{raw}` per channel, correlated 1 pixel apart as ``pd2``, then processed
  forward to first order, with a drawn mixing :math:`M` of positive cross terms (SIDD's sRGB noise is
  positively correlated across channels, red with blue most):

  .. math::
      \hat n = \mathrm{srgb}'(x_{lin}) \odot M\,(g \odot (k * n_{raw})), \qquad k = [\tfrac14, 1, \tfrac14]^{\otimes 2}

  signal-dependent, stronger in the dark and in the gained red and blue, as phone noise in sRGB is.
* ``phone`` (drawn only when weighed): ``camera`` with a phone's channel correlations: the cross terms of
  :math:`M` between red and blue drawn in ``MIX_RB``, the others in ``MIX_PHONE``. ``camera``'s :math:`M`
  correlates every pair alike (about 0.4); the noise of SIDD's sRGB images correlates red with blue about 0.55 and
  green with either 0.2-0.3 (noisy minus clean of its validation pairs; high-pass residuals of flat areas of
  its 512 training blocks show the same order, red-blue largest). The two ranges were chosen so the drawn
  noise's correlations and channel std ratios span those (statistics read, nothing trained on them).

Clean photos hold few saturated colours, and a network that never saw a colour shifts it (the blind-spot
teachers move a saturated purple by 15-27 levels). ``recolour`` makes new colours from a photo's own:

.. math::
    x' = \mathrm{clip}\big(l + g\,(x_\pi - l)\big), \qquad l = \tfrac13 \textstyle\sum_c x_c

with :math:`x_\pi` its channels in another order (one of the 5 other permutations) and :math:`g` a
saturation gain drawn uniformly in ``SATURATION``; the noise is added after, so it stays what its kind says.

Levels are drawn log-uniformly in ``LEVELS`` (by default 1-12 levels: from barely visible to the SIDD
blocks' lightest; ``sdap distill --synthetic-levels``), one kind and level per noisy version, from ``np.random.default_rng([seed, image, version])``
so a set is the same on every run.

Fixed versions show each photo under a few noise draws only (4 by default: one or two of each kind over the
whole run). :class:`FreshNoise` (``sdap distill --fresh-noise``) draws the kind, the level and the noise anew
for every crop. What the student is told must still be what ``sdap denoise`` would read on the *whole*
noisy photo (a crop of grass reads higher than a photo with sky in it), and reading a whole photo per crop
costs ten times a training step; so each photo is read once without noise and once per kind at
``FRESH_GRID`` levels spread log-evenly over the range, and a crop at level :math:`s` between grid levels
:math:`s_0 < s < s_1` is told the reading interpolated in variance (noise and texture add there):

.. math::
    \hat\sigma^2(s) = (1 - t)\,\hat\sigma^2(s_0) + t\,\hat\sigma^2(s_1), \qquad
    t = \frac{s^2 - s_0^2}{s_1^2 - s_0^2},

per channel and brightness bin, and each correlation :math:`\hat\rho` as the same mix weighted by the
variances (:math:`\hat\rho\hat\sigma^2` interpolates like :math:`\hat\sigma^2`).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..inference.noise import COND_CH, NoiseEstimate, measure_noise

__all__ = ["KINDS", "ALL_KINDS", "kind_weights", "LEVELS", "SATURATION", "FRESH_GRID", "FreshNoise", "add_noise", "gray_copy", "noisy_versions",
           "recolour", "rescale"]

KINDS = ("white", "signal", "box", "pd2", "bayer")
ALL_KINDS = KINDS + ("camera", "phone")   # only where weighed: a recipe without weights draws what it drew
WB_GAINS = ((1.6, 2.4), (1.3, 2.0))   # red, blue white-balance gains (green 1), drawn uniformly
MIX = (0.0, 0.35)                     # ``camera``: every cross term of the channel mixing M, drawn uniformly
MIX_PHONE = (0.0, 0.2)                # ``phone``: M's cross terms with green
MIX_RB = (0.15, 0.35)                 # ``phone``: M's cross terms between red and blue
READ_SHARE = (0.005, 0.1)             # read noise's variance as a share of full scale's shot noise, log-uniform
LEVELS = (1.0, 12.0)
SATURATION = (1.0, 1.8)
_PERMUTATIONS = ((0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))
_PD2 = np.outer([0.25, 1.0, 0.25], [0.25, 1.0, 0.25])
FRESH_GRID = 4               # noisy readings per kind of a FreshNoise photo, log-evenly over its levels
_MARGIN = 2                  # clean pixels drawn around a fresh crop, so filtered noise has no border


def _filtered(rng: np.random.Generator, shape: tuple[int, int, int], kernel: np.ndarray) -> np.ndarray:
    """Unit-std white noise filtered by ``kernel`` per channel, rescaled to unit std."""
    n = rng.standard_normal(shape).astype(np.float32)
    k = (kernel / kernel.sum()).astype(np.float32)
    out = cv2.filter2D(n, -1, k, borderType=cv2.BORDER_REFLECT)
    return out / np.float32(np.sqrt((k * k).sum()))


def _bayer(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """Unit-std noise of an RGGB mosaic demosaicked bilinearly (OpenCV works on integers: offset, scale)."""
    h, w = shape[:2]
    m = rng.standard_normal((h, w)).astype(np.float32)
    q = np.clip(np.rint(m * 4096 + 32768), 0, 65535).astype(np.uint16)
    rgb = cv2.cvtColor(q, cv2.COLOR_BayerRG2RGB).astype(np.float32)
    rgb = (rgb - 32768) / 4096
    return rgb / np.float32(max(rgb.std(), 1e-6))


def _srgb_slope(lin: np.ndarray) -> np.ndarray:
    """The derivative of the sRGB curve at linear values ``lin`` in [0, 1] (12.92 below 0.0031308)."""
    knee = 0.0031308
    return np.where(lin <= knee, 12.92, (1.055 / 2.4) * np.power(np.maximum(lin, knee), 1 / 2.4 - 1)).astype(np.float32)


def _mix_range(lo_hi: tuple[float, float], rb: tuple[float, float] | None = None) -> np.ndarray:
    """``(2, 3, 3)``: the low and high bounds of each entry of the mixing :math:`M` (diagonal 1; the red-blue
    cross terms in ``rb`` where given, else in ``lo_hi`` as the others)."""
    b = np.empty((2, 3, 3))
    b[0], b[1] = lo_hi
    if rb is not None:
        b[:, 0, 2] = b[:, 2, 0] = rb
    for i in range(3):
        b[:, i, i] = 1.0
    return b


_MIXING = {"camera": _mix_range(MIX), "phone": _mix_range(MIX_PHONE, MIX_RB)}


def _camera(rng: np.random.Generator, clean: np.ndarray, kind: str = "camera") -> np.ndarray:
    """Unit-std phone-like noise carried through processing to sRGB (module docstring, ``camera``; ``phone``:
    red and blue mixed more than green, ``_MIXING``)."""
    x = np.clip(np.asarray(clean, np.float32), 0, 1)
    lin = np.where(x <= 0.04045, x / 12.92, np.power((x + 0.055) / 1.055, 2.4)).astype(np.float32)
    gains = np.array([rng.uniform(*WB_GAINS[0]), 1.0, rng.uniform(*WB_GAINS[1])], np.float32)
    r = np.exp(rng.uniform(np.log(READ_SHARE[0]), np.log(READ_SHARE[1])))
    n = _filtered(rng, x.shape, _PD2) * np.sqrt(lin / gains + np.float32(r)).astype(np.float32)
    mix = rng.uniform(*_MIXING[kind])
    n = (n * gains) @ mix.T.astype(np.float32) * _srgb_slope(lin)
    return n / np.float32(max(n.std(), 1e-6))


def add_noise(clean: np.ndarray, kind: str, level: float, rng: np.random.Generator) -> np.ndarray:
    """``clean`` ``(H, W, 3)`` float in [0, 1] plus noise of ``kind`` (``KINDS``) and std ``level`` (8-bit
    levels; ``camera``, ``phone``: the std over the whole image), rounded to 8 bits; float32 in [0, 1].

        >>> x = np.full((64, 64, 3), 0.5, np.float32)
        >>> y = add_noise(x, "white", 5.0, np.random.default_rng(0))
        >>> 4.5 < float((y - x).std() * 255) < 5.5, y.dtype.name
        (True, 'float32')
    """
    shape = clean.shape
    if kind == "white":
        n = rng.standard_normal(shape).astype(np.float32)
    elif kind == "signal":
        n = rng.standard_normal(shape).astype(np.float32) * np.sqrt((0.2 + clean) / 0.7).astype(np.float32)
    elif kind == "box":
        n = _filtered(rng, shape, np.ones((3, 3)))
    elif kind == "pd2":
        n = _filtered(rng, shape, _PD2)
    elif kind == "bayer":
        n = _bayer(rng, shape)
    elif kind in ("camera", "phone"):
        n = _camera(rng, clean, kind)
    else:
        raise ValueError(f"unknown noise kind {kind!r}; choose from {ALL_KINDS}")
    y = clean + n * np.float32(level / 255)
    return (np.clip(np.rint(y * 255), 0, 255) / 255).astype(np.float32)


def noisy_versions(clean: np.ndarray, n: int, seed: int, index: int, levels: tuple[float, float] = LEVELS
                   ) -> list[tuple[np.ndarray, str, float]]:
    """``n`` noisy versions of the clean image number ``index``: (noisy, kind, level); kinds in turn
    (version v has kind ``KINDS[(index + v) % 5]``), levels log-uniform in ``levels``."""
    out = []
    for v in range(n):
        rng = np.random.default_rng([seed, index, v])
        kind = KINDS[(index + v) % len(KINDS)]
        level = float(np.exp(rng.uniform(np.log(levels[0]), np.log(levels[1]))))
        out.append((add_noise(clean, kind, level, rng), kind, level))
    return out


def recolour(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``clean`` ``(H, W, 3)`` float in [0, 1] with its channels permuted and its saturation raised
    (module docstring); float32 in [0, 1], the same brightness :math:`l` where nothing clips.

        >>> x = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
        >>> y = recolour(x, np.random.default_rng(1))
        >>> y.shape, bool(np.allclose(y.mean(-1), x.mean(-1), atol=0.2)), bool((y != x).any())
        ((8, 8, 3), True, True)
    """
    perm = _PERMUTATIONS[int(rng.integers(len(_PERMUTATIONS)))]
    g = np.float32(rng.uniform(*SATURATION))
    x = clean[..., list(perm)].astype(np.float32)
    lum = x.mean(-1, keepdims=True)
    return np.clip(lum + g * (x - lum), 0.0, 1.0).astype(np.float32)


def rescale(clean: np.ndarray, scale: float) -> np.ndarray:
    """``clean`` ``(H, W, 3)`` float at ``scale`` of its side (area-averaged, each side at least 1 pixel):
    finer detail per pixel and less of its own grain. Scale 1 returns it as it is.

        >>> rescale(np.ones((10, 8, 3), np.float32), 0.5).shape
        (5, 4, 3)
    """
    if scale == 1:
        return clean
    h, w = clean.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(np.asarray(clean, np.float32), size, interpolation=cv2.INTER_AREA)


def gray_copy(clean: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` float32: the luma :math:`0.299 R + 0.587 G + 0.114 B` in all three channels.

        >>> [round(float(v), 3) for v in gray_copy(np.array([[[1.0, 0.0, 0.0]]], np.float32))[0, 0]]
        [0.299, 0.299, 0.299]
    """
    luma = np.asarray(clean, np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.repeat(luma[..., None], 3, axis=2)


def _mix(a: NoiseEstimate, b: NoiseEstimate, t: float) -> NoiseEstimate:
    """The reading a fraction ``t`` of the way from ``a`` to ``b`` in variance (module docstring)."""
    va, vb = np.square(np.asarray(a.nlf, np.float64)), np.square(np.asarray(b.nlf, np.float64))
    v = (1 - t) * va + t * vb
    wa, wb = (1 - t) * va.mean(), t * vb.mean()
    rho = [(wa * ra + wb * rb) / max(wa + wb, 1e-12) for ra, rb in ((a.rho1, b.rho1), (a.rho2, b.rho2))]
    ch = [float(np.sqrt((1 - t) * x * x + t * y * y)) for x, y in zip(a.sigma_channels, b.sigma_channels)]
    return NoiseEstimate(float(np.sqrt((1 - t) * a.sigma ** 2 + t * b.sigma ** 2)), ch, np.sqrt(v), float(rho[0]),
                         float(rho[1]), a.pixels)


def kind_weights(kinds: dict[str, float] | None) -> np.ndarray | None:
    """The probability of each of ``ALL_KINDS`` from relative weights (a kind left out: 0); None: the
    ``KINDS`` all equal (drawn as ``rng.integers``, so a recipe without weights draws what it drew before).

        >>> kind_weights({"white": 3, "box": 1}).tolist()
        [0.75, 0.0, 0.25, 0.0, 0.0, 0.0, 0.0]
    """
    if kinds is None:
        return None
    bad = sorted(set(kinds) - set(ALL_KINDS))
    if bad or any(v < 0 for v in kinds.values()) or not sum(kinds.values()) > 0:
        raise ValueError(f"noise kind weights {kinds}: kinds from {ALL_KINDS}, weights >= 0, not all 0")
    w = np.array([float(kinds.get(k, 0.0)) for k in ALL_KINDS])
    return w / w.sum()


class FreshNoise:
    """One clean photo whose noisy versions are drawn anew for every crop (module docstring).

    A crop is clean with probability ``clean_share``, otherwise it gets noise of a kind drawn from ``KINDS``
    (or ``ALL_KINDS`` as weighed)
    and a level drawn log-uniformly in ``levels``; it is told the photo's reading at that kind and level
    (interpolated between the readings made here). ``shape`` is that of the entries it stands for.

    Args:
        clean: ``(H, W, 3)`` float32 in [0, 1].
        seed, index: the noise of the readings made here comes from ``default_rng([seed, index, kind, j])``.
        gray: use the photo's gray copy (:func:`gray_copy`), with noise the same in all three channels: a gray
            image is read as three equal channels, and its noise is equal in them too (colour noise alone
            teaches a student that what all channels share is structure, and it leaves a gray photo's noise).
        kinds: relative weights of the noise kinds drawn (:func:`kind_weights`); None: all equal.
    """

    def __init__(self, clean: np.ndarray, seed: int, index: int, levels: tuple[float, float] = LEVELS,
                 clean_share: float = 0.2, gray: bool = False, kinds: dict[str, float] | None = None) -> None:
        self.levels, self.clean_share, self.gray = (float(levels[0]), float(levels[1])), float(clean_share), gray
        self.kind_p = kind_weights(kinds)
        if gray:
            clean = gray_copy(clean)
        h, w = clean.shape[:2]
        self.shape = (h, w, 6 + COND_CH)
        self.grid = np.geomspace(levels[0], levels[1], FRESH_GRID) if levels[1] > levels[0] else np.array(levels[:1])
        self.base = measure_noise(clean)
        drawn = KINDS if self.kind_p is None else [k for k, p in zip(ALL_KINDS, self.kind_p) if p > 0]
        self.readings = {k: [measure_noise(self._noisy(clean, k, float(s), np.random.default_rng([seed, index, i, j])))
                             for j, s in enumerate(self.grid)] for i, k in enumerate(ALL_KINDS) if k in drawn}
        self._clean = np.pad(clean.astype(np.float32), ((_MARGIN, _MARGIN), (_MARGIN, _MARGIN), (0, 0)),
                             mode="reflect" if min(h, w) > _MARGIN else "edge")
        self._padded: dict[int, np.ndarray] = {}

    def _noisy(self, clean: np.ndarray, kind: str, level: float, rng: np.random.Generator) -> np.ndarray:
        """:func:`add_noise`; on a gray photo its first channel in all three (noise the same in each, as a
        gray image's is when it is read as RGB)."""
        y = add_noise(clean, kind, level, rng)
        return np.repeat(y[..., :1], 3, axis=2) if self.gray else y

    def reading(self, kind: str, level: float) -> NoiseEstimate:
        """What the photo with noise of ``kind`` at std ``level`` reads (0: the clean photo's own reading),
        interpolated in variance between the readings made; beyond the last grid level, that level's."""
        points = [(0.0, self.base)] + list(zip(self.grid.tolist(), self.readings[kind]))
        for (s0, a), (s1, b) in zip(points, points[1:]):
            if level <= s1:
                return _mix(a, b, (level * level - s0 * s0) / max(s1 * s1 - s0 * s0, 1e-12))
        return points[-1][1]

    def _fitted(self, patch: int) -> np.ndarray:
        """The margined photo reflect-padded to at least ``patch`` on each side, padded once per patch size
        (not on every crop)."""
        if patch not in self._padded:
            h, w = (n - 2 * _MARGIN for n in self._clean.shape[:2])
            self._padded[patch] = np.pad(self._clean, ((0, max(patch - h, 0)), (0, max(patch - w, 0)), (0, 0)),
                                         mode="reflect") if h < patch or w < patch else self._clean
        return self._padded[patch]

    def sample(self, rng: np.random.Generator, patch: int) -> np.ndarray:
        """A ``patch`` x ``patch`` crop at a place drawn from ``rng``, with fresh noise: ``(P, P, 6 + COND_CH)``
        float32 = cat([noisy, clean, told maps]); a photo smaller than the patch is reflect-padded first."""
        m = _MARGIN
        x = self._fitted(patch)
        h, w = x.shape[0] - 2 * m, x.shape[1] - 2 * m
        y0, x0 = int(rng.integers(h - patch + 1)), int(rng.integers(w - patch + 1))
        c = x[y0:y0 + patch + 2 * m, x0:x0 + patch + 2 * m]
        if rng.random() < self.clean_share:
            y, est = c, self.base
        else:
            kind = KINDS[int(rng.integers(len(KINDS)))] if self.kind_p is None else ALL_KINDS[int(rng.choice(
                len(ALL_KINDS), p=self.kind_p))]
            level = float(np.exp(rng.uniform(np.log(self.levels[0]), np.log(self.levels[1]))))
            y, est = self._noisy(c, kind, level, rng), self.reading(kind, level)
        y, c = y[m:m + patch, m:m + patch], c[m:m + patch, m:m + patch]
        return np.concatenate([y, c, est.condition(y)], axis=2)
