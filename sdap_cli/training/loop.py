r"""The training loop shared by `sdap train` and `sdap distill`: DDP, compile, data loader, validation with
keep-best, checkpoints, resume and SIGTERM (the learning rate and weight average over steps:
``schedule``; the CSV and TensorBoard logs: ``runlog``).

What a run optimises comes in a :class:`Recipe` (network, data, loss, validation); :func:`fit` runs it
as named steps of :class:`_Run`. Determinism: sample i of step s and the step's random generator are
pure functions of (seed, s, i, rank), so a run resumed from ``state.pt`` takes exactly the steps of an
uninterrupted one.

With a weight average (``ema`` > 0; ``schedule.ema_decay``) validation, ``best``, ``last`` and the numbered
files hold the average, the optimizer keeps training the weights.
"""

from __future__ import annotations

import copy
import datetime
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch

from ..errors import CheckpointError, ConfigError, SdapError
from ..inference.checkpoints import save_weights
from ..inference.device import DTYPES, choose_device, pick_precision
from ..io.atomic import atomic_write
from .runlog import RunLog
from .schedule import ema_decay, lr_at

__all__ = ["Recipe", "Setup", "setup", "TrainResult", "fit", "grad_scaler", "DIST_TIMEOUT"]

DIST_TIMEOUT = datetime.timedelta(hours=6)
"""How long a process of a torchrun group waits in a collective for the others (PyTorch's default is 10
minutes for NCCL): long enough for a cold teacher cache of ``sdap distill`` (each rank computes its share
of the targets, then all wait for the slowest) and for rank 0's validations, on large folders."""


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
        torch.distributed.init_process_group(backend, timeout=DIST_TIMEOUT)
    device = choose_device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    return Setup(rank, world, device, pick_precision(cfg.precision, device))


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """Loss scaling for fp16 training (fp16 gradients flush to zero below 6e-8 and overflow above 65504; the
    scaler multiplies the loss, unscales the gradients, skips a step whose gradients overflowed and adapts
    its scale); a pass-through for fp32 and bf16 (bf16 has fp32's range)."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


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


class _Run:
    """One run's state (model, optimizer, step, best, history, log) and the steps :func:`fit` calls."""

    def __init__(self, cfg, recipe: Recipe, env: Setup, resume: bool, stop_after: int | None) -> None:
        self.cfg, self.recipe, self.env = cfg, recipe, env
        self.out = Path(cfg.out)
        self.state_path = self.out / "state.pt"
        if env.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
        self.model = recipe.model
        self.model.to(env.device)
        if cfg.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
        self.scaler = grad_scaler(env.device, env.precision)
        self.average = copy.deepcopy(self.model).requires_grad_(False) if cfg.ema > 0 else None
        self.start, self.best, self.history = 0, None, []
        if resume:
            self._resume()
        self.net = self._wrap()
        if env.rank == 0:
            (self.out / "config.yaml").write_text(_yaml(cfg))
        self.stop = cfg.iterations if stop_after is None else min(cfg.iterations, stop_after)
        # weights are stored in 16 bits; a network trained under bf16 autocast is stored in bf16, which is
        # exactly what bf16 inference computes with (fp16 rounding shifted such a model by ~0.1 dB)
        self.store = DTYPES["bf16" if env.precision == "bf16" else "fp16"]

    def _resume(self) -> None:
        if not self.state_path.is_file():
            raise CheckpointError(f"{self.state_path}: nothing to resume (no state saved in {self.out})")
        st = torch.load(self.state_path, map_location="cpu", weights_only=False)
        saved_arch = st.get("arch", st["config"].get("model"))
        if saved_arch != self.model.arch:
            raise ConfigError(f"{self.state_path}: saved model {saved_arch} differs from the config's "
                              f"{self.model.arch}")
        self.model.load_state_dict(st["model"])
        if self.average is not None:
            self.average.load_state_dict(st.get("average") or st["model"])
        self.opt.load_state_dict(st["optimizer"])
        if st.get("scaler"):
            self.scaler.load_state_dict(st["scaler"])
        self.start, self.best, self.history = st["step"], st["best"], st["history"]
        torch.set_rng_state(st["torch_rng"])
        if self.env.device.type == "cuda" and st.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(st["cuda_rng"], self.env.device)

    def _wrap(self) -> torch.nn.Module:
        """DistributedDataParallel under torchrun, then torch.compile when asked."""
        net, device = self.model, self.env.device
        if self.env.world > 1:
            net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        return torch.compile(net) if self.cfg.compile else net

    def loader(self) -> torch.utils.data.DataLoader:
        cfg, env = self.cfg, self.env
        return torch.utils.data.DataLoader(
            self.recipe.data, batch_size=cfg.batch,
            sampler=_StepIndices(self.start, self.stop, cfg.batch, env.rank, env.world),
            num_workers=cfg.workers, pin_memory=env.device.type == "cuda", persistent_workers=False,
            prefetch_factor=4 if cfg.workers else None)

    def train_step(self, y: torch.Tensor, step: int) -> tuple[float, float]:
        """One optimizer step on the batch of step ``step`` (0-based); returns (loss, lr)."""
        cfg, env = self.cfg, self.env
        y = y.to(env.device, non_blocking=True)
        lr = lr_at(cfg, step)
        for g in self.opt.param_groups:
            g["lr"] = lr
        gen = torch.Generator(device=env.device).manual_seed(cfg.seed * 1_000_003 + step * env.world + env.rank)
        loss = self.recipe.loss(self.net, y, gen)
        self._check_finite(loss, step)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)             # unscales first; skips the step if an fp16 gradient overflowed
        self.scaler.update()
        if self.average is not None:
            with torch.no_grad():
                d = ema_decay(cfg.ema, step + 1)
                for a, b in zip(self.average.parameters(), self.model.parameters()):
                    a.lerp_(b, 1.0 - d)
                for a, b in zip(self.average.buffers(), self.model.buffers()):
                    a.copy_(b)
        return loss.item(), lr

    def _check_finite(self, loss: torch.Tensor, step: int) -> None:
        """Raise on a non-finite loss, on every rank when any rank has one (a rank that raised alone would
        leave the others waiting in the gradient all-reduce)."""
        bad = ~torch.isfinite(loss.detach())
        if self.env.world > 1:
            flag = bad.float().reshape(1).to(self.env.device if self.env.device.type == "cuda" else "cpu")
            torch.distributed.all_reduce(flag)
            if flag.item() > 0 and not bad:
                raise SdapError(f"loss became non-finite on another process at step {step + 1}; lower --lr")
        if bad:
            raise SdapError(f"loss became {loss.item()} at step {step + 1}; lower --lr")

    @property
    def kept(self) -> torch.nn.Module:
        """The weights a run validates and saves: the average with ``ema``, else the trained ones."""
        return self.model if self.average is None else self.average

    def validate(self, step: int, lr: float, row: list | None, t0: float, log: RunLog, on_validate) -> list:
        """Score the model, keep the best weights, and fill the row's validation columns."""
        recipe = self.recipe
        m = recipe.validate(self.kept)
        self.kept.train()
        m["step"] = step
        self.history.append(m)
        if on_validate is not None:
            on_validate(step, m)
        if self.best is None or m[recipe.best_key] > self.best[recipe.best_key]:
            self.best = dict(m)
            self.save_weights("best.safetensors", step)
        if row is None:
            row = [step, "", lr, "", time.perf_counter() - t0] + [""] * len(recipe.metrics)
        row[5:] = [f"{m[k]:.5f}" if k.startswith("ssim") else f"{m[k]:.4f}" for k in recipe.metrics]
        for k in recipe.metrics:
            log.scalar(f"val/{k}", m[k], step)
        return row

    def save_state(self, step: int) -> None:
        """Everything ``--resume`` needs, written atomically (rank 0)."""
        if self.env.rank != 0:
            return
        device = self.env.device
        st = {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(), "step": step,
              "average": None if self.average is None else self.average.state_dict(),
              "scaler": self.scaler.state_dict(),
              "best": self.best, "history": self.history, "config": self.cfg.model_dump(mode="json"),
              "arch": self.model.arch, "torch_rng": torch.get_rng_state(),
              "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
        atomic_write(self.state_path, lambda fh: torch.save(st, fh))

    def save_weights(self, name: str, step: int) -> Path:
        return save_weights(self.out / name, self.kept, training=self.summary(step), dtype=self.store)

    def summary(self, step: int) -> dict:
        cfg, env = self.cfg, self.env
        return {"iterations": step, "data": [str(d) for d in cfg.data], "patch": cfg.patch,
                "batch": cfg.batch * env.world, "lr": cfg.lr, "schedule": cfg.schedule, "seed": cfg.seed,
                "ema": cfg.ema, "precision": env.precision, "device": str(env.device), "best": self.best,
                **self.recipe.summary}

    def checkpoint(self, step: int) -> None:
        self.save_state(step)
        if self.env.rank == 0:
            self.save_weights(f"step_{step:07d}.safetensors", step)

    def finish(self, step: int, t0: float) -> TrainResult:
        self.save_state(step)
        result = TrainResult(self.out, step, time.perf_counter() - t0, self.best, self.history)
        if self.env.rank == 0:
            result.last_path = self.save_weights("last.safetensors", step)
            result.best_path = self.out / "best.safetensors" if self.best is not None else result.last_path
        if self.env.world > 1:
            torch.distributed.barrier()
        return result


def fit(cfg, recipe: Recipe, env: Setup, *, resume: bool = False,
        on_step: Callable[[int, int, float, float], None] | None = None,
        on_validate: Callable[[int, dict], None] | None = None,
        stop_after: int | None = None) -> TrainResult:
    """The training loop shared by ``sdap train`` and ``sdap distill``.

    ``cfg`` gives out, iterations, batch, lr, schedule, lr_min, val_every, checkpoint_every, log_every,
    seed, channels_last, compile and workers. Writes ``<out>/config.yaml``, ``train_log.csv``,
    ``state.pt`` (resume), ``best``/``last``/``step_N`` ``.safetensors``; see ``trainer.train`` for the
    arguments. Ctrl-C or SIGTERM saves the resumable state and ``last.safetensors``, then re-raises.
    """
    run = _Run(cfg, recipe, env, resume, stop_after)
    loader = run.loader()
    log = RunLog(run.out, recipe.metrics, run.start if resume else None, env.rank == 0)
    t0 = time.perf_counter()
    tw, running, n_run = time.perf_counter(), 0.0, 0
    step = run.start
    run.model.train()
    previous_term = _raise_on_sigterm()
    try:
        for y in loader:
            loss, lr = run.train_step(y, step)
            step += 1
            running += loss
            n_run += 1
            if env.rank == 0 and on_step is not None:
                on_step(step, cfg.iterations, loss, lr)
            row = None
            if step % cfg.log_every == 0 or step == run.stop:
                now = time.perf_counter()
                row = [step, running / n_run, lr, n_run / max(now - tw, 1e-9), now - t0] + [""] * len(recipe.metrics)
                log.scalar("loss", running / n_run, step)
                tw, running, n_run = now, 0.0, 0
            if recipe.validate is not None and (step % cfg.val_every == 0 or step == cfg.iterations) \
                    and env.rank == 0:
                row = run.validate(step, lr, row, t0, log, on_validate)
            log.write(row)
            if step % cfg.checkpoint_every == 0:
                run.checkpoint(step)
            if step >= run.stop:
                break
    except KeyboardInterrupt:                    # Ctrl-C or SIGTERM: resumable state plus usable weights
        run.save_state(step)
        if env.rank == 0:
            run.save_weights("last.safetensors", step)
        raise
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
        log.close()
    return run.finish(step, t0)


def _raise_on_sigterm():
    """Batch schedulers stop jobs with SIGTERM: turn it into KeyboardInterrupt so the state is saved.
    Returns the previous handler (None when not in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    return signal.signal(signal.SIGTERM, handler)


def _yaml(cfg) -> str:
    import yaml

    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
