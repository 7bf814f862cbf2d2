r"""Test-time adaptation, SDAP(S)-style: fine-tune the loaded DBSNl on the very images to be denoised.

SDAP(S) adds the noisy test images to self-supervised training (the loss never needs clean
images). Here a copy of the loaded network takes ``iterations`` SDAP steps (RSG p = 5, cyclic L1,
Adam) on random crops of those images; the original weights are left untouched.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..config import InferenceConfig
from ..errors import ConfigError
from ..inference.checkpoints import LoadedWeights, save_weights
from ..inference.device import pick_precision
from ..method.dbsnl import DBSNl
from .datasets import NoisyCrops
from .loop import grad_scaler
from .trainer import sdap_loss

__all__ = ["adapt", "adapt_weights"]


def adapt(model: DBSNl, images: list[np.ndarray], *, iterations: int = 100, patch: int = 120, batch: int = 8,
          lr: float = 5e-5, p: int = 5, precision: str = "fp32", device: torch.device = torch.device("cpu"),
          seed: int = 0, on_step: Callable[[int, int, float], None] | None = None) -> DBSNl:
    """Return a fine-tuned copy of ``model``.

    Args:
        images: float32 ``(H, W, 3)`` arrays in [0, 1] (the noisy images themselves).
        iterations, patch, batch, lr: the SDAP step settings (patch is reduced to a multiple of p).
        precision: autocast precision of the forward pass ('fp32', 'bf16', 'fp16'; fp16 with loss scaling,
            ``loop.grad_scaler``).
        on_step: ``on_step(step, iterations, loss)`` after each step.
    """
    patch = max(p, patch // p * p)
    net = copy.deepcopy(model).float().to(device).train()
    net.requires_grad_(True)
    net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    scaler = grad_scaler(device, precision)
    data = NoisyCrops([], patch, batch, seed, arrays=images)
    for step in range(iterations):
        y = torch.stack([data[step * batch + i] for i in range(batch)]).to(device)
        gen = torch.Generator(device=device).manual_seed(seed * 1_000_003 + step)
        loss = sdap_loss(net, y, p, generator=gen, precision=precision)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        if on_step is not None:
            on_step(step + 1, iterations, loss.item())
    return net.eval()


def adapt_weights(loaded: LoadedWeights, inf: InferenceConfig, images: list[np.ndarray], device: torch.device,
                  save_to: Path | None = None, on_step: Callable[[int, int, float], None] | None = None) -> None:
    """``--adapt``: replace ``loaded.model`` by a copy fine-tuned on ``images`` with ``inf``'s steps, rate
    and seed (:func:`adapt`); save it to ``save_to`` if given, its metadata saying where it came from.

    Raises:
        ConfigError: weights on 0-255 input (AP-BSN's), or a one-pass student (no blind spot to train).
    """
    if loaded.input_scale != 1.0:
        raise ConfigError(f"{loaded.path}: --adapt needs weights on 0-1 input (not AP-BSN's)")
    loaded.model = adapt(loaded.model, images, iterations=inf.adapt_iters, lr=inf.adapt_lr,
                         precision=pick_precision(inf.precision, device), device=device, seed=inf.seed,
                         on_step=on_step)
    if save_to is not None:
        training = dict(loaded.metadata.get("training", {}))
        training["adapted"] = {"from": str(loaded.path), "iterations": inf.adapt_iters, "lr": inf.adapt_lr,
                               "images": len(images)}
        save_weights(save_to, loaded.model, training=training)
