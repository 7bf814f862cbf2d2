"""The log of a training run: ``train_log.csv`` and TensorBoard (when installed), rank 0 only."""

from __future__ import annotations

import csv
from pathlib import Path

__all__ = ["RunLog"]


class RunLog:
    """``train_log.csv`` (a row every ``log_every`` steps and at validations) and TensorBoard when it is
    installed; rank 0 only. Rows a killed run wrote after its last saved state are dropped on resume."""

    def __init__(self, out: Path, metrics: tuple[str, ...], resume_step: int | None, enabled: bool) -> None:
        self.f = self.csv = self.tb = None
        if not enabled:
            return
        path = out / "train_log.csv"
        if resume_step is not None and path.is_file():
            _truncate_log(path, resume_step)
        self.f = open(path, "a", newline="")
        self.csv = csv.writer(self.f)
        if self.f.tell() == 0:
            self.csv.writerow(["step", "loss", "lr", "it_per_s", "elapsed_s"] + [f"val_{k}" for k in metrics])
        self.tb = _tensorboard(out)

    def write(self, row: list | None) -> None:
        if row is not None and self.csv is not None:
            self.csv.writerow(row)
            self.f.flush()

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self.tb is not None:
            self.tb.add_scalar(tag, value, step)

    def close(self) -> None:
        if self.f is not None:
            self.f.close()
        if self.tb is not None:
            self.tb.close()


def _truncate_log(path: Path, step: int) -> None:
    rows = path.read_text().splitlines(keepends=True)
    keep = [r for i, r in enumerate(rows) if i == 0 or int(r.split(",", 1)[0]) <= step]
    path.write_text("".join(keep))


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:                                               # noqa: BLE001 - optional
        return None
    return SummaryWriter(str(out / "tb"))
