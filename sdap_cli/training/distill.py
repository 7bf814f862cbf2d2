r"""Distillation: a StudentUNet :math:`g_\phi` learns the teacher's denoising, noisy -> teacher output.

1. The teacher (a DBSNl with PD-2 + ``refine``, usually E) denoises every training image once, whole
   and tiled exactly like ``sdap denoise``; each output is cached on disk as float16 ``.npy`` under a
   key of (image content hash, teacher file hash, refine), so a restarted or repeated run reuses it.
   Whole images rather than crops: a crop denoised alone would carry border effects the student
   should not learn, and any crop of the cached image is then free.
2. The student minimises :math:`\mathcal{L} = \mathrm{mean}|g_\phi(y) - T(y)|` on random aligned crops
   (flips, rot90) of the pairs :math:`(y, T(y))`, with the loop, validation, keep-best and resume of
   ``sdap train`` (``loop.fit``).

The targets themselves (``--targets``, ``--self-ensemble``, ``--self-targets``) are made and cached in
``training/targets.py``.

Teacher ensemble (``--ensemble``): with J teachers each target is their per-pixel mean,
:math:`T_k(y) = \frac{1}{J}\sum_j T_k^{(j)}(y)`. Networks trained apart err apart, so the mean is better
than each (on the 5 SIDD blocks, the 96/7 and 48/5 teachers with E: 32.21 and 31.44 dB alone, 32.59
averaged; ``benchmarks/target_quality.py``); the sum of L1 over targets would instead pull towards their
median, which gains far less there.

Images and targets are in [0, 1].
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from ..errors import CheckpointError, ConfigError
from ..inference.adaptive import AdaptiveDenoiser
from ..inference.checkpoints import load_weights
from ..inference.denoiser import Denoiser, make_denoiser
from ..inference.denoisers import light_path_denoiser
from ..inference.noise import COND_CH
from ..method.student import StudentUNet
from ..training_config import DistillConfig
from .datasets import NoisyCrops, find_noisy_images_all
from .loop import Recipe, TrainResult, fit, setup
from .onepass import mix_repeats, onepass_entries, synthetic_entries
from .targets import (DIHEDRAL, TARGETS, cached_target, file_hash, self_ensemble_target, student_target,
                      target_image, teacher_targets)
from .trainer import autocast_context
from .validation import load_validation_set, mean_scores, validate_student

__all__ = ["distill", "teacher_targets", "ensemble_targets", "MeanDenoiser", "distill_loss", "recharge",
           "target_image", "self_ensemble_target", "student_target", "TARGETS", "DIHEDRAL", "validate_student",
           "mean_scores", "file_hash"]   # the targets' names stay importable from here (training/targets.py)


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
        return cached_target(entry, noisy[i].shape, lambda: student_target(student, noisy[i], n, told))[0]
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
        return cached_target(entry, noisy[i].shape, compute)[0]

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
