"""`sdap train`: build the configuration (defaults < preset < YAML < flags) and run the trainer."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from ..config import PRESETS, TrainConfig
from ..core.trainer import TrainResult, train
from ..errors import ConfigError


def build_config(flags: dict[str, Any], config_file: Optional[Path] = None, cls=TrainConfig):
    """Merge defaults < preset < YAML file < flags given on the command line, then validate once as
    ``cls`` (TrainConfig, or DistillConfig for `sdap distill`).

    ``flags`` holds only options the user gave (None values are dropped); network options go under
    ``flags['model']`` (or ``flags['student']``).
    """
    import yaml

    merged: dict[str, Any] = {}
    file_values: dict[str, Any] = {}
    if config_file is not None:
        try:
            file_values = yaml.safe_load(Path(config_file).read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"{config_file}: config file not found") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{config_file}: not valid YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(file_values, dict):
            raise ConfigError(f"{config_file}: expected a mapping of options at the top level")
    flags = {k: v for k, v in flags.items() if v is not None}
    preset = flags.get("preset", file_values.get("preset"))
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
        merged.update(PRESETS[preset])
    for src in (file_values, flags):
        for k, v in src.items():
            if k in ("model", "student") and isinstance(v, dict):
                merged.setdefault(k, {}).update({a: b for a, b in v.items() if b is not None})
            else:
                merged[k] = v
    return cls.model_validate(merged)


def run(cfg: TrainConfig, *, resume: bool = False, on_step=None, on_validate=None) -> TrainResult:
    return train(cfg, resume=resume, on_step=on_step, on_validate=on_validate)
