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
repeatedly (:func:`mix_repeats`; the real ones are repeated instead where the clean photos are many): a share (``SYNTHETIC_SHARE`` by default, ``sdap distill
--synthetic-share``) of the crops drawn comes from them, so that light and white noise, which the real
data hardly holds, and detail to be kept are seen in that share of the steps.

Each entry is ``cat([y, target, m], axis=2)``: ``(H, W, 3 + 3 + COND_CH)`` float16 (the crops are made
float32 as they are drawn; 8-bit samples and the cached targets are held exactly enough, and a set of many
clean photos at two scales fits in half the memory).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..inference.adaptive import choose_path, heavy_blend_weight, lowfreq_correct, wiener_blend
from ..inference.denoiser import Denoiser
from ..inference.noise import NoiseEstimate, measure_noise
from ..io import images
from ..io.samples import to_unit
from ..io.folders import find_images
from .synthetic import LEVELS, FreshNoise, noisy_versions, recolour, rescale

__all__ = ["SYNTHETIC_SHARE", "path_target", "onepass_entries", "synthetic_entries", "synthetic_repeat", "mix_repeats"]

SYNTHETIC_SHARE = 1 / 3


def path_target(y: np.ndarray, heavy: np.ndarray, light: Callable[[], np.ndarray], est: NoiseEstimate,
                blend: tuple[float, float] = (1.0, 1.0)) -> tuple[np.ndarray, str]:
    r"""The target of a real noisy image and its path, for its measured noise ``est``: the input (clean),
    the heavy output blended as the heavy path blends, or the light network's output (``light()``,
    computed only when needed) blended; both then low-frequency checked. ``blend`` = (light, heavy) is
    each path's ``amount`` a in [0, 1] of :func:`wiener_blend` (:math:`y - w\,(y - \hat x)`,
    :math:`w = 1 - a\,(1 - \min(1, \beta\sigma^2 / \overline{r^2}))`; 0: the network's output as it is),
    the heavy path's times its own weight ``heavy_blend_weight``."""
    path = choose_path(est)
    if path == "clean":
        return y, path
    if path == "heavy":
        amount = heavy_blend_weight(est) * blend[1]
        x = wiener_blend(y, heavy, est.sigma_map(heavy), amount=amount) if amount else heavy
    else:
        x = light()
        x = wiener_blend(y, x, est.sigma_map(x), amount=blend[0]) if blend[0] else x
    return lowfreq_correct(y, x, est.sigma_map(x), est.rho1, est.rho2), path


def _entry(y: np.ndarray, target: np.ndarray, est: NoiseEstimate | None = None) -> np.ndarray:
    est = est or measure_noise(y)
    return np.concatenate([y, target, est.condition(y)], axis=2).astype(np.float16)


def onepass_entries(noisy: list[np.ndarray], heavy: list[np.ndarray], light_den: Denoiser,
                    light_cache: Callable[[int, Callable[[], np.ndarray]], np.ndarray],
                    blend: tuple[float, float] = (1.0, 1.0),
                    heavy_final: Callable[[int], np.ndarray] | None = None) -> tuple[list[np.ndarray], dict[str, int]]:
    """Entries of the real noisy images (module docstring) and how many took each path.
    ``light_cache(i, compute)`` returns image i's light output, cached (``targets.cached_target``).
    ``heavy_final(i)``, where given, is image i's target as it is when its noise reads as the heavy path's
    (``targets.student_target``: a student's self-ensemble), in place of the teacher's blended, checked output."""
    out, paths = [], {}
    for i, (y, h) in enumerate(zip(noisy, heavy)):
        est = measure_noise(y)
        if heavy_final is not None and choose_path(est) == "heavy":
            paths["heavy"] = paths.get("heavy", 0) + 1
            out.append(_entry(y, heavy_final(i), est))
            continue
        t, path = path_target(y, h, lambda i=i, y=y: light_cache(i, lambda: light_den.denoise(y)), est,
                              blend)
        paths[path] = paths.get(path, 0) + 1
        out.append(_entry(y, t, est))
    return out, paths


def synthetic_entries(clean: list[str], versions: int, seed: int, recolours: int = 0,
                      levels: tuple[float, float] = LEVELS, scales: tuple[float, ...] = (1.0,),
                      fresh: bool = False, kinds: dict[str, float] | None = None) -> list[np.ndarray | FreshNoise]:
    """Entries of the clean photos under ``clean`` (folders searched recursively, or files): each photo
    at each of ``scales`` (``synthetic.rescale``) as its own target, then its ``versions`` noisy versions
    (levels log-uniform in ``levels``) with it as their target; then as many for each of its ``recolours``
    recoloured copies (``synthetic.recolour``, drawn from ``default_rng([seed, i, 1000 + r])``). The maps
    each entry carries are measured on its own input, as ``sdap denoise`` measures them: on a detailed
    clean photo the reading takes some texture for noise, and the entry teaches the student to keep that
    texture at the level it is told. With ``fresh`` each photo (at each scale, each recoloured copy) is one
    ``synthetic.FreshNoise`` source instead, clean in 1 of ``versions + 1`` crops as the fixed set is, its
    noise drawn anew for every crop; and each photo at the first of ``scales`` gets one more source, its gray
    copy with noise equal in the three channels (``FreshNoise(gray=True)``: gray photos are read as RGB).
    ``kinds``: the fresh noise's kind weights (``synthetic.kind_weights``; None: all equal)."""
    out = []
    for i, f in enumerate(p for c in clean for p in find_images(c)):
        x0 = images.read_image(f).rgb
        for k, scale in enumerate(scales):
            xs = x0 if scale == 1 else rescale(to_unit(x0), scale)
            for r in range(recolours + 1):
                x = xs if r == 0 else recolour(xs, np.random.default_rng([seed, i, 1000 + r]))
                index = i + 1000 * r + 100000 * k
                if fresh:
                    out.append(FreshNoise(to_unit(x), seed, index, levels, clean_share=1 / (versions + 1), kinds=kinds))
                    if r == recolours and k == 0:            # and, at the first scale, its gray copy
                        out.append(FreshNoise(to_unit(xs), seed, i + 500000, levels,
                                              clean_share=1 / (versions + 1), gray=True, kinds=kinds))
                    continue
                out.append(_entry(x, x))
                out += [_entry(y, x) for y, _, _ in noisy_versions(x, versions, seed, index, levels)]
    return out


def synthetic_repeat(real: int, synthetic: int, share: float = SYNTHETIC_SHARE) -> int:
    """How often to list the synthetic entries so they make about ``share`` of the draws (at least once).

        >>> synthetic_repeat(640, 115)
        3
    """
    if not synthetic:
        return 0
    return max(1, round(share * real / ((1 - share) * synthetic)))


def mix_repeats(real: int, synthetic: int, share: float = SYNTHETIC_SHARE) -> tuple[int, int]:
    """(times the real entries, times the synthetic entries are listed) so that the synthetic ones make
    about ``share`` of the draws: the synthetic ones repeated (:func:`synthetic_repeat`) where they are
    few, the real ones where the synthetic ones already make more than ``share``.

        >>> mix_repeats(640, 115), mix_repeats(652, 1200, 0.45), mix_repeats(0, 5)
        ((1, 3), (2, 1), (1, 1))
    """
    if not real or not synthetic or share * real >= (1 - share) * synthetic:
        return 1, synthetic_repeat(real, synthetic, share) if real else int(synthetic > 0)
    return max(1, round((1 - share) * synthetic / (share * real))), 1
