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
from ..method.pd import pad_to_multiple

__all__ = ["load_validation_set", "validate", "mean_scores", "validate_student"]


def load_validation_set(cfg) -> PairedSet | None:
    """The validation pairs of a training config (``val``, first ``val_limit``), or None without ``val``."""
    return load_pairs(cfg.val).head(cfg.val_limit) if cfg.val else None


def validate(model: DBSNl, val: PairedSet, device: torch.device, precision: str) -> dict[str, float]:
    """Mean PSNR/SSIM (SDAP convention) of PD-2 ('none') and PD-2 + E on the validation pairs."""
    was_training = model.training
    net = DBSNl(**model.arch)
    net.load_state_dict(model.state_dict())
    den = Denoiser(net, refine="none", device=device, precision=precision)
    res: dict[str, list[float]] = {"psnr": [], "ssim": [], "psnr_e": [], "ssim_e": []}
    with torch.inference_mode():
        for noisy, clean in zip(val.noisy, val.clean):
            y = torch.from_numpy(np.ascontiguousarray(noisy)).permute(2, 0, 1)[None].to(device)
            y, (h, w) = pad_to_multiple(y, den.align)
            x_hat = den.denoise_tensor(y)                 # PD-2 pass, computed once for both scores
            for tag, out in (("", x_hat), ("_e", den.net(x_hat))):
                out = out[0, :, :h, :w].clamp(0, 1).permute(1, 2, 0).cpu().numpy()
                p, s = psnr_ssim(out, clean, "sdap")
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
