r"""The targets a student learns, computed once per training image and cached (``distill``).

Each target of an image is the teacher's denoising of it, whole and tiled exactly like ``sdap denoise``, stored
as float16 ``.npy`` under a key of (image content hash, network file hash, how it was run), so a restarted or
repeated run reuses it.

Multi-target (``--targets``, AT-BSN(D)-style): K teacher outputs :math:`T_k(y)` per image (``TARGETS``:
the teacher as configured; the same at the three other PD-2 phases, the input shifted by one pixel;
of the flipped or rotated input, flipped back; the ``--auto`` output, which teaches the student the
adaptive paths), each cached once, and

.. math::
    \mathcal{L} = \sum_{k=1}^{K} \mathrm{mean}|g_\phi(y) - T_k(y)|,

optionally *recharged* (APR-RD, TM-BSN(D)): with probability ``recharge`` a pixel's value in one
uniformly chosen target is replaced by the noisy :math:`y`.

Self-distillation (``--self-targets STUDENT``, with ``--condition``): on the real images whose noise reads
as the heavy path's (phone noise), a one-pass student's own self-ensemble replaces the teacher's target,

.. math::
    T(y) = \frac{1}{n}\sum_{k<n} g_k^{-1}\big(S(g_k(y);\ t\,\hat m(g_k(y)))\big),

:math:`S` the student as ``sdap denoise`` runs it (told the noise, Wiener-blended), :math:`\hat m` the measured
noise, :math:`t` = ``--self-targets-told`` the factor on the levels it is told, :math:`g_k` = ``DIHEDRAL[k]``.
The student Q's 8-term ensemble told 1.1x reads 33.28 dB on the 65 SIDD validation pairs, Q alone 33.12, the
teacher with E 32.86 (docs/heavy-noise-study.md, table 4): better targets than the teacher's for that noise.

Images and targets are in [0, 1].
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

import numpy as np

from ..inference.adaptive import AdaptiveDenoiser
from ..inference.denoiser import Denoiser
from ..inference.noise import measure_noise
from ..io import images
from ..io.atomic import atomic_write

__all__ = ["TARGETS", "DIHEDRAL", "target_image", "self_ensemble_target", "student_target", "file_hash",
           "cached_target", "teacher_targets"]

# a target's name -> (transform of the input, its inverse on the output); phases are pad-and-crop shifts
_FLIPS = {
    "hflip": (lambda a: a[:, ::-1], lambda a: a[:, ::-1]),
    "vflip": (lambda a: a[::-1], lambda a: a[::-1]),
    "rot90": (lambda a: np.rot90(a, 1), lambda a: np.rot90(a, -1)),
    "rot180": (lambda a: a[::-1, ::-1], lambda a: a[::-1, ::-1]),
    "rot270": (lambda a: np.rot90(a, -1), lambda a: np.rot90(a, 1)),
    "transpose": (lambda a: a.transpose(1, 0, 2), lambda a: a.transpose(1, 0, 2)),
    "transverse": (lambda a: a[::-1, ::-1].transpose(1, 0, 2), lambda a: a.transpose(1, 0, 2)[::-1, ::-1]),
}
_PHASES = {"phase1": (0, 1), "phase2": (1, 0), "phase3": (1, 1)}
TARGETS = ("teacher", *_PHASES, *_FLIPS, "auto")
DIHEDRAL = ("teacher", "transpose", "hflip", "vflip", "rot180", "rot90", "rot270", "transverse")
"""The eight flips and transposes of the square's symmetry group as targets, in the order
``--self-ensemble N`` takes them (the first N): N = 2 adds the transpose, 4 the two flips and the half
turn, 8 all of them."""


def target_image(teacher: Denoiser, name: str, y: np.ndarray, adaptive=None) -> np.ndarray:
    """The target ``name`` of TARGETS for an ``(H, W, 3)`` image in [0, 1]; float32 in [0, 1].

    ``adaptive`` (an ``adaptive.AdaptiveDenoiser``) is needed for 'auto' only.
    """
    if name == "teacher":
        return teacher.denoise(y)
    if name == "auto":
        return adaptive.denoise(y)[0]
    if name in _PHASES:
        dy, dx = _PHASES[name]
        shifted = np.pad(y, ((dy, 0), (dx, 0), (0, 0)), mode="reflect" if min(y.shape[:2]) > 1 else "edge")
        return np.ascontiguousarray(teacher.denoise(shifted)[dy:, dx:])
    forward, back = _FLIPS[name]
    return np.ascontiguousarray(back(teacher.denoise(np.ascontiguousarray(forward(y)))))


def self_ensemble_target(target: Callable[[str], np.ndarray], n: int) -> np.ndarray:
    r"""The teacher's self-ensemble of ``n`` (1, 2, 4 or 8) flips and transposes,
    :math:`\bar T(y) = \frac{1}{n}\sum_{k<n} g_k^{-1}(T(g_k(y)))` with :math:`g_k` = ``DIHEDRAL[k]``;
    ``target(name)`` gives each term (``target_image`` or a cached copy). float32, in [0, 1]."""
    acc = None
    for name in DIHEDRAL[:n]:
        t = target(name).astype(np.float32)
        acc = t if acc is None else acc + t
    return acc / np.float32(n)


def student_target(student: AdaptiveDenoiser, y: np.ndarray, n: int = 8, told: float = 1.0) -> np.ndarray:
    r"""A one-pass student's self-ensemble of ``n`` (1, 2, 4 or 8) flips and transposes of ``y`` (``(H, W, 3)``
    in [0, 1]), each term run as ``sdap denoise`` runs it but told ``told`` times the noise measured on it
    (``NoiseEstimate.scaled``): :math:`\frac{1}{n}\sum_{k<n} g_k^{-1}(S(g_k(y); t\,\hat m(g_k(y))))`.
    ``student``: an ``AdaptiveDenoiser`` over a conditional student. float32 in [0, 1]."""
    def term(name: str) -> np.ndarray:
        forward, back = _FLIPS.get(name, (lambda a: a, lambda a: a))      # 'teacher': the image as it is
        z = np.ascontiguousarray(forward(y))
        x = student.denoise(z, noise=measure_noise(z).scaled(told))[0]
        return np.ascontiguousarray(back(x))
    return self_ensemble_target(term, n)


def file_hash(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cached_target(entry: Path, shape: tuple, compute: Callable[[], np.ndarray]) -> tuple[np.ndarray, bool]:
    """(target, was cached): read ``entry`` if it holds an array of ``shape``, else compute and store it."""
    if entry.is_file():
        try:
            t = np.load(entry).astype(np.float32)
            if t.shape == shape:
                return t, True
        except (OSError, ValueError):
            pass                                       # a damaged entry is recomputed
    t = compute().astype(np.float16)                   # what the cache holds, so runs see equal targets
    atomic_write(entry, lambda fh: np.save(fh, t))
    return t.astype(np.float32), False


def teacher_targets(teacher: Denoiser, teacher_key: str, files: list[Path], cache_dir: Path, *,
                    targets: tuple[str, ...] = ("teacher",), adaptive=None,
                    on_image: Callable[[int, int, Path, bool], None] | None = None,
                    self_ensemble: int = 1) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """Noisy images and their targets: float32 ``(H, W, 3)`` and ``(H, W, 3K)`` (the K ``targets`` of
    TARGETS side by side), in [0, 1]. With ``self_ensemble`` n > 1 the one target is the teacher's
    self-ensemble (:func:`self_ensemble_target`; ``targets`` must be ('teacher',)).

    Each target is read from ``cache_dir/<stem>-<image hash>-<teacher_key>[-<target>].npy`` when
    present (no suffix for 'teacher'), else computed and written there atomically; a self-ensemble's
    terms are cached each on its own, so a larger n reuses a smaller one's.
    ``on_image(i, n, path, was_cached)`` reports each image. Returns (noisy, targets, number of target
    images computed now).
    """
    if self_ensemble > 1 and tuple(targets) != ("teacher",):
        raise ValueError("a self-ensemble is one target: targets must be ('teacher',)")
    cache_dir.mkdir(parents=True, exist_ok=True)
    noisy, out, computed = [], [], 0
    for i, f in enumerate(files):
        y = images.read_image(f).rgb
        stem = f"{Path(f).stem}-{file_hash(f)[:16]}-{teacher_key}"
        all_cached = True

        def cached(name: str) -> np.ndarray:
            nonlocal computed, all_cached
            entry = cache_dir / (f"{stem}.npy" if name == "teacher" else f"{stem}-{name}.npy")
            t, was = cached_target(entry, y.shape, lambda: target_image(teacher, name, y, adaptive))
            computed += not was
            all_cached &= was
            return t

        ts = [self_ensemble_target(cached, self_ensemble)] if self_ensemble > 1 else [cached(n) for n in targets]
        noisy.append(y)
        out.append(ts[0] if len(ts) == 1 else np.concatenate(ts, axis=2))
        if on_image is not None:
            on_image(i + 1, len(files), Path(f), all_cached)
    return noisy, out, computed
