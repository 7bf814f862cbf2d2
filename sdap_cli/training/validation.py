"""Validation scoring during training: the one home of how a network in training is scored.

``sdap train`` keeps the best weights by PSNR with E (:func:`validate`: PD-2 and PD-2 + E from one PD-2
pass), ``sdap distill`` by the student's own PSNR (:func:`validate_student`); both use the SDAP metric
convention (uint8 RGB, ``metrics.psnr_ssim``) on float32 ``(H, W, 3)`` pairs in [0, 1].
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from ..evaluation.evalsets import PairedSet, load_pairs
from ..evaluation.metrics import psnr_ssim
from ..inference.denoiser import Denoiser, StudentDenoiser
from ..method.dbsnl import DBSNl

__all__ = ["load_validation_set", "validate", "mean_scores", "validate_student"]


def load_validation_set(cfg) -> PairedSet | None:
    """The validation pairs of a training config (``val``, first ``val_limit``), or None without ``val``."""
    return load_pairs(cfg.val).head(cfg.val_limit) if cfg.val else None


def validate(model: DBSNl, val: PairedSet, device: torch.device, precision: str) -> dict[str, float]:
    """Mean PSNR/SSIM (SDAP convention) of PD-2 ('none') and PD-2 + E on the validation pairs.

    Each image is denoised as ``sdap denoise`` denoises it: tiled to the memory there is (``Denoiser.denoise``:
    the automatic tile, halved on out-of-memory), so full-size photos fit on a GPU. The PD-2 pass is run
    for each score (three network passes per image instead of two), as a tile's E pass needs its PD-2
    result unclamped and with more context than the PD-2 score's tile keeps.
    """
    was_training = model.training
    net = DBSNl(**model.arch)
    net.load_state_dict(model.state_dict())
    dens = {tag: Denoiser(net, refine=refine, device=device, precision=precision)
            for tag, refine in (("", "none"), ("_e", "e"))}
    res: dict[str, list[float]] = {"psnr": [], "ssim": [], "psnr_e": [], "ssim_e": []}
    for noisy, clean in zip(val.noisy, val.clean):
        for tag, den in dens.items():
            p, s = psnr_ssim(den.denoise(noisy), clean, "sdap")
            res["psnr" + tag].append(p)
            res["ssim" + tag].append(s)
    model.train(was_training)
    return {k: float(np.mean(v)) for k, v in res.items()}


def mean_scores(den: Denoiser, val: PairedSet) -> dict[str, float]:
    """Mean PSNR/SSIM (SDAP convention) of ``den`` (teacher or student) on the validation pairs."""
    res = [psnr_ssim(den.denoise(n), c, "sdap") for n, c in zip(val.noisy, val.clean)]
    return {"psnr": float(np.mean([r[0] for r in res])), "ssim": float(np.mean([r[1] for r in res]))}


def validate_student(model: torch.nn.Module, val: PairedSet, device: torch.device, precision: str
                     ) -> dict[str, float]:
    """``mean_scores`` of a copy of the student in training (the Denoiser casts and freezes its model)."""
    return mean_scores(StudentDenoiser(copy.deepcopy(model), device=device, precision=precision), val)
