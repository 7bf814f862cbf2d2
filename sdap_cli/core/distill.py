r"""Distillation: a StudentUNet :math:`g_\phi` learns the teacher's denoising, noisy -> teacher output.

1. The teacher (a DBSNl with PD-2 + ``refine``, usually E) denoises every training image once, whole
   and tiled exactly like ``sdap denoise``; each output is cached on disk as float16 ``.npy`` under a
   key of (image content hash, teacher file hash, refine), so a restarted or repeated run reuses it.
   Whole images rather than crops: a crop denoised alone would carry border effects the student
   should not learn, and any crop of the cached image is then free.
2. The student minimises :math:`\mathcal{L} = \mathrm{mean}|g_\phi(y) - T(y)|` on random aligned crops
   (flips, rot90) of the pairs :math:`(y, T(y))`, with the loop, validation, keep-best and resume of
   ``sdap train`` (``loop.fit``).

Images and targets are in [0, 1].
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from ..config import DistillConfig
from ..errors import CheckpointError, ConfigError
from . import images
from .atomic import atomic_write
from .checkpoints import load_weights
from .datasets import NoisyCrops
from .inference import Denoiser
from .student import StudentUNet
from .loop import Recipe, TrainResult, fit, setup
from .trainer import autocast_context, find_noisy_images_all
from .validation import load_validation_set, mean_scores, validate_student

__all__ = ["distill", "teacher_targets", "distill_loss", "validate_student", "mean_scores", "file_hash"]


def file_hash(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def teacher_targets(teacher: Denoiser, teacher_key: str, files: list[Path], cache_dir: Path, *,
                    on_image: Callable[[int, int, Path, bool], None] | None = None
                    ) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """Noisy images and the teacher's outputs for them, float32 ``(H, W, 3)`` in [0, 1].

    Outputs are read from ``cache_dir/<stem>-<image hash>-<teacher_key>.npy`` when present, else
    computed and written there atomically. ``on_image(i, n, path, was_cached)`` reports each image.
    Returns (noisy, targets, number computed now).
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    noisy, targets, computed = [], [], 0
    for i, f in enumerate(files):
        y = images.read_image(f).rgb
        entry = cache_dir / f"{Path(f).stem}-{file_hash(f)[:16]}-{teacher_key}.npy"
        t = None
        if entry.is_file():
            try:
                t = np.load(entry).astype(np.float32)
            except (OSError, ValueError):
                t = None                               # a damaged entry is recomputed
            if t is not None and t.shape != y.shape:
                t = None
        cached = t is not None
        if t is None:
            t = teacher.denoise(y).astype(np.float16)   # what the cache holds, so runs see equal targets
            atomic_write(entry, lambda fh: np.save(fh, t))
            computed += 1
            t = t.astype(np.float32)
        noisy.append(y)
        targets.append(t)
        if on_image is not None:
            on_image(i + 1, len(files), Path(f), cached)
    return noisy, targets, computed


def distill_loss(net: torch.nn.Module, batch: torch.Tensor, *, precision: str = "fp32",
                 channels_last: bool = True) -> torch.Tensor:
    r""":math:`\mathrm{mean}|g_\phi(y) - T(y)|` for ``batch`` = cat([y, T(y)], dim=1), ``(B, 2C, P, P)``."""
    c = batch.shape[1] // 2
    y, target = batch[:, :c], batch[:, c:]
    if channels_last:
        y = y.contiguous(memory_format=torch.channels_last)
    with autocast_context(batch.device, precision):
        out = net(y)
    return (out.float() - target).abs().mean()


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
    loaded = load_weights(cfg.teacher)
    if loaded.model.role != "teacher":
        raise ConfigError(f"{loaded.path}: the teacher must be a blind-spot DBSNl, not a distilled student")
    teacher = Denoiser(loaded.model, input_scale=loaded.input_scale, refine=cfg.teacher_refine,
                       device=env.device, precision=env.precision)
    teacher_sha = file_hash(loaded.path)
    teacher_key = f"{teacher_sha[:12]}-{cfg.teacher_refine}-{env.precision}"
    cache_dir = Path(cfg.cache) if cfg.cache is not None else Path(cfg.out) / "teacher_cache"
    if env.world > 1 and env.rank != 0:
        torch.distributed.barrier()                   # rank 0 fills the cache first
    noisy, targets, computed = teacher_targets(teacher, teacher_key, files, cache_dir,
                                               on_image=on_teacher if env.rank == 0 else None)
    if env.world > 1 and env.rank == 0:
        torch.distributed.barrier()
    teacher_val = mean_scores(teacher, val) if val is not None and env.rank == 0 else None
    del teacher

    torch.manual_seed(cfg.seed)
    model = StudentUNet(ch=cfg.student.ch, blocks=cfg.student.blocks)
    if cfg.init is not None:
        init = load_weights(cfg.init)
        if init.model.kind != model.kind or init.model.arch != model.arch:
            raise CheckpointError(f"{cfg.init}: not a student with the architecture {model.arch}")
        model.load_state_dict(init.model.state_dict())
    pairs = [np.concatenate([y, t], axis=2) for y, t in zip(noisy, targets)]
    data = NoisyCrops([], cfg.patch, cfg.batch, cfg.seed, arrays=pairs)

    def loss(net: torch.nn.Module, batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return distill_loss(net, batch, precision=env.precision, channels_last=cfg.channels_last)

    summary = {"images": len(files), "teacher": {"file": loaded.path.name, "sha256": teacher_sha,
                                                   "arch": loaded.model.arch, "refine": cfg.teacher_refine,
                                                   "val": teacher_val},
               "teacher_outputs_computed": computed}
    recipe = Recipe(model, data, loss,
                    validate=(lambda m: validate_student(m, val, env.device, env.precision)) if val is not None
                    else None, best_key="psnr", metrics=("psnr", "ssim"), summary=summary)
    result = fit(cfg, recipe, env, resume=resume, on_step=on_step, on_validate=on_validate, stop_after=stop_after)
    result.teacher_val = teacher_val
    return result
