"""Terminal output for the CLI: rich progress on a TTY, plain log lines otherwise, one-line errors.

Everything goes to stderr, so stdout stays free for images (``-o -``) and ``--json``.
"""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def error(message: str) -> None:
    """Print ``error: <message>`` on one line to stderr."""
    err_console.print(f"[bold red]error:[/] {message}", markup=True, highlight=False, emoji=False) \
        if err_console.is_terminal else print(f"error: {message}", file=sys.stderr, flush=True)


def info(message: str) -> None:
    if err_console.is_terminal:
        err_console.print(message, markup=False, highlight=False, emoji=False)
    else:
        print(message, file=sys.stderr, flush=True)


class QuietProgress:
    """Progress sink that shows nothing."""

    def start(self, total): ...
    def file_start(self, index, job): ...
    def tile(self, done, total): ...
    def file_done(self, index, result): ...
    def close(self): ...


class PlainProgress(QuietProgress):
    """One log line per file (for pipes, CI and batch logs)."""

    def start(self, total):
        self.total = total

    def file_done(self, index, result):
        if result.status == "ok":
            info(f"[{index + 1}/{self.total}] {result.input} -> {result.output} "
                 f"({result.megapixels:.2f} MP, {result.seconds:.1f} s)")
        elif result.status == "skipped":
            info(f"[{index + 1}/{self.total}] {result.input}: skipped ({result.error})")
        else:
            info(f"[{index + 1}/{self.total}] error: {result.error}")


class RichProgress(QuietProgress):
    """Two bars: files, and tiles of the current file."""

    def __init__(self) -> None:
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=err_console, transient=False)

    def start(self, total):
        self.bar.start()
        self.files = self.bar.add_task("files", total=total)
        self.tiles = self.bar.add_task("tiles", total=1, visible=False)
        self.t0 = time.perf_counter()

    def file_start(self, index, job):
        self.bar.update(self.tiles, completed=0, total=1, visible=True, description=f"tiles {job.rel}")

    def tile(self, done, total):
        self.bar.update(self.tiles, completed=done, total=total)

    def file_done(self, index, result):
        self.bar.advance(self.files)
        if result.status == "failed":
            self.bar.console.print(f"[red]error:[/] {result.error}", markup=True, highlight=False)

    def close(self):
        if hasattr(self, "files"):
            self.bar.update(self.tiles, visible=False)
            self.bar.stop()


def make_progress(quiet: bool):
    if quiet:
        return QuietProgress()
    return RichProgress() if err_console.is_terminal else PlainProgress()


class TrainProgress:
    """Training progress: a rich bar with it/s, loss, last validation PSNR and ETA on a TTY; else a log
    line per validation and every 5% of the steps."""

    def __init__(self, total: int, quiet: bool = False) -> None:
        self.total, self.quiet = total, quiet
        self.rich = err_console.is_terminal and not quiet
        self.last_val = ""
        self.t0 = time.perf_counter()
        self.first: int | None = None
        if self.rich:
            from rich.progress import TimeRemainingColumn

            self.bar = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[stats]}"), TimeRemainingColumn(),
                                console=err_console)
            self.bar.start()
            self.task = self.bar.add_task("train", total=total, stats="")

    def step(self, step: int, total: int, loss: float, lr: float) -> None:
        if self.first is None:                       # rate measured from the first finished step
            self.first, self.t0 = step, time.perf_counter()
        its = (step - self.first) / max(time.perf_counter() - self.t0, 1e-9)
        rate = f"{its:.2f} it/s " if step > self.first else ""
        stats = f"{rate}loss {loss:.4f} lr {lr:.1e} {self.last_val}"
        if self.rich:
            self.bar.update(self.task, completed=step, stats=stats)
        elif not self.quiet and (step % max(total // 20, 1) == 0 or step == total):
            info(f"step {step}/{total} {stats}")

    def validate(self, step: int, m: dict) -> None:
        self.last_val = f"val {m['psnr']:.2f}/{m['psnr_e']:.2f} dB"
        if not self.rich and not self.quiet:
            info(f"step {step}: validation PSNR {m['psnr']:.2f} dB (PD-2), {m['psnr_e']:.2f} dB (E); "
                 f"SSIM {m['ssim_e']:.4f}")

    def close(self) -> None:
        if self.rich:
            self.bar.stop()
