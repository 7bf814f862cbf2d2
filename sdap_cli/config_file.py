"""The value sources :func:`sdap_cli.config.resolve` merges besides defaults and flags: the training presets
and YAML config files (``--config``). Imports nothing from the package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["PRESETS", "ConfigFileError", "read_config_file"]

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
        raise ConfigFileError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise ConfigFileError(f"{path}: expected a mapping of options at the top level")
    return values
