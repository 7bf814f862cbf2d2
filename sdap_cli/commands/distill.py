"""`sdap distill`: build the configuration (defaults < YAML < flags) and run the distillation."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from ..config import DistillConfig
from ..core.distill import distill
from ..core.trainer import TrainResult
from .train import build_config as _build


def build_config(flags: dict[str, Any], config_file: Optional[Path] = None) -> DistillConfig:
    """Merge defaults < YAML file < flags; student options go under ``flags['student']``."""
    return _build(flags, config_file, cls=DistillConfig)


def run(cfg: DistillConfig, *, resume: bool = False, on_teacher=None, on_step=None,
        on_validate=None) -> TrainResult:
    return distill(cfg, resume=resume, on_teacher=on_teacher, on_step=on_step, on_validate=on_validate)
