r"""SDAP training: RSG sub-samples, one batched forward, cyclic L1 (the loop itself is ``loop.fit``).

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
from typing import Callable

import torch

from ..errors import CheckpointError, ConfigError
from ..inference.checkpoints import load_weights
from ..inference.device import DTYPES
from ..method.dbsnl import DBSNl
from ..method.loss import cyclic_l1
from ..method.sampler import rsg_sample
from ..training_config import TrainConfig
from .datasets import NoisyCrops, find_noisy_images_all
from .loop import Recipe, Setup, TrainResult, fit, setup
from .validation import load_validation_set, validate

__all__ = ["sdap_loss", "autocast_context", "train", "fit", "setup", "Recipe", "Setup", "TrainResult", "validate"]


def autocast_context(device: torch.device, precision: str):
    """Autocast for ``precision`` in {'fp32', 'bf16', 'fp16'} on ``device``; fp32 is a no-op."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[precision])


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


