r"""The training set of the noise-conditional one-pass student (``sdap distill --condition``).

Every input y comes with the maps the student is told at inference, :math:`m = ` ``measure_noise(y)
.condition(y)`` (measured on the whole image, as ``sdap denoise`` measures it), and with one target, the
best this project makes for that kind of noise:

* a real noisy image takes the target of the path ``adaptive.choose_path`` gives it, with the teachers of
  today's adaptive default: *heavy* (phone-like noise) the teacher (or the ensemble's mean) with PD-2 + E,
  Wiener-blended below ``SIGMA_HEAVY`` as the heavy path blends; *light* (white, light or correlated
  beyond PD-2) the light teacher at PD-1 plus the residual Wiener blend; *clean* the input itself;
* a clean photo (``--clean``) is its own target, and so is each of its ``--synthetic`` noisy versions
  (``synthetic.noisy_versions``): there the truth is known, so it is the target; so are its ``--recolour``
  recoloured copies (``synthetic.recolour``: colours the photos lack) and their noisy versions.

The teachers' targets then get the low-frequency check of the teacher's paths (``adaptive.lowfreq_correct``),
as ``sdap denoise`` runs them, so the student does not learn the teachers' colour shifts.

Clean photos and their noisy versions are few beside the real noisy images, so they are listed
``repeat`` times (:func:`synthetic_repeat`): a ``SYNTHETIC_SHARE`` of the crops drawn comes from them, so
that light and white noise, which the real data hardly holds, is seen in a third of the steps.

Each entry is ``cat([y, target, m], axis=2)``: ``(H, W, 3 + 3 + COND_CH)`` float32.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..inference.adaptive import choose_path, heavy_blend_weight, lowfreq_correct, wiener_blend
from ..inference.denoiser import Denoiser
from ..inference.noise import NoiseEstimate, measure_noise
from ..io import images
from ..io.folders import find_images
from .synthetic import noisy_versions, recolour

__all__ = ["SYNTHETIC_SHARE", "path_target", "onepass_entries", "synthetic_entries", "synthetic_repeat"]

SYNTHETIC_SHARE = 1 / 3


def path_target(y: np.ndarray, heavy: np.ndarray, light: Callable[[], np.ndarray], est: NoiseEstimate
                ) -> tuple[np.ndarray, str]:
    """The target of a real noisy image and its path, for its measured noise ``est``: the input (clean),
    the heavy output blended as the heavy path blends, or the light network's output (``light()``,
    computed only when needed) blended; both then low-frequency checked."""
    path = choose_path(est)
    if path == "clean":
        return y, path
    if path == "heavy":
        amount = heavy_blend_weight(est)
        x = wiener_blend(y, heavy, est.sigma_map(heavy), amount=amount) if amount else heavy
    else:
        x = light()
        x = wiener_blend(y, x, est.sigma_map(x))
    return lowfreq_correct(y, x, est.sigma_map(x), est.rho1, est.rho2), path


def _entry(y: np.ndarray, target: np.ndarray, est: NoiseEstimate | None = None) -> np.ndarray:
    est = est or measure_noise(y)
    return np.concatenate([y, target, est.condition(y)], axis=2).astype(np.float32)


def onepass_entries(noisy: list[np.ndarray], heavy: list[np.ndarray], light_den: Denoiser,
                    light_cache: Callable[[int, Callable[[], np.ndarray]], np.ndarray]
                    ) -> tuple[list[np.ndarray], dict[str, int]]:
    """Entries of the real noisy images (module docstring) and how many took each path.
    ``light_cache(i, compute)`` returns image i's light output, cached (``distill._cached_target``)."""
    out, paths = [], {}
    for i, (y, h) in enumerate(zip(noisy, heavy)):
        est = measure_noise(y)
        t, path = path_target(y, h, lambda i=i, y=y: light_cache(i, lambda: light_den.denoise(y)), est)
        paths[path] = paths.get(path, 0) + 1
        out.append(_entry(y, t, est))
    return out, paths


def synthetic_entries(clean: list[str], versions: int, seed: int, recolours: int = 0) -> list[np.ndarray]:
    """Entries of the clean photos under ``clean`` (folders searched recursively, or files): each photo
    as its own target, then its ``versions`` noisy versions with it as their target; then as many for each
    of its ``recolours`` recoloured copies (``synthetic.recolour``, drawn from ``default_rng([seed, i,
    1000 + r])``)."""
    out = []
    for i, f in enumerate(p for c in clean for p in find_images(c)):
        x0 = images.read_image(f).rgb
        for r in range(recolours + 1):
            x = x0 if r == 0 else recolour(x0, np.random.default_rng([seed, i, 1000 + r]))
            out.append(_entry(x, x))
            out += [_entry(y, x) for y, _, _ in noisy_versions(x, versions, seed, i + 1000 * r)]
    return out


def synthetic_repeat(real: int, synthetic: int, share: float = SYNTHETIC_SHARE) -> int:
    """How often to list the synthetic entries so they make about ``share`` of the draws (at least once).

        >>> synthetic_repeat(640, 115)
        3
    """
    if not synthetic:
        return 0
    return max(1, round(share * real / ((1 - share) * synthetic)))
