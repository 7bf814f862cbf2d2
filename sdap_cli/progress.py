"""Progress displays of the commands: rich bars on a TTY, plain log lines otherwise, nothing when quiet.

Everything goes to stderr (``console.err_console``), so stdout stays free for images (``-o -``) and
``--json``.
"""

from __future__ import annotations

import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .console import err_console, info, network_note, noise_note

__all__ = ["make_progress", "QuietProgress", "PlainProgress", "RichProgress", "TrainProgress", "EvalProgress"]


def _file_line(result) -> str:
    note = noise_note(result.noise)
    return f"{result.megapixels:.2f} MP, {result.seconds:.1f} s{note}" + (
        f"; {network_note(result.network)}" if note else "")


class QuietProgress:
    """Progress sink that shows nothing."""

    def start(self, total): ...
    def file_start(self, index, job): ...
    def tile(self, done, total): ...
    def file_done(self, index, result): ...
    def adapt(self, step, total, loss): ...
    def close(self): ...


class PlainProgress(QuietProgress):
    """One log line per file (for pipes, CI and batch logs)."""

    def adapt(self, step, total, loss):
        if step == 1 or step == total or step % max(total // 5, 1) == 0:
            info(f"adapt step {step}/{total} loss {loss:.4f}")

    def start(self, total):
        self.total = total

    def file_done(self, index, result):
        if result.status == "ok":
            info(f"[{index + 1}/{self.total}] {result.input} -> {result.output} ({_file_line(result)})")
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

    def adapt(self, step, total, loss):
        if not hasattr(self, "adapt_task"):
            self.bar.start()
            self.adapt_task = self.bar.add_task("adapt", total=total)
        self.bar.update(self.adapt_task, completed=step, description=f"adapt (loss {loss:.3f})")

    def file_start(self, index, job):
        self.bar.update(self.tiles, completed=0, total=1, visible=True, description=f"tiles {job.rel}")

    def tile(self, done, total):
        self.bar.update(self.tiles, completed=done, total=total)

    def file_done(self, index, result):
        self.bar.advance(self.files)
        if result.status == "ok" and result.noise:
            self.bar.console.print(f"{result.input}{noise_note(result.noise)}; {network_note(result.network)}",
                                   markup=False, highlight=False)
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
        if "psnr_e" not in m:                                       # a distilled student: one score
            self.last_val = f"val {m['psnr']:.2f} dB"
            if not self.rich and not self.quiet:
                info(f"step {step}: validation PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f}")
            return
        self.last_val = f"val {m['psnr']:.2f}/{m['psnr_e']:.2f} dB"
        if not self.rich and not self.quiet:
            info(f"step {step}: validation PSNR {m['psnr']:.2f} dB (PD-2), {m['psnr_e']:.2f} dB (E); "
                 f"SSIM {m['ssim_e']:.4f}")

    def teacher(self, i: int, n: int, path, cached: bool) -> None:
        """Progress of the teacher pass of `sdap distill` (cached outputs are only counted)."""
        if self.quiet:
            return
        if not cached:
            info(f"teacher {i}/{n}: {path.name} denoised")
        elif i == n:
            info(f"teacher outputs ready ({n} images)")

    def close(self) -> None:
        if self.rich:
            self.bar.stop()


class EvalProgress:
    """`sdap evaluate` progress: a rich bar with the running mean PSNR on a TTY; else one log line per
    image (nothing when quiet)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.rich = err_console.is_terminal and not quiet
        self.psnrs: list[float] = []

    def start(self, total: int) -> None:
        self.total = total
        if self.rich:
            self.bar = Progress(TextColumn("evaluate"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), console=err_console)
            self.bar.start()
            self.task = self.bar.add_task("evaluate", total=total, stats="")

    def item_start(self, index: int, name: str) -> None: ...

    def tile(self, done: int, total: int) -> None: ...

    def item_done(self, index: int, row) -> None:
        if row.error is None and row.psnr is not None:
            self.psnrs.append(row.psnr)
        if self.rich:
            stats = f"mean {sum(self.psnrs) / len(self.psnrs):.2f} dB" if self.psnrs else ""
            self.bar.update(self.task, completed=index + 1, stats=stats)
            if row.error is not None:
                self.bar.console.print(f"[red]error:[/] {row.error}", markup=True, highlight=False)
        elif not self.quiet:
            if row.error is not None:
                info(f"[{index + 1}/{self.total}] error: {row.error}")
            elif row.psnr is None:
                info(f"[{index + 1}/{self.total}] {row.name}: denoised ({row.seconds:.1f} s)")
            else:
                noisy = f" (noisy {row.psnr_in:.2f} dB)" if row.psnr_in is not None else ""
                info(f"[{index + 1}/{self.total}] {row.name}: {row.psnr:.2f} dB / {row.ssim:.4f}{noisy} "
                     f"({row.seconds:.1f} s)")

    def close(self) -> None:
        if self.rich and hasattr(self, "bar"):
            self.bar.stop()
