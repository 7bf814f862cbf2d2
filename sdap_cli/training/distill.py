r"""Distillation: a StudentUNet :math:`g_\phi` learns the teacher's denoising, noisy -> teacher output.

1. The teacher (a DBSNl with PD-2 + ``refine``, usually E) denoises every training image once, whole
   and tiled exactly like ``sdap denoise``; each output is cached on disk as float16 ``.npy`` under a
   key of (image content hash, teacher file hash, refine), so a restarted or repeated run reuses it.
   Whole images rather than crops: a crop denoised alone would carry border effects the student
   should not learn, and any crop of the cached image is then free.
2. The student minimises :math:`\mathcal{L} = \mathrm{mean}|g_\phi(y) - T(y)|` on random aligned crops
   (flips, rot90) of the pairs :math:`(y, T(y))`, with the loop, validation, keep-best and resume of
   ``sdap train`` (``loop.fit``).

Multi-target (``--targets``, AT-BSN(D)-style): K teacher outputs :math:`T_k(y)` per image (``TARGETS``:
the teacher as configured; the same at the three other PD-2 phases, the input shifted by one pixel;
of the flipped or rotated input, flipped back; the ``--auto`` output, which teaches the student the
adaptive paths), each cached once, and

.. math::
    \mathcal{L} = \sum_{k=1}^{K} \mathrm{mean}|g_\phi(y) - T_k(y)|,

optionally *recharged* (APR-RD, TM-BSN(D)): with probability ``recharge`` a pixel's value in one
uniformly chosen target is replaced by the noisy :math:`y`.

Teacher ensemble (``--ensemble``): with J teachers each target is their per-pixel mean,
:math:`T_k(y) = \frac{1}{J}\sum_j T_k^{(j)}(y)`. Networks trained apart err apart, so the mean is better
than each (on the 5 SIDD blocks, the 96/7 and 48/5 teachers with E: 32.21 and 31.44 dB alone, 32.59
averaged; ``benchmarks/target_quality.py``); the sum of L1 over targets would instead pull towards their
median, which gains far less there.

Self-distillation (``--self-targets STUDENT``, with ``--condition``): on the real images whose noise reads
as the heavy path's (phone noise), a one-pass student's own self-ensemble replaces the teacher's target,

.. math::
    T(y) = \frac{1}{n}\sum_{k<n} g_k^{-1}\big(S(g_k(y);\ t\,\hat m(g_k(y)))\big),

:math:`S` the student as ``sdap denoise`` runs it (told the noise, Wiener-blended), :math:`\hat m` the measured
noise, :math:`t` = ``--self-targets-told`` the factor on the levels it is told, :math:`g_k` = ``DIHEDRAL[k]``.
The default student's 8-term ensemble told 1.1x reads 33.28 dB on the 65 SIDD validation pairs, alone 33.12, the
teacher with E 32.86 (docs/heavy-noise-study.md): better targets than the teacher's for that noise.

Images and targets are in [0, 1].
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from ..errors import CheckpointError, ConfigError
from ..inference.adaptive import AdaptiveDenoiser
from ..inference.checkpoints import load_weights
from ..inference.denoiser import Denoiser
from ..inference.denoisers import light_path_denoiser
from ..inference.denoiser import make_denoiser
from ..inference.noise import COND_CH, measure_noise
from ..io import images
from ..io.atomic import atomic_write
from ..method.student import StudentUNet
from ..training_config import DistillConfig
from .datasets import NoisyCrops, find_noisy_images_all
from .loop import Recipe, TrainResult, fit, setup
from .onepass import mix_repeats, onepass_entries, synthetic_entries
from .trainer import autocast_context
from .validation import load_validation_set, mean_scores, validate_student

__all__ = ["distill", "teacher_targets", "ensemble_targets", "MeanDenoiser", "distill_loss", "recharge",
           "target_image", "self_ensemble_target", "student_target", "TARGETS", "DIHEDRAL", "validate_student", "mean_scores", "file_hash"]

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


def _cached_target(entry: Path, shape: tuple, compute: Callable[[], np.ndarray]) -> tuple[np.ndarray, bool]:
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
            t, was = _cached_target(entry, y.shape, lambda: target_image(teacher, name, y, adaptive))
            computed += not was
            all_cached &= was
            return t

        ts = [self_ensemble_target(cached, self_ensemble)] if self_ensemble > 1 else [cached(n) for n in targets]
        noisy.append(y)
        out.append(ts[0] if len(ts) == 1 else np.concatenate(ts, axis=2))
        if on_image is not None:
            on_image(i + 1, len(files), Path(f), all_cached)
    return noisy, out, computed


def recharge(y: torch.Tensor, targets: torch.Tensor, p: float, gen: torch.Generator | None = None
             ) -> torch.Tensor:
    """Targets ``(B, K, C, P, P)`` where, with probability ``p`` per pixel, the value of one uniformly
    chosen target is the noisy ``y`` ``(B, C, P, P)`` (all channels of that pixel); a new tensor."""
    b, k, _, h, w = targets.shape
    hit = torch.rand((b, 1, 1, h, w), generator=gen, device=y.device) < p
    which = torch.randint(k, (b, 1, 1, h, w), generator=gen, device=y.device)
    mask = hit & (which == torch.arange(k, device=y.device).view(1, k, 1, 1, 1))
    return torch.where(mask, y.unsqueeze(1), targets)


def distill_loss(net: torch.nn.Module, batch: torch.Tensor, *, precision: str = "fp32",
                 channels_last: bool = True, channels: int = 3, recharge_p: float = 0.0,
                 gen: torch.Generator | None = None, cond_ch: int = 0) -> torch.Tensor:
    r""":math:`\sum_k \mathrm{mean}|g_\phi(y) - T_k(y)|` for ``batch`` = cat([y, T_1(y), ..., T_K(y)], dim=1),
    ``(B, C (1 + K), P, P)``; with ``recharge_p`` > 0 the targets are :func:`recharge`\ d first. With
    ``cond_ch`` > 0 the batch ends with the noise maps the network is told: :math:`g_\phi(y, m)`."""
    c = channels
    y = batch[:, :c]
    cond = batch[:, batch.shape[1] - cond_ch:] if cond_ch else None
    targets = batch[:, c:batch.shape[1] - cond_ch].reshape(batch.shape[0], -1, c, *batch.shape[2:])
    if recharge_p > 0:
        targets = recharge(y, targets, recharge_p, gen)
    if channels_last:
        y = y.contiguous(memory_format=torch.channels_last)
    with autocast_context(batch.device, precision):
        out = net(y) if cond is None else net(y, cond)
    return (out.float().unsqueeze(1) - targets).abs().mean(dim=(0, 2, 3, 4)).sum()


class MeanDenoiser:
    r"""The per-pixel mean of several denoisers, :math:`\bar T(y) = \frac{1}{J}\sum_j T_j(y)` (a teacher
    ensemble, scored like one denoiser)."""

    def __init__(self, denoisers: list[Denoiser]) -> None:
        self.denoisers = denoisers

    def denoise(self, y: np.ndarray) -> np.ndarray:
        return np.mean([d.denoise(y) for d in self.denoisers], axis=0, dtype=np.float32)


def ensemble_targets(cfg: DistillConfig, env, files: list[Path], cache_dir: Path,
                     on_teacher: Callable[[int, int, Path, bool], None] | None = None
                     ) -> tuple[list[np.ndarray], list[np.ndarray], int, list[Denoiser], list[dict]]:
    r"""Targets of ``cfg.teacher`` and the ``cfg.ensemble`` teachers: each of the K targets is the mean
    over the J teachers, :math:`T_k(y) = \frac{1}{J}\sum_j T_k^{(j)}(y)`, each teacher's outputs cached
    under its own key. Returns (noisy, targets, outputs computed now, the teachers' denoisers, their
    file facts)."""
    paths = [cfg.teacher, *cfg.ensemble]
    noisy, total, computed, dens, facts = [], None, 0, [], []
    for j, path in enumerate(paths):
        loaded = load_weights(path)
        if loaded.model.role.one_pass:
            raise ConfigError(f"{loaded.path}: the teacher must be a blind-spot DBSNl, not a distilled student")
        den = Denoiser(loaded.model, input_scale=loaded.input_scale, refine=cfg.teacher_refine,
                       device=env.device, precision=env.precision)
        sha = file_hash(loaded.path)
        adaptive = None
        if "auto" in cfg.targets:
            adaptive = AdaptiveDenoiser(den, light_path_denoiser(loaded, device=env.device, precision=env.precision))
        report = None if on_teacher is None else \
            (lambda i, n, f, c, j=j: on_teacher(j * n + i, len(paths) * n, f, c))
        noisy, out, c = teacher_targets(den, f"{sha[:12]}-{cfg.teacher_refine}-{env.precision}", files,
                                        cache_dir, targets=tuple(cfg.targets), adaptive=adaptive, on_image=report,
                                        self_ensemble=cfg.self_ensemble)
        total = out if total is None else [a + b for a, b in zip(total, out)]
        computed += c
        dens.append(den)
        facts.append({"file": loaded.path.name, "sha256": sha, "arch": loaded.model.arch})
    if len(paths) > 1:
        total = [t / len(paths) for t in total]
    return noisy, total, computed, dens, facts


def _widen(old: torch.Tensor, init: torch.Tensor) -> torch.Tensor:
    """``old`` (a convolution's weight ``(out, in, k, k)`` or bias) inside the wider ``init``: its channels
    first, the new output channels as initialised, and every old output's weight on a new input zero."""
    w = init.clone()
    if old.dim() == 1:
        w[:old.shape[0]] = old
        return w
    o, i = old.shape[:2]
    w[:o, :i] = old
    w[:o, i:] = 0
    return w


def _init_student(model: StudentUNet, path: Path) -> None:
    """Load a student's weights into ``model``, which computes exactly what that student computes:

    * an unconditioned student into a conditional one: the noise maps' input weights zero (the maps come
      after the image in the head's input, so this is the widening below);
    * a shallower student (at most as many residual blocks per level: ``--student-blocks``) into a deeper
      one: its blocks first in each stage, each added block the identity (its second convolution zero:
      :math:`h + 0`);
    * a narrower student (at most as many channels per level: ``--student-ch``) into a wider one: its
      channels first in every layer, the new channels computed from random weights but read by no old
      channel (every old output's weight on a new input is zero; the skips add, the up-samplings' shuffles
      keep a channel's four cells together, so "first" holds in every layer), and the tail's weights on
      them zero, so the output is the narrower student's until training moves them;

    so a capacity study starts from the same function.
    """
    init = load_weights(path)
    mine, theirs = model.arch, init.model.arch
    fits = mine.get("in_ch") == theirs.get("in_ch") and len(theirs.get("ch", ())) == len(mine["ch"]) and \
        all(c0 <= c1 for c0, c1 in zip(theirs["ch"], mine["ch"]))
    deeper = len(theirs.get("blocks", ())) == len(mine["blocks"]) and \
        all(b0 <= b1 for b0, b1 in zip(theirs["blocks"], mine["blocks"]))
    if init.model.kind != model.kind or not fits or not deeper or init.model.cond_ch not in (0, model.cond_ch):
        raise CheckpointError(f"{path}: not a student with the architecture {model.arch} "
                              "(or fewer channels or blocks)")
    sd = init.model.state_dict()
    for k, v in model.state_dict().items():
        if k not in sd:                                  # an added block: as initialised, its last conv zero
            sd[k] = torch.zeros_like(v) if k.split(".")[-2] == "2" and ".body." in k else v
        elif sd[k].shape != v.shape:                     # a wider layer, or the head given the noise maps
            sd[k] = _widen(sd[k].to(v.dtype), v)
    model.load_state_dict(sd)


def _self_targets(cfg: DistillConfig, env, files: list[Path], noisy: list[np.ndarray], cache_dir: Path
                  ) -> tuple[Callable[[int], np.ndarray] | None, dict | None]:
    """``cfg.self_targets``: image i's heavy-path target (:func:`student_target`, cached as the teacher's are,
    under the student's hash, ``n`` and ``told``) as a function of i, and the student's file facts; (None, None)
    without it."""
    if cfg.self_targets is None:
        return None, None
    loaded = load_weights(cfg.self_targets)
    den = make_denoiser(loaded.model, input_scale=loaded.input_scale, device=env.device, precision=env.precision,
                        weights=str(loaded.path))
    if not (loaded.model.role.one_pass and getattr(den, "conditional", False)):
        raise ConfigError(f"{loaded.path}: --self-targets takes a noise-conditional one-pass student")
    student = AdaptiveDenoiser(den, den)
    sha = file_hash(loaded.path)
    n, told = cfg.self_targets_ensemble, cfg.self_targets_told
    key = f"self-{sha[:12]}-x{n}-t{told:g}-{env.precision}"

    def target(i: int) -> np.ndarray:
        entry = cache_dir / f"{Path(files[i]).stem}-{file_hash(files[i])[:16]}-{key}.npy"
        return _cached_target(entry, noisy[i].shape, lambda: student_target(student, noisy[i], n, told))[0]
    return target, {"file": loaded.path.name, "sha256": sha, "ensemble": n, "told": told}


def _onepass_pairs(cfg: DistillConfig, env, files: list[Path], noisy: list[np.ndarray], heavy: list[np.ndarray],
                   cache_dir: Path) -> tuple[list[np.ndarray], dict]:
    """The conditional student's entries (``onepass``): real images with their path's target, then the
    clean photos (at each of ``clean_scales``) and their synthetic noisy versions, listed so they make
    ``synthetic_share`` of the draws."""
    light = load_weights(cfg.light_teacher)
    if light.model.role.one_pass:
        raise ConfigError(f"{light.path}: the light teacher must be a blind-spot DBSNl, not a distilled student")
    light_den = light_path_denoiser(light, device=env.device, precision=env.precision)
    light_sha = file_hash(light.path)
    key = f"{light_sha[:12]}-pd1-none-{env.precision}"

    def light_cache(i: int, compute: Callable[[], np.ndarray]) -> np.ndarray:
        entry = cache_dir / f"{Path(files[i]).stem}-{file_hash(files[i])[:16]}-{key}.npy"
        return _cached_target(entry, noisy[i].shape, compute)[0]

    heavy_final, self_facts = _self_targets(cfg, env, files, noisy, cache_dir)
    real, paths = onepass_entries(noisy, heavy, light_den, light_cache, tuple(cfg.target_blend), heavy_final)
    syn = synthetic_entries(cfg.clean, cfg.synthetic, cfg.seed, cfg.recolour, tuple(cfg.synthetic_levels),
                            tuple(cfg.clean_scales), cfg.fresh_noise, cfg.synthetic_kinds) if cfg.clean else []
    real_times, repeat = mix_repeats(len(real), len(syn), cfg.synthetic_share)
    facts = {"paths": paths, "light_teacher": {"file": light.path.name, "sha256": light_sha},
             "clean_entries": len(syn), "synthetic_per_clean": cfg.synthetic, "fresh_noise": cfg.fresh_noise,
             "synthetic_kinds": cfg.synthetic_kinds, "self_targets": self_facts,
             "recolour": cfg.recolour, "target_blend": list(cfg.target_blend), "repeat": repeat, "real_repeat": real_times}
    return real * real_times + syn * repeat, facts


def _sum_over_ranks(n: int, env) -> int:
    """``n`` summed over the processes of the torchrun group (on the device NCCL needs)."""
    t = torch.tensor([n], dtype=torch.int64, device=env.device if env.device.type == "cuda" else "cpu")
    torch.distributed.all_reduce(t)
    return int(t.item())


def distill(cfg: DistillConfig, *, resume: bool = False,
            on_teacher: Callable[[int, int, Path, bool], None] | None = None,
            on_step: Callable[[int, int, float, float], None] | None = None,
            on_validate: Callable[[int, dict], None] | None = None,
            stop_after: Optional[int] = None) -> TrainResult:
    """Run (or resume) a distillation described by ``cfg``; arguments as ``trainer.train`` plus
    ``on_teacher`` (progress of the teacher pass, see ``teacher_targets``).

    Raises:
        ConfigError, InputError, CheckpointError: bad configuration, data or weights.
    """
    env = setup(cfg)
    files = find_noisy_images_all(cfg.data)
    val = load_validation_set(cfg)
    cache_dir = Path(cfg.cache) if cfg.cache is not None else Path(cfg.out) / "teacher_cache"
    report = on_teacher if env.rank == 0 else None
    if env.world > 1:                                 # each rank fills its share of the cache, then reads it all
        share = ensemble_targets(cfg, env, files[env.rank::env.world], cache_dir, report)[2]
        torch.distributed.barrier()
        report = None
    noisy, targets, computed, dens, facts = ensemble_targets(cfg, env, files, cache_dir, report)
    if env.world > 1:
        computed = _sum_over_ranks(share, env)
    teacher = dens[0] if len(dens) == 1 else MeanDenoiser(dens)
    teacher_val = mean_scores(teacher, val) if val is not None and env.rank == 0 else None
    del teacher, dens

    torch.manual_seed(cfg.seed)
    cond_ch = COND_CH if cfg.condition else 0
    model = StudentUNet(ch=cfg.student.ch, blocks=cfg.student.blocks, cond_ch=cond_ch)
    if cfg.init is not None:
        _init_student(model, cfg.init)
    onepass = None
    if cfg.condition:
        pairs, onepass = _onepass_pairs(cfg, env, files, noisy, targets, cache_dir)
    else:
        pairs = [np.concatenate([y, t], axis=2) for y, t in zip(noisy, targets)]
    del noisy, targets
    data = NoisyCrops([], cfg.patch, cfg.batch, cfg.seed, arrays=pairs)

    def loss(net: torch.nn.Module, batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return distill_loss(net, batch, precision=env.precision, channels_last=cfg.channels_last,
                            recharge_p=cfg.recharge, gen=gen, cond_ch=cond_ch)

    summary = {"images": len(files), "onepass": onepass, "teacher": {**facts[0], "refine": cfg.teacher_refine, "val": teacher_val,
                                                   "targets": list(cfg.targets), "recharge": cfg.recharge,
                                                   "self_ensemble": cfg.self_ensemble,
                                                   "ensemble": facts[1:]},
               "teacher_outputs_computed": computed}
    recipe = Recipe(model, data, loss,
                    validate=(lambda m: validate_student(m, val, env.device, env.precision)) if val is not None
                    else None, best_key="psnr", metrics=("psnr", "ssim"), summary=summary)
    result = fit(cfg, recipe, env, resume=resume, on_step=on_step, on_validate=on_validate, stop_after=stop_after)
    result.teacher_val = teacher_val
    return result
