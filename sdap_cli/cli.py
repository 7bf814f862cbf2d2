"""The `sdap` command line: one thin function per subcommand (Typer)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError

from . import __version__
from .errors import SdapError

app = typer.Typer(
    name="sdap",
    help="Remove real camera noise from photos with SDAP, a self-supervised blind-spot network "
         "(Pan et al., ICCV 2023).",
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Examples:\n\n  sdap denoise noisy/*.png -o clean/\n\n  cat a.png | sdap denoise - -o - > b.png\n\n"
           "  sdap train --data ./SIDD_Medium_Srgb --preset stage1 --val ./sidd_val\n\n"
           "Run `sdap COMMAND --help` for the options of a command.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        import torch

        typer.echo(f"sdap {__version__} (torch {torch.__version__})")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """Remove real camera noise from photos with SDAP (self-supervised blind-spot network)."""


def _fail(message: str, code: int = 1) -> typer.Exit:
    from .console import error

    error(message)
    return typer.Exit(code=code)


def _validation_message(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"] if x != "inference") or "config"
        parts.append(f"--{loc.replace('_', '-')}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


@app.command(epilog="Examples:\n\n  sdap denoise noisy/*.png -o clean/\n\n"
                    "  sdap denoise photos/ --recursive -o out/ --skip-existing\n\n"
                    "  sdap denoise IMG_0001.dng -o clean/          (16-bit TIFF)\n\n"
                    "  cat a.png | sdap denoise - -o - > b.png\n\n"
                    "  sdap denoise big/ -o out/ --shard $SLURM_ARRAY_TASK_ID/8")
def denoise(
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders, globs, or - for stdin.",
                                                show_default=False)],
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Output folder (created), file, "
                      "or - for stdout. Default: beside each input, name + '_denoised'.")] = None,
    weights: Annotated[Optional[Path], typer.Option("--weights", "-w", help="Weights: ours (.safetensors), "
                       "official SDAP or AP-BSN (.pth). Default: the shipped model.")] = None,
    refine: Annotated[Optional[str], typer.Option(help="Refinement after the PD-2 pass: e (SDAP's second "
                      "pass, default), r3 (AP-BSN), none (fastest).")] = None,
    tile: Annotated[Optional[int], typer.Option(help="Tile side in pixels, overlap included. Default: from "
                    "free memory.")] = None,
    tile_overlap: Annotated[Optional[int], typer.Option(help="Context per tile side. Default: the receptive "
                            "field, so tiles match the whole-image result.")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto, cpu, cuda or mps.")] = None,
    precision: Annotated[Optional[str], typer.Option(help="auto, fp32, bf16 or fp16.")] = None,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of R3's random masks.")] = None,
    r3_t: Annotated[Optional[int], typer.Option("--r3-t", help="R3 rounds T (default 8).")] = None,
    r3_p: Annotated[Optional[float], typer.Option("--r3-p", help="R3 replacement probability (0.16).")] = None,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Search folders recursively.")] = False,
    suffix: Annotated[Optional[str], typer.Option(help="Appended to output file names.")] = None,
    format: Annotated[Optional[str], typer.Option("--format", "-f", help="same (default), png, tiff, jpeg, "
                      "bmp or webp.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs (never inputs).")] = False,
    skip_existing: Annotated[bool, typer.Option(help="Skip inputs whose output exists (resume).")] = False,
    shard: Annotated[Optional[str], typer.Option(help="K/N: process the K-th of N parts of the inputs.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print errors only.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary to stdout.")] = False,
) -> None:
    """Denoise images (PNG, JPEG, TIFF, BMP, WebP, camera RAW) keeping size, bit depth, gray and alpha.

    Outputs are written atomically and never replace an input. A bad file is reported on one line and
    the batch goes on; the exit code is 1 if any file failed.
    """
    from .commands import denoise as cmd
    from .config import DenoiseConfig
    from .console import info, make_progress

    given = {k: v for k, v in dict(refine=refine, tile=tile, tile_overlap=tile_overlap, device=device,
                                   precision=precision, threads=threads, seed=seed, r3_t=r3_t,
                                   r3_p=r3_p).items() if v is not None}
    top = {k: v for k, v in dict(output=output, weights=weights, suffix=suffix, format=format,
                                 shard=shard).items() if v is not None}
    try:
        cfg = DenoiseConfig(inputs=inputs, recursive=recursive, overwrite=overwrite,
                            skip_existing=skip_existing, inference=given, **top)
    except ValidationError as e:
        raise _fail(_validation_message(e), 2) from None
    if json_out and cfg.output == "-":
        raise _fail("--json needs stdout, which --output - uses for the image", 2)
    progress = make_progress(quiet)
    try:
        result = cmd.run(cfg, progress=progress)
    except SdapError as e:
        raise _fail(str(e)) from None
    except KeyboardInterrupt:
        raise _fail("interrupted", 130) from None
    finally:
        progress.close()
    if json_out:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    failed = result.failed
    if not quiet:
        info(f"{result.count('ok')} denoised, {result.count('skipped')} skipped, {len(failed)} failed "
             f"in {result.seconds:.1f} s")
    if failed:
        if len(failed) > 1 or quiet or not sys.stderr.isatty():
            from .console import error
            for f in failed:
                error(f.error)
        raise typer.Exit(code=1)


@app.command(epilog="Examples:\n\n  sdap train --data ./SIDD_Medium_Srgb --preset stage1 --val ./sidd_val --out runs/s1\n\n"
                    "  sdap train --data ./SIDD_Medium_Srgb --preset stage2 --init runs/s1/best.safetensors "
                    "--out runs/s2\n\n"
                    "  sdap train --config my.yaml --resume\n\n"
                    "  torchrun --nproc_per_node=4 -m sdap_cli train --data ... (DDP)")
def train(
    data: Annotated[Optional[list[str]], typer.Option("--data", "-d", help="Folder or file of noisy images "
                    "(repeatable; searched recursively; GT files ignored).")] = None,
    out: Annotated[Optional[str], typer.Option("--out", "-o", help="Run folder (default runs/sdap).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML file of options "
                      "(flags override it).")] = None,
    preset: Annotated[Optional[str], typer.Option(help="stage1 (lr 1e-4, patch 160, batch 16) or stage2 "
                      "(lr 1e-5, patch 250, batch 8, needs --init).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from RUN/state.pt.")] = False,
    iterations: Annotated[Optional[int], typer.Option("--iterations", "-n", help="Total steps.")] = None,
    batch: Annotated[Optional[int], typer.Option(help="Crops per step.")] = None,
    patch: Annotated[Optional[int], typer.Option(help="Crop side (multiple of p=5).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Adam learning rate.")] = None,
    schedule: Annotated[Optional[str], typer.Option(help="constant or cosine.")] = None,
    init: Annotated[Optional[Path], typer.Option(help="Initial weights.")] = None,
    val: Annotated[Optional[str], typer.Option(help="Validation folder (noisy/clean sub-folders, or "
                   "the SIDD validation .mat files).")] = None,
    val_every: Annotated[Optional[int], typer.Option(help="Validate every N steps.")] = None,
    checkpoint_every: Annotated[Optional[int], typer.Option(help="Save resumable state every N steps.")] = None,
    base_ch: Annotated[Optional[int], typer.Option(help="DBSNl width (128 in the paper).")] = None,
    num_module: Annotated[Optional[int], typer.Option(help="DBSNl blocks per branch (9).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed.")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto, cpu, cuda or mps.")] = None,
    precision: Annotated[Optional[str], typer.Option(help="auto, fp32, bf16 or fp16 (autocast).")] = None,
    compile: Annotated[Optional[bool], typer.Option("--compile/--no-compile", help="torch.compile.")] = None,
    workers: Annotated[Optional[int], typer.Option(help="DataLoader workers.")] = None,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print errors and the summary only.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary to stdout.")] = False,
) -> None:
    """Train DBSNl self-supervised with SDAP (RSG sub-samples + cyclic L1) on noisy images only.

    Writes RUN/config.yaml, RUN/train_log.csv, RUN/state.pt (for --resume) and RUN/best.safetensors /
    RUN/last.safetensors, which `sdap denoise --weights` loads.
    """
    from .commands import train as cmd
    from .console import TrainProgress, info

    flags = dict(data=data, out=out, preset=preset, iterations=iterations, batch=batch, patch=patch, lr=lr,
                 schedule=schedule, init=init, val=val, val_every=val_every, checkpoint_every=checkpoint_every,
                 seed=seed, device=device, precision=precision, compile=compile, workers=workers,
                 threads=threads, model={"base_ch": base_ch, "num_module": num_module})
    try:
        cfg = cmd.build_config(flags, config)
    except ValidationError as e:
        raise _fail(_validation_message(e), 2) from None
    except SdapError as e:
        raise _fail(str(e), 2) from None
    progress = TrainProgress(cfg.iterations, quiet)
    try:
        result = cmd.run(cfg, resume=resume, on_step=progress.step, on_validate=progress.validate)
    except SdapError as e:
        raise _fail(str(e)) from None
    except KeyboardInterrupt:
        raise _fail(f"interrupted; state saved, continue with --resume --out {cfg.out}", 130) from None
    finally:
        progress.close()
    best = result.best
    msg = f"{result.iterations} steps in {result.seconds:.0f} s; weights: {result.best_path}"
    if best:
        msg += f" (best step {best['step']}: {best['psnr_e']:.2f} dB with E, {best['psnr']:.2f} dB PD-2)"
    info(msg)
    if json_out:
        sys.stdout.write(json.dumps({"out": str(result.out), "iterations": result.iterations,
                                     "seconds": result.seconds, "best": best, "history": result.history,
                                     "best_path": str(result.best_path), "last_path": str(result.last_path)},
                                    indent=2) + "\n")


def main() -> None:
    """Console-script entry point."""
    app()
