"""`sdap denoise`: the batch of :class:`~sdap_cli.api.FileBatch` (read, denoise, write, overlapped; one
bad file never stops it), run to its end and returned as the summary the CLI reports."""

from __future__ import annotations

from ..api import DenoiseResult, FileBatch, FileResult, Progress
from ..config import DenoiseConfig


def run(cfg: DenoiseConfig, progress: Progress | None = None) -> DenoiseResult:
    """Denoise every input of ``cfg`` (``api.FileBatch``); never raises for a single bad file. Results and
    progress come in input order.

    Raises:
        SdapError: for problems that stop everything (weights, device, output '-' with many inputs).
    """
    batch = FileBatch(cfg, progress)
    for _ in batch:
        pass
    return batch.summary


__all__ = ["run", "FileResult", "DenoiseResult", "Progress"]
