"""Terminal output for the CLI: rich progress on a TTY, plain log lines otherwise, one-line errors.

Everything goes to stderr, so stdout stays free for images (``-o -``) and ``--json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def error(message: str) -> None:
    """Print ``error: <message>`` on one line to stderr."""
    err_console.print(f"[bold red]error:[/] {message}", markup=True, highlight=False, emoji=False) \
        if err_console.is_terminal else print(f"error: {message}", file=sys.stderr, flush=True)


def flag_message(e, whole: str | None = "--config") -> str:
    """A validation error on one line, each problem named by its flag (``--tile-overlap: ...``); problems of the
    whole configuration get the prefix ``whole`` (None: none)."""
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"] if x != "inference")
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"--{loc.replace('_', '-')}: {msg}" if loc else (f"{whole}: {msg}" if whole else msg))
    return "; ".join(parts)


def info(message: str) -> None:
    if err_console.is_terminal:
        err_console.print(message, markup=False, highlight=False, emoji=False)
    else:
        print(message, file=sys.stderr, flush=True)


def noise_note(noise: dict | None) -> str:
    """', light path: noise 3.2, rho1 0.70, rho2 0.35' for an --auto decision ('' without one)."""
    if not noise:
        return ""
    return (f", {noise['path']} path: noise {noise['sigma']:.1f}, rho1 {noise['rho1']:.2f}, "
            f"rho2 {noise['rho2']:.2f}")


def network_note(net: dict | None, amounts: bool = True) -> str:
    """'teacher sdap_default.safetensors PD-1 + blend 0.50' for a denoiser's ``describe()`` (plus the
    --auto blend); 'nothing ran' for None (the clean path). ``amounts``: show a partial blend's amount."""
    if not net:
        return "nothing ran"
    s = f"{net['model']} {Path(net['weights']).name if net['weights'] else ''}".rstrip()
    if net["model"] == "teacher":
        s += f" PD-{net['pd']}" + {"e": " + E", "r3": " + R3"}.get(net["refine"], "")
    if net.get("strength", 1.0) != 1.0:
        s += f", strength {net['strength']:g}"
    blend = net.get("blend") or 0.0
    if blend:
        s += " + blend" + (f" {blend:.2f}" if amounts and blend < 1 else "")
    return s


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


def benchmark_table(result) -> None:
    """The benchmark rows as a rich table on stdout, with the environment above it."""
    from rich.table import Table

    env = result.env
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    out.print(f"{env['cpu']} ({env['cores']} cores, {env['threads']} threads)"
              + (f", {env['gpu']}" if env.get("gpu") else "") + f", torch {env['torch']}, device {env['device']}")
    for name, n in env["networks"].items():
        out.print(f"{name}: {n['kind']} {n['arch']}, {n['parameters'] / 1e6:.2f} M params, "
                  f"{n['macs_per_pixel_per_pass'] / 1e3:.1f} KMAC/px/pass")
    t = Table("model", "size", "refine", "prec", "NHWC", "compile", "ms/image", "MP/s", "GMAC/s", "peak MiB",
              "tiles")
    for r in result.rows:
        if r.error:
            t.add_row(r.model, r.size, r.refine, r.precision, str(r.channels_last), str(r.compile), r.error, "",
                      "", "", "")
            continue
        t.add_row(r.model, f"{r.width}x{r.height}", r.refine, r.precision, "on" if r.channels_last else "off",
                  "on" if r.compile else "off", f"{r.ms:.0f}", f"{r.mpix_per_s:.4f}", f"{r.gmac_per_s:.1f}",
                  f"{r.peak_mib:.0f}", str(r.tiles))
    out.print(t)


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


def print_eval_table(result, max_rows: int = 50, note: str = "") -> None:
    """The `sdap evaluate` table on stdout: a row per image (up to ``max_rows``), then mean and std."""
    from rich.table import Table

    out = Console(highlight=False, soft_wrap=False)
    summary = result.summary()
    scored = [r for r in result.rows if r.error is None and r.psnr is not None]
    has_in = any(r.psnr_in is not None for r in scored)
    out.print(f"{result.dataset}: {len(scored)} images; metric convention {note or result.convention}",
              markup=False, soft_wrap=True)
    table = Table(show_lines=False)
    table.add_column("image", overflow="fold")
    if has_in:
        table.add_column("noisy PSNR", justify="right")
        table.add_column("noisy SSIM", justify="right")
    table.add_column("PSNR (dB)", justify="right")
    table.add_column("SSIM", justify="right")
    if has_in:
        table.add_column("gain (dB)", justify="right")

    def cells(vals: dict) -> list[str]:
        fmt = {"psnr_in": "{:.2f}", "ssim_in": "{:.4f}", "psnr": "{:.2f}", "ssim": "{:.4f}", "gain": "{:+.2f}"}
        keys = ["psnr_in", "ssim_in", "psnr", "ssim", "gain"] if has_in else ["psnr", "ssim"]
        return ["-" if vals.get(k) is None else fmt[k].format(vals[k]) for k in keys]

    if len(scored) <= max_rows:
        for r in scored:
            table.add_row(r.name, *cells({"psnr_in": r.psnr_in, "ssim_in": r.ssim_in, "psnr": r.psnr,
                                          "ssim": r.ssim, "gain": r.gain}))
        table.add_section()
    for stat in ("mean", "std") if len(scored) > 1 else ("mean",):
        table.add_row(stat, *cells({k: v[stat] for k, v in summary.items()}), style="bold" if stat == "mean" else "")
    if len(scored) > max_rows:
        for stat in ("min", "max"):
            table.add_row(stat, *cells({k: v[stat] for k, v in summary.items()}))
    out.print(table)


# ----------------------------------------------------------------------------------------- results

def _json_stdout(d: dict) -> None:
    sys.stdout.write(json.dumps(d, indent=2) + "\n")


def report_denoise(result, quiet: bool, json_out: bool) -> None:
    """`sdap denoise`: the JSON summary (``--json``), the one-line summary and the failed files."""
    if json_out:
        _json_stdout(result.to_dict())
    failed = result.failed
    if not quiet:
        if result.own_outputs:
            info(f"skipped {result.own_outputs} file(s) named as outputs of sdap (*_denoised); to denoise one "
                 "anyway, name it on the command line with -o DIR")
        if result.unsearched:
            info(f"{result.unsearched} sub-folder(s) not searched; use -r (--recursive) to include them")
        info(f"{result.count('ok')} denoised, {result.count('skipped')} skipped, {len(failed)} failed "
             f"in {result.seconds:.1f} s{run_note(result)}")
    if failed and (len(failed) > 1 or quiet or not sys.stderr.isatty()):
        for f in failed:
            error(f.error)


def run_note(result) -> str:
    """' (cpu, bf16; auto: light 2: teacher ... PD-1 + blend; heavy 1: student ...)' for a denoise or
    evaluate result: where it ran, and per path how many images and which network (or the one network
    without --auto); '' when nothing ran."""
    if not result.device:
        return ""
    if not result.auto:
        return f" ({result.device}, {result.precision}; {network_note(result.network)})"
    parts = []
    taken = result.taken
    for path, n in result.paths.items():
        nets = sorted({network_note(net, amounts=False) for p, net in taken if p == path})
        parts.append(f"{path} {n}: " + ", ".join(nets))
    return f" ({result.device}, {result.precision}; auto: " + ("; ".join(parts) or "no image") + ")"


def report_training(result, json_out: bool, distilled: bool = False) -> None:
    """`sdap train` / `sdap distill`: the one-line summary and the JSON summary (``--json``)."""
    best = result.best
    msg = f"{result.iterations} steps in {result.seconds:.0f} s; weights: {result.best_path}"
    if best and distilled:
        tv = result.teacher_val
        msg += f" (best step {best['step']}: {best['psnr']:.2f} dB"
        msg += f"; teacher {tv['psnr']:.2f} dB)" if tv else ")"
    elif best:
        msg += f" (best step {best['step']}: {best['psnr_e']:.2f} dB with E, {best['psnr']:.2f} dB PD-2)"
    info(msg)
    if not json_out:
        return
    d = {"out": str(result.out), "iterations": result.iterations, "seconds": result.seconds, "best": best}
    if distilled:
        d["teacher_val"] = result.teacher_val
    d.update(history=result.history, best_path=str(result.best_path), last_path=str(result.last_path))
    _json_stdout(d)


def report_evaluate(result, quiet: bool, note: str, save) -> None:
    """`sdap evaluate`: unmatched files, the table, the summary line, written files and failed rows."""
    if not quiet:
        if result.unmatched:
            shown = ", ".join(result.unmatched[:5]) + (" ..." if len(result.unmatched) > 5 else "")
            info(f"{len(result.unmatched)} file(s) without a clean partner were skipped: {shown}")
        if result.scored:
            print_eval_table(result, note=note)
        what = "scored" if result.scored else ("read" if result.mode == "outputs" else "denoised")
        info(f"{len(result.rows) - len(result.failed)} {what}, {len(result.failed)} failed in "
             f"{result.seconds:.1f} s{run_note(result)}")
        for path in ([result.submission] if result.submission else []) + result.written:
            info(f"wrote {path}")
        if save is not None:
            info(f"denoised outputs in {save}")
    if result.failed and (quiet or not sys.stderr.isatty()):
        for r in result.failed:
            error(r.error)


def report_export(result, json_out: bool) -> None:
    """`sdap export`: what was written (format, network, names, size), the self-check, or the JSON summary."""
    if json_out:
        _json_stdout(result.to_dict())
        return
    opset = f", opset {result.opset}" if result.opset else ""
    info(f"wrote {result.path} ({result.format}{opset}, {result.model} {Path(result.weights).name}, "
         f"{result.bytes / 2**20:.1f} MiB): input {result.input_name!r} (N, 3, H, W) float32 RGB 0-1, any H, W >= "
         f"{result.min_side}; output {result.output_name!r} of the same shape")
    if result.max_abs_diff is not None:
        info(f"self-check: max |file - torch| = {result.max_abs_diff:.2e}")
    elif result.format == "onnx":
        info("self-check skipped: onnxruntime is not installed")
