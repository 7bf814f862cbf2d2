r"""SDAP training: RSG sub-samples, one batched forward, cyclic L1; validation, checkpoints, resume.

One step on a noisy batch :math:`y` of shape ``(B, C, P, P)`` (P a multiple of p):

1. :math:`y_1..y_{p^2}` = RSG(y, p) (``sampler.rsg_sample``), each ``(B, C, P/p, P/p)``;
2. all :math:`p^2 B` sub-images go through :math:`f_\theta` in one batched forward (the reference runs
   p^2 separate forwards; the result is the same because DBSNl has no batch-coupled layers);
3. :math:`\mathcal{L} = \sum_j \mathrm{mean}|f_\theta(y_j) - y_{j+1}|` (``loss.cyclic_l1``).

Determinism: crops depend on (seed, step, i) and RSG permutations on (seed, step), so a run resumed
from ``state.pt`` takes exactly the steps of an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from ..config import TrainConfig
from ..errors import CheckpointError, ConfigError
from .checkpoints import load_weights, save_weights
from .datasets import NoisyCrops, find_noisy_images
from .dbsnl import DBSNl
from .atomic import atomic_write
from .device import choose_device, pick_precision
from .loss import cyclic_l1
from .sampler import rsg_sample
from .validation import load_validation_set, validate

__all__ = ["sdap_loss", "autocast_context", "train", "fit", "setup", "Recipe", "Setup", "TrainResult", "validate"]


def autocast_context(device: torch.device, precision: str):
    """Autocast for ``precision`` in {'fp32', 'bf16', 'fp16'} on ``device``; fp32 is a no-op."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def sdap_loss(model: torch.nn.Module, y: torch.Tensor, p: int = 5, *,
              generator: torch.Generator | None = None, precision: str = "fp32",
              channels_last: bool = True) -> torch.Tensor:
    """Cyclic sample-difference loss of ``model`` on the noisy batch ``y`` (``(B, C, P, P)``, [0, 1])."""
    subs = rsg_sample(y, p, generator=generator)            # (K, B, C, h, w)
    k, b, c, h, w = subs.shape
    x = subs.reshape(k * b, c, h, w)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with autocast_context(y.device, precision):
        out = model(x)
    return cyclic_l1(out.float().reshape(k, b, c, h, w), subs)


@dataclass
class TrainResult:
    out: Path
    iterations: int
    seconds: float
    best: Optional[dict] = None
    history: list[dict] = field(default_factory=list)
    best_path: Optional[Path] = None
    last_path: Optional[Path] = None
    teacher_val: Optional[dict] = None          # distillation: the teacher's validation metrics


def _lr_at(cfg, step: int) -> float:
    if cfg.schedule == "cosine":
        return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * step / cfg.iterations))
    return cfg.lr


def _dist() -> tuple[int, int]:
    """(rank, world size) when launched by torchrun, else (0, 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return (int(os.environ.get("RANK", "0")), world) if world > 1 else (0, 1)


class _StepIndices(torch.utils.data.Sampler):
    """Dataset indices for steps [start, stop): (step * world + rank) * batch + i."""

    def __init__(self, start: int, stop: int, batch: int, rank: int, world: int) -> None:
        self.start, self.stop, self.batch, self.rank, self.world = start, stop, batch, rank, world

    def __len__(self) -> int:
        return (self.stop - self.start) * self.batch

    def __iter__(self):
        for s in range(self.start, self.stop):
            base = (s * self.world + self.rank) * self.batch
            yield from range(base, base + self.batch)


@dataclass
class Recipe:
    """What a run optimises; ``fit`` owns the rest (loop, learning rate, logs, checkpoints, resume).

    ``sdap train`` builds one with the SDAP loss on a DBSNl, ``sdap distill`` one with the L1 to the
    teacher's outputs on a StudentUNet.
    """

    model: torch.nn.Module
    """The network to train, initialised, on the CPU (it has ``arch`` and ``kind``)."""
    data: torch.utils.data.Dataset
    """Index ``step * batch + i`` -> sample i of that step (a pure function, for exact resume)."""
    loss: Callable[[torch.nn.Module, torch.Tensor, torch.Generator], torch.Tensor]
    """``loss(net, batch, generator)`` on the device, under the run's precision."""
    validate: Optional[Callable[[torch.nn.Module], dict]] = None
    """Validation metrics of the (unwrapped) model; None: no validation."""
    best_key: str = "psnr"
    """Metric that selects ``best.safetensors`` (higher is better)."""
    metrics: tuple[str, ...] = ("psnr", "ssim")
    """Validation metrics logged as ``val_<name>`` columns of ``train_log.csv``."""
    summary: dict = field(default_factory=dict)
    """Extra facts stored in the weights' ``training`` metadata."""


@dataclass
class Setup:
    """Where a run computes: process rank and count under torchrun, device, resolved precision."""

    rank: int
    world: int
    device: torch.device
    precision: str


def setup(cfg) -> Setup:
    """Initialise torch.distributed under torchrun, pick the device, threads and precision."""
    rank, world = _dist()
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and cfg.device in ("auto", "cuda") else "gloo"
        torch.distributed.init_process_group(backend)
    device = choose_device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    return Setup(rank, world, device, pick_precision(cfg.precision, device))


def train(cfg: TrainConfig, *, resume: bool = False,
          on_step: Callable[[int, int, float, float], None] | None = None,
          on_validate: Callable[[int, dict], None] | None = None,
          stop_after: int | None = None) -> TrainResult:
    """Run (or resume) an SDAP training described by ``cfg``.

    Args:
        resume: continue from ``<out>/state.pt`` (model, optimizer, step, best, history, RNG states).
        on_step: ``on_step(step, total, loss, lr)`` after each step (rank 0 only).
        on_validate: ``on_validate(step, metrics)`` after each validation.
        stop_after: stop (after saving the state) once this many steps are done; for tests and
            schedulers with time limits.

    Raises:
        ConfigError, InputError, CheckpointError: bad configuration, data or weights.
    """
    env = setup(cfg)
    files = find_noisy_images_all(cfg.data)
    val = load_validation_set(cfg)
    torch.manual_seed(cfg.seed)
    model = DBSNl(**cfg.model.model_dump())
    if cfg.init is not None:
        init = load_weights(cfg.init)
        if init.input_scale != 1.0:
            raise CheckpointError(f"{cfg.init}: AP-BSN weights (0-255 input) cannot initialise SDAP training")
        if init.model.kind != model.kind or init.model.arch != model.arch:
            raise ConfigError(f"{cfg.init}: architecture {init.model.arch} differs from the config's {model.arch}")
        model.load_state_dict(init.model.state_dict())
    data = NoisyCrops(files, cfg.patch, cfg.batch, cfg.seed)

    def loss(net: torch.nn.Module, y: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return sdap_loss(net, y, cfg.p, generator=gen, precision=env.precision, channels_last=cfg.channels_last)

    recipe = Recipe(model, data, loss,
                    validate=(lambda m: validate(m, val, env.device, env.precision)) if val is not None else None,
                    best_key="psnr_e", metrics=("psnr", "ssim", "psnr_e", "ssim_e"),
                    summary={"images": len(files), "cached_images": data.cache is not None,
                             "decode_s_first_image": round(data.decode_seconds, 4)})
    return fit(cfg, recipe, env, resume=resume, on_step=on_step, on_validate=on_validate, stop_after=stop_after)


def fit(cfg, recipe: Recipe, env: Setup, *, resume: bool = False,
        on_step: Callable[[int, int, float, float], None] | None = None,
        on_validate: Callable[[int, dict], None] | None = None,
        stop_after: int | None = None) -> TrainResult:
    """The training loop shared by ``sdap train`` and ``sdap distill``.

    ``cfg`` gives out, iterations, batch, lr, schedule, lr_min, val_every, checkpoint_every, log_every,
    seed, channels_last, compile and workers. Writes ``<out>/config.yaml``, ``train_log.csv``,
    ``state.pt`` (resume), ``best``/``last``/``step_N`` ``.safetensors``; see ``train`` for the arguments.
    """
    rank, world, device, precision = env.rank, env.world, env.device, env.precision
    out = Path(cfg.out)
    state_path = out / "state.pt"
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    model = recipe.model
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    start, best, history = 0, None, []
    if resume:
        if not state_path.is_file():
            raise CheckpointError(f"{state_path}: nothing to resume (no state saved in {out})")
        st = torch.load(state_path, map_location="cpu", weights_only=False)
        saved_arch = st.get("arch", st["config"].get("model"))
        if saved_arch != model.arch:
            raise ConfigError(f"{state_path}: saved model {saved_arch} differs from the config's {model.arch}")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        start, best, history = st["step"], st["best"], st["history"]
        torch.set_rng_state(st["torch_rng"])
        if device.type == "cuda" and st.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(st["cuda_rng"], device)
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                        else None)
    if cfg.compile:
        net = torch.compile(net)
    if rank == 0:
        (out / "config.yaml").write_text(_yaml(cfg))

    stop = cfg.iterations if stop_after is None else min(cfg.iterations, stop_after)
    loader = torch.utils.data.DataLoader(
        recipe.data, batch_size=cfg.batch, sampler=_StepIndices(start, stop, cfg.batch, rank, world),
        num_workers=cfg.workers, pin_memory=device.type == "cuda", persistent_workers=False,
        prefetch_factor=4 if cfg.workers else None)
    if rank == 0 and resume and (out / "train_log.csv").is_file():
        _truncate_log(out / "train_log.csv", start)      # drop rows a killed run wrote after its last state
    log_f = open(out / "train_log.csv", "a", newline="") if rank == 0 else None
    log = csv.writer(log_f) if log_f else None
    n_m = len(recipe.metrics)
    if log_f is not None and log_f.tell() == 0:
        log.writerow(["step", "loss", "lr", "it_per_s", "elapsed_s"] + [f"val_{k}" for k in recipe.metrics])
    tb = _tensorboard(out) if rank == 0 else None

    def save_state(step: int) -> None:
        if rank != 0:
            return
        st = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "best": best,
              "history": history, "config": cfg.model_dump(mode="json"), "arch": model.arch,
              "torch_rng": torch.get_rng_state(),
              "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
        atomic_write(state_path, lambda fh: torch.save(st, fh))

    def summary(step: int) -> dict:
        return {"iterations": step, "data": [str(d) for d in cfg.data], "patch": cfg.patch,
                "batch": cfg.batch * world, "lr": cfg.lr, "schedule": cfg.schedule, "seed": cfg.seed,
                "precision": precision, "device": str(device), "best": best, **recipe.summary}

    # weights are stored in 16 bits; a network trained under bf16 autocast is stored in bf16, which is
    # exactly what bf16 inference computes with (fp16 rounding shifted such a model by ~0.1 dB)
    store = torch.bfloat16 if precision == "bf16" else torch.float16
    t0 = time.perf_counter()
    tw, running, n_run = time.perf_counter(), 0.0, 0
    step = start
    model.train()
    previous_term = _raise_on_sigterm()
    try:
        for y in loader:
            y = y.to(device, non_blocking=True)
            lr = _lr_at(cfg, step)
            for g in opt.param_groups:
                g["lr"] = lr
            gen = torch.Generator(device=device).manual_seed(cfg.seed * 1_000_003 + step * world + rank)
            loss = recipe.loss(net, y, gen)
            if not torch.isfinite(loss):
                raise ConfigError(f"loss became {loss.item()} at step {step + 1}; lower --lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            running += loss.item()
            n_run += 1
            if rank == 0 and on_step is not None:
                on_step(step, cfg.iterations, loss.item(), lr)
            row = None
            if step % cfg.log_every == 0 or step == stop:
                now = time.perf_counter()
                row = [step, running / n_run, lr, n_run / max(now - tw, 1e-9), now - t0] + [""] * n_m
                if tb is not None:
                    tb.add_scalar("loss", running / n_run, step)
                tw, running, n_run = now, 0.0, 0
            if recipe.validate is not None and (step % cfg.val_every == 0 or step == cfg.iterations) and rank == 0:
                m = recipe.validate(model)
                model.train()
                m["step"] = step
                history.append(m)
                if on_validate is not None:
                    on_validate(step, m)
                if best is None or m[recipe.best_key] > best[recipe.best_key]:
                    best = dict(m)
                    save_weights(out / "best.safetensors", model, training=summary(step), dtype=store)
                if row is None:
                    now = time.perf_counter()
                    row = [step, "", lr, "", now - t0] + [""] * n_m
                row[5:] = [f"{m[k]:.5f}" if k.startswith("ssim") else f"{m[k]:.4f}" for k in recipe.metrics]
                if tb is not None:
                    for k in recipe.metrics:
                        tb.add_scalar(f"val/{k}", m[k], step)
            if row is not None and log is not None:
                log.writerow(row)
                log_f.flush()
            if step % cfg.checkpoint_every == 0:
                save_state(step)
                if rank == 0:
                    save_weights(out / f"step_{step:07d}.safetensors", model, training=summary(step), dtype=store)
            if step >= stop:
                break
    except KeyboardInterrupt:                    # Ctrl-C or SIGTERM: resumable state plus usable weights
        save_state(step)
        if rank == 0:
            save_weights(out / "last.safetensors", model, training=summary(step), dtype=store)
        raise
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
        if log_f is not None:
            log_f.close()
        if tb is not None:
            tb.close()
    save_state(step)
    result = TrainResult(out, step, time.perf_counter() - t0, best, history)
    if rank == 0:
        result.last_path = save_weights(out / "last.safetensors", model, training=summary(step), dtype=store)
        result.best_path = out / "best.safetensors" if best is not None else result.last_path
    if world > 1:
        torch.distributed.barrier()
    return result


def _raise_on_sigterm():
    """Batch schedulers stop jobs with SIGTERM: turn it into KeyboardInterrupt so the state is saved.
    Returns the previous handler (None when not in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    return signal.signal(signal.SIGTERM, handler)


def _truncate_log(path: Path, step: int) -> None:
    rows = path.read_text().splitlines(keepends=True)
    keep = [r for i, r in enumerate(rows) if i == 0 or int(r.split(",", 1)[0]) <= step]
    path.write_text("".join(keep))


def find_noisy_images_all(data: list[str]) -> list[Path]:
    files: list[Path] = []
    for d in data:
        files += find_noisy_images(d)
    return files


def _yaml(cfg) -> str:
    import yaml

    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:                                               # noqa: BLE001 - optional
        return None
    return SummaryWriter(str(out / "tb"))
