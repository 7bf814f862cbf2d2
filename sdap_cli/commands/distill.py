"""`sdap distill`: run the distillation on a resolved DistillConfig (``config.resolve``)."""

from __future__ import annotations

from ..training.distill import distill
from ..training.loop import TrainResult
from ..training_config import DistillConfig


def run(cfg: DistillConfig, *, resume: bool = False, on_teacher=None, on_step=None,
        on_validate=None) -> TrainResult:
    """Distil (or resume) as ``cfg`` says; see ``training.distill.distill``."""
    return distill(cfg, resume=resume, on_teacher=on_teacher, on_step=on_step, on_validate=on_validate)
