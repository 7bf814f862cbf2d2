"""Terminal output for the CLI: one-line errors and notes on stderr, tables and reports (the progress
displays are in ``progress``).

Messages go to stderr, so stdout stays free for images (``-o -``) and ``--json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console

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
    for prec, r in env.get("roofline", {}).items():
        out.print(f"roofline {prec}: {r['gmac_per_s']:.0f} GMAC/s (best 3x3 conv, {r['channels']} channels at "
                  f"{r['side']}x{r['side']})")
    t = Table("model", "size", "refine", "prec", "runtime", "NHWC", "compile", "ms/image", "MP/s", "GMAC/s", "roof",
              "peak MiB", "tiles")
    for r in result.rows:
        if r.error:
            t.add_row(r.model, r.size, r.refine, r.precision, r.runtime, str(r.channels_last), str(r.compile),
                      r.error, "", "", "", "", "")
            continue
        t.add_row(r.model, f"{r.width}x{r.height}", r.refine, r.precision, r.runtime,
                  "on" if r.channels_last else "off",
                  "on" if r.compile else "off", f"{r.ms:.0f}", f"{r.mpix_per_s:.4f}", f"{r.gmac_per_s:.1f}",
                  "" if r.roof is None else f"{r.roof:.2f}", f"{r.peak_mib:.0f}", str(r.tiles))
    out.print(t)


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
    """' (cpu, bf16[, openvino]; auto: light 2: teacher ... PD-1 + blend; heavy 1: student ...)' for a denoise
    or evaluate result: where it ran (and on what, when not torch), and per path how many images and which network (or the one network
    without --auto); '' when nothing ran."""
    if not result.device:
        return ""
    where = f"{result.device}, {result.precision}" + \
        (f", {result.runtime}" if getattr(result, "runtime", "torch") not in ("torch", "") else "")
    if not result.auto:
        return f" ({where}; {network_note(result.network)})"
    parts = []
    taken = result.taken
    for path, n in result.paths.items():
        nets = sorted({network_note(net, amounts=False) for p, net in taken if p == path})
        parts.append(f"{path} {n}: " + ", ".join(nets))
    return f" ({where}; auto: " + ("; ".join(parts) or "no image") + ")"


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
    batch = "1" if result.format == "dtmodel" else "N"
    noise = {"measured": "; the noise is measured inside the graph", "pinned": "; the noise is pinned (--noise-from)"
             }.get(getattr(result, "noise", "none"), "")
    tile = f"; darktable tiles of {result.tile}" if getattr(result, "tile", None) else ""
    info(f"wrote {result.path} ({result.format}{opset}, {result.model} {Path(result.weights).name}, "
         f"{result.bytes / 2**20:.1f} MiB{noise}{tile}): input {result.input_name!r} ({batch}, 3, H, W) float32 RGB 0-1, "
         f"any H, W >= "
         f"{result.min_side}" + (f", and {result.noise_name!r} (N, 5, H, W): the noise maps sdap tells it "
                                 "(NoiseEstimate.condition of measure_noise)" if result.noise_name else "")
         + f"; output {result.output_name!r} of the same shape")
    if result.max_abs_diff is not None:
        info(f"self-check: max |file - torch| = {result.max_abs_diff:.2e}")
    elif result.format == "onnx":
        info("self-check skipped: onnxruntime is not installed")
