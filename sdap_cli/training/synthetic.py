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
  across channels, as a camera's sRGB noise starts.

Clean photos hold few saturated colours, and a network that never saw a colour shifts it (the blind-spot
teachers move a saturated purple by 15-27 levels). ``recolour`` makes new colours from a photo's own:

.. math::
    x' = \mathrm{clip}\big(l + g\,(x_\pi - l)\big), \qquad l = \tfrac13 \textstyle\sum_c x_c

with :math:`x_\pi` its channels in another order (one of the 5 other permutations) and :math:`g` a
saturation gain drawn uniformly in ``SATURATION``; the noise is added after, so it stays what its kind says.

Levels are drawn log-uniformly in ``LEVELS`` (by default 1-12 levels: from barely visible to the SIDD
blocks' lightest; ``sdap distill --synthetic-levels``), one kind and level per noisy version, from ``np.random.default_rng([seed, image, version])``
so a set is the same on every run.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["KINDS", "LEVELS", "SATURATION", "add_noise", "noisy_versions", "recolour", "rescale"]

KINDS = ("white", "signal", "box", "pd2", "bayer")
LEVELS = (1.0, 12.0)
SATURATION = (1.0, 1.8)
_PERMUTATIONS = ((0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))
_PD2 = np.outer([0.25, 1.0, 0.25], [0.25, 1.0, 0.25])


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


def add_noise(clean: np.ndarray, kind: str, level: float, rng: np.random.Generator) -> np.ndarray:
    """``clean`` ``(H, W, 3)`` float in [0, 1] plus noise of ``kind`` (``KINDS``) and std ``level`` (8-bit
    levels), rounded to 8 bits; float32 in [0, 1].

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
    else:
        raise ValueError(f"unknown noise kind {kind!r}; choose from {KINDS}")
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
