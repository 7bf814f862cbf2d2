"""Typer option types shared by several subcommands of ``cli.py`` (declared once, used there only)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

# Options shared by denoise, evaluate, train and benchmark (declared once).
WeightsOpt = Annotated[Optional[Path], typer.Option("--weights", "-w", help="Weights: ours (.safetensors), "
                       "official SDAP or AP-BSN (.pth). Default: the shipped model.")]
RefineOpt = Annotated[Optional[str], typer.Option(help="Refinement after the PD-2 pass: e (SDAP's second "
                      "pass, default), r3 (AP-BSN), none (fastest).")]
TileOpt = Annotated[Optional[int], typer.Option(help="Tile side in pixels, overlap included. Default: from "
                    "free memory.")]
OverlapOpt = Annotated[Optional[int], typer.Option(help="Context per tile side. Default: the receptive "
                       "field, so tiles match the whole-image result.")]
DeviceOpt = Annotated[Optional[str], typer.Option(help="auto, cpu, cuda or mps.")]
PrecisionOpt = Annotated[Optional[str], typer.Option(help="auto, fp32, bf16 or fp16.")]
ThreadsOpt = Annotated[Optional[int], typer.Option(help="CPU threads.")]
CompileOpt = Annotated[bool, typer.Option("--compile", help="torch.compile the network (faster on large "
                       "images and same-size batches; the first image of each size pays the compile).")]
AdaptItersOpt = Annotated[Optional[int], typer.Option(help="Steps of --adapt (default 100).")]
AdaptLrOpt = Annotated[Optional[float], typer.Option(help="Learning rate of --adapt (5e-5).")]
StrengthOpt = Annotated[Optional[float], typer.Option(help="Denoising strength 0-1: output = input + "
                         "s x (denoised - input). 1 (default) full; ~0.5 keeps fine detail on light noise.")]
PdOpt = Annotated[Optional[int], typer.Option("--pd", help="PD factor of the teacher's first pass: 2 "
                  "(SDAP, default) for camera noise correlated between neighbouring pixels; 1 for light, "
                  "pixel-independent noise (clean DSLR shots).")]
ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help="auto (default: the fast distilled "
                     "student on CPU, the SDAP teacher on CUDA or with --refine/--pd/--adapt), teacher or student.")]

# Options shared by train and distill.
DataOpt = Annotated[Optional[list[str]], typer.Option("--data", "-d", help="Folder or file of noisy images "
                    "(repeatable; searched recursively; GT files ignored).")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML file of options "
                      "(flags override it).")]
ResumeOpt = Annotated[bool, typer.Option(help="Continue from RUN/state.pt.")]
ValOpt = Annotated[Optional[str], typer.Option(help="Validation folder (noisy/clean sub-folders, or "
                   "the SIDD validation .mat files).")]
ValEveryOpt = Annotated[Optional[int], typer.Option(help="Validate every N steps.")]
CheckpointEveryOpt = Annotated[Optional[int], typer.Option(help="Save resumable state every N steps.")]
SeedOpt = Annotated[Optional[int], typer.Option(help="Seed.")]
AutoOpt = Annotated[Optional[bool], typer.Option("--auto/--no-auto", help="Measure each image's noise and "
                    "choose its path (default): phone-like noise -> the default network; light or white noise "
                    "-> the teacher at PD-1 blended to keep detail; a clean image -> itself. --no-auto, or any "
                    "of --model teacher/student, --pd, --refine, --strength, --adapt: one fixed path.")]

# Options of export.
ExportModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help="student (default: one pass, ~20x "
                           "cheaper) or teacher (DBSNl, PD-2 and E inside the graph).")]
OpsetOpt = Annotated[Optional[int], typer.Option(help="ONNX opset, 17 or newer (default 17).")]
CheckOpt = Annotated[Optional[bool], typer.Option("--check/--no-check", help="Run the written file once and "
                     "report its max difference to torch (default on; ONNX needs onnxruntime).")]


def show_version(value: bool) -> None:
    """``--version``: print the sdap and torch versions and exit."""
    if value:
        import torch

        from . import __version__

        typer.echo(f"sdap {__version__} (torch {torch.__version__})")
        raise typer.Exit()


VersionOpt = Annotated[bool, typer.Option("--version", callback=show_version, is_eager=True,
                                          help="Show the version and exit.")]


def comma_list(v: Optional[str], conv=str) -> Optional[list]:
    """A comma-separated option as a list of ``conv(item)`` (empty items dropped); None stays None."""
    return None if v is None else [conv(x.strip()) for x in v.split(",") if x.strip()]


def on_off(x: str) -> bool:
    """on/true/1/yes -> True, off/false/0/no -> False; anything else is a bad parameter."""
    if x.lower() in ("on", "true", "1", "yes"):
        return True
    if x.lower() in ("off", "false", "0", "no"):
        return False
    raise typer.BadParameter(f"{x!r}: use on or off")
