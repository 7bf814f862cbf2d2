"""`sdap train`: run the SDAP trainer on a resolved TrainConfig (``config.resolve``)."""

from __future__ import annotations

from ..training.trainer import TrainResult, train
from ..training_config import TrainConfig


def run(cfg: TrainConfig, *, resume: bool = False, on_step=None, on_validate=None) -> TrainResult:
    """Train (or resume, from ``cfg.out``/state.pt) as ``cfg`` says; see ``training.trainer.train``."""
    return train(cfg, resume=resume, on_step=on_step, on_validate=on_validate)
