"""Where a command's values come from, and :func:`resolve`, the one rule for every command: the config
model's defaults < preset (train: the paper's schedules) < YAML file (``--config``) < flags given, then one
validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .errors import first_line

__all__ = ["PRESETS", "ConfigFileError", "read_config_file", "resolve"]

PRESETS: dict[str, dict] = {
    # SDAP paper, stage 1 (sdap-method.md section 3): Adam lr 1e-4, patch 160, batch 16
    "stage1": {"lr": 1e-4, "patch": 160, "batch": 16},
    # stage 2: fine-tune from the stage-1 best with lr 1e-5, patch 250, batch 8
    "stage2": {"lr": 1e-5, "patch": 250, "batch": 8},
}


class ConfigFileError(ValueError):
    """A config file is missing or not a YAML mapping, or a preset is unknown (the message says which)."""


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The options of a YAML config file (a mapping); ConfigFileError if missing, not YAML or not a mapping."""
    import yaml

    try:
        values = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise ConfigFileError(f"{path}: config file not found") from None
    except yaml.YAMLError as e:
        raise ConfigFileError(f"{path}: not valid YAML ({first_line(e, 200)})") from None
    if not isinstance(values, dict):
        raise ConfigFileError(f"{path}: expected a mapping of options at the top level")
    return values


def resolve(cls: type[BaseModel], flags: dict[str, Any], config_file: str | Path | None = None) -> BaseModel:
    """Defaults < preset (:data:`PRESETS`) < YAML file < flags given (None: not given), validated once as
    ``cls``. Option groups (``inference``, ``model``, ``student``) are dicts that merge key by key.

    Example:
        >>> from sdap_cli.config import BenchmarkConfig
        >>> resolve(BenchmarkConfig, {"sizes": ["256"], "runs": None}).runs
        3
    """
    def given(d: dict) -> dict:
        return {k: (given(v) if isinstance(v, dict) else v) for k, v in d.items() if v is not None}

    file_values, flags = read_config_file(config_file) if config_file is not None else {}, given(flags)
    merged: dict[str, Any] = {}
    preset = flags.get("preset", file_values.get("preset"))
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigFileError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
        merged.update(PRESETS[preset])
    for src in (file_values, flags):
        for k, v in src.items():
            if isinstance(v, dict) and isinstance(merged.get(k, {}), dict):
                merged.setdefault(k, {}).update(given(v))
            else:
                merged[k] = v
    return cls.model_validate(merged)
