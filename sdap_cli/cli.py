"""The `sdap` command line: one thin function per subcommand (Typer)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError

from .config import BenchmarkConfig
from .errors import SdapError
from .options import (WeightsOpt, RefineOpt, TileOpt, OverlapOpt, DeviceOpt, PrecisionOpt, ThreadsOpt,
                      CompileOpt, AdaptItersOpt, AdaptLrOpt, StrengthOpt, PdOpt, ModelOpt, DataOpt, AutoOpt,
                      ConfigOpt, ResumeOpt, ValOpt, ValEveryOpt, CheckpointEveryOpt, SeedOpt, VersionOpt,
                      comma_list as split, on_off, ExportModelOpt, OpsetOpt, CheckOpt, EmaOpt, shown)
from .options import (QuietOpt, OutputOpt, R3SeedOpt, R3TOpt, R3POpt, RecursiveOpt, SuffixOpt, FormatOpt,
                      QualityOpt, StripMetadataOpt, OverwriteOpt, SkipExistingOpt, ShardOpt, AdaptOpt,
                      SaveAdaptedOpt, JsonOutOpt, DatasetOpt, DataDirOpt, NoisyOpt, CleanOpt, DenoisedOpt,
                      ConventionOpt, LimitOpt, SaveOpt, CsvOpt, JsonFileOpt, FigureOpt, SubmitOpt)

def _flags_without_metavar() -> None:
    """Typer (0.2x) prints a ``<bool>`` type column for on/off flags, which take no value: show none."""
    from typer.core import TyperOption

    shown_type = getattr(TyperOption, "display_type_rich", None)
    if shown_type is None or getattr(shown_type, "_sdap", False):
        return

    def display_type_rich(self, ctx):
        return None if self.is_flag else shown_type(self, ctx)

    display_type_rich._sdap = True
    TyperOption.display_type_rich = display_type_rich


_flags_without_metavar()

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


@app.callback()
def _root(version: VersionOpt = False) -> None:
    """Remove real camera noise from photos with SDAP (self-supervised blind-spot network)."""


def _fail(message: str, code: int = 1) -> typer.Exit:
    from .console import error

    error(message)
    return typer.Exit(code=code)


def _run(fn, progress, interrupted: str = "interrupted"):
    """Call ``fn()``; SdapError -> one line, exit ``e.exit_code`` (1; 2 for usage errors); Ctrl-C -> one
    line, exit 130; always close the progress."""
    try:
        return fn()
    except SdapError as e:
        raise _fail(str(e), e.exit_code) from None
    except KeyboardInterrupt:
        raise _fail(interrupted, 130) from None
    finally:
        progress.close()


def _config(cls, flags: dict, config_file: Optional[Path] = None, whole: Optional[str] = "--config"):
    """``config.resolve``; a bad value or file is one line naming the flag, exit code 2."""
    from .config import ConfigFileError, resolve
    from .console import flag_message

    try:
        return resolve(cls, flags, config_file)
    except ValidationError as e:
        raise _fail(flag_message(e, whole), 2) from None
    except ConfigFileError as e:
        raise _fail(str(e), 2) from None


@app.command(epilog="Examples:\n\n  sdap denoise noisy/*.png -o clean/\n\n"
                    "  sdap denoise photos/ --recursive -o out/ --skip-existing\n\n"
                    "  sdap denoise IMG_0001.dng -o clean/          (16-bit TIFF)\n\n"
                    "  cat a.png | sdap denoise - -o - > b.png\n\n"
                    "  sdap denoise big/ -o out/ --shard $SLURM_ARRAY_TASK_ID/8")
def denoise(
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders, globs, or - for stdin.",
                                                show_default=False)],
    output: OutputOpt = None,
    weights: WeightsOpt = None,
    model: ModelOpt = None,
    refine: RefineOpt = None,
    pd: PdOpt = None,
    tile: TileOpt = None,
    tile_overlap: OverlapOpt = None,
    device: DeviceOpt = None,
    precision: PrecisionOpt = None,
    threads: ThreadsOpt = None,
    strength: StrengthOpt = None,
    auto: AutoOpt = None,
    compile: CompileOpt = False,
    seed: R3SeedOpt = None,
    r3_t: R3TOpt = None,
    r3_p: R3POpt = None,
    recursive: RecursiveOpt = False,
    suffix: SuffixOpt = None,
    format: FormatOpt = None,
    quality: QualityOpt = None,
    strip_metadata: StripMetadataOpt = False,
    overwrite: OverwriteOpt = False,
    skip_existing: SkipExistingOpt = False,
    shard: ShardOpt = None,
    adapt: AdaptOpt = False,
    adapt_iters: AdaptItersOpt = None,
    adapt_lr: AdaptLrOpt = None,
    save_adapted: SaveAdaptedOpt = None,
    quiet: QuietOpt = False,
    json_out: JsonOutOpt = False,
) -> None:
    """Denoise images (PNG, JPEG, TIFF, BMP, WebP, HEIC, camera RAW) keeping size, bit depth, gray, alpha and metadata.

    Outputs are written atomically and never replace an input. A bad file is reported on one line and
    the batch goes on; the exit code is 1 if any file failed.
    """
    from .commands import denoise as cmd
    from .config import DenoiseConfig
    from .console import make_progress, report_denoise

    inference = dict(model=model, refine=refine, pd=pd, tile=tile, tile_overlap=tile_overlap, device=device,
                     precision=precision, threads=threads, seed=seed, r3_t=r3_t, r3_p=r3_p, adapt=adapt or None,
                     adapt_iters=adapt_iters, adapt_lr=adapt_lr, compile=compile or None, strength=strength,
                     auto=auto)
    cfg = _config(DenoiseConfig, dict(inputs=inputs, output=output, weights=weights, recursive=recursive,
                                      suffix=suffix, format=format, overwrite=overwrite, skip_existing=skip_existing,
                                      shard=shard, save_adapted=save_adapted, inference=inference, quality=quality,
                                      strip_metadata=strip_metadata or None))
    if json_out and cfg.output == "-":
        raise _fail("--json needs stdout, which --output - uses for the image", 2)
    progress = make_progress(quiet)
    result = _run(lambda: cmd.run(cfg, progress=progress), progress)
    report_denoise(result, quiet, json_out)
    if result.failed:
        raise typer.Exit(code=1)


@app.command(epilog="Examples:\n\n  sdap train --data ./SIDD_Medium_Srgb --preset stage1 --val ./sidd_val --out runs/s1\n\n"
                    "  sdap train --data ./SIDD_Medium_Srgb --preset stage2 --init runs/s1/best.safetensors "
                    "--out runs/s2\n\n"
                    "  sdap train --config my.yaml --resume\n\n"
                    "  torchrun --nproc_per_node=4 -m sdap_cli train --data ... (DDP)")
def train(
    data: DataOpt = None,
    out: Annotated[Optional[str], typer.Option("--out", "-o", help="Run folder (default runs/sdap).")] = None,
    config: ConfigOpt = None,
    preset: Annotated[Optional[str], typer.Option(help="stage1 (lr 1e-4, patch 160, batch 16) or stage2 "
                      "(lr 1e-5, patch 250, batch 8, needs --init).")] = None,
    resume: ResumeOpt = False,
    iterations: Annotated[Optional[int], typer.Option("--iterations", "-n", help="Total steps.")] = None,
    batch: Annotated[Optional[int], typer.Option(help="Crops per step.")] = None,
    patch: Annotated[Optional[int], typer.Option(help="Crop side (multiple of p=5).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Adam learning rate.")] = None,
    schedule: Annotated[Optional[str], typer.Option(help="constant or cosine.")] = None,
    init: Annotated[Optional[Path], typer.Option(help="Initial weights.")] = None,
    val: ValOpt = None,
    val_every: ValEveryOpt = None,
    checkpoint_every: CheckpointEveryOpt = None,
    ema: EmaOpt = None,
    base_ch: Annotated[Optional[int], typer.Option(help="DBSNl width (128 in the paper).")] = None,
    num_module: Annotated[Optional[int], typer.Option(help="DBSNl blocks per branch (9).")] = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    precision: Annotated[Optional[str], typer.Option(help="auto, fp32, bf16 or fp16 (autocast).")] = None,
    compile: Annotated[Optional[bool], typer.Option("--compile/--no-compile", help="torch.compile.")] = None,
    workers: Annotated[Optional[int], typer.Option(help="DataLoader workers.")] = None,
    threads: ThreadsOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print errors and the summary only.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary to stdout.")] = False,
) -> None:
    """Train DBSNl self-supervised with SDAP (RSG sub-samples + cyclic L1) on noisy images only.

    Writes RUN/config.yaml, RUN/train_log.csv, RUN/state.pt (for --resume) and RUN/best.safetensors /
    RUN/last.safetensors, which `sdap denoise --weights` loads.
    """
    from .commands import train as cmd
    from .config import TrainConfig
    from .console import TrainProgress, report_training

    flags = dict(data=data, out=out, preset=preset, iterations=iterations, batch=batch, patch=patch, lr=lr,
                 schedule=schedule, init=init, val=val, val_every=val_every, checkpoint_every=checkpoint_every,
                 seed=seed, device=device, precision=precision, compile=compile, workers=workers, ema=ema,
                 threads=threads, model={"base_ch": base_ch, "num_module": num_module})
    cfg = _config(TrainConfig, flags, config)
    progress = TrainProgress(cfg.iterations, quiet)
    result = _run(lambda: cmd.run(cfg, resume=resume, on_step=progress.step, on_validate=progress.validate),
                  progress, f"interrupted; state and last.safetensors saved, continue with --resume --out {cfg.out}")
    report_training(result, json_out)


@app.command(epilog="Examples:\n\n  sdap distill --data ./noisy_photos --val ./sidd_val --out runs/student\n\n"
                    "  sdap distill --teacher runs/s2/best.safetensors --data ./SIDD_Medium_Srgb -n 20000\n\n"
                    "  sdap distill --config distill.yaml --resume\n\n"
                    "  sdap denoise photo.png -w runs/student/best.safetensors")
def distill(
    data: DataOpt = None,
    teacher: Annotated[Optional[Path], typer.Option("--teacher", "-t", help="Teacher weights (DBSNl). "
                       "Default: the shipped teacher.")] = None,
    ensemble: Annotated[Optional[list[Path]], typer.Option(help="One more teacher (repeatable): each target is "
                        "the mean of all the teachers' outputs.")] = None,
    teacher_refine: Annotated[Optional[str], typer.Option(help="How the teacher denoises: e (default), r3 "
                              "or none.")] = None,
    out: Annotated[Optional[str], typer.Option("--out", "-o", help="Run folder (default runs/distill).")] = None,
    config: ConfigOpt = None,
    cache: Annotated[Optional[Path], typer.Option(help="Folder of cached teacher outputs (default "
                     "RUN/teacher_cache).")] = None,
    targets: Annotated[Optional[str], typer.Option(help="Comma list of teacher outputs to learn, loss summed: "
                       "teacher (default), phase1-3, hflip, vflip, rot90, auto.")] = None,
    recharge: Annotated[Optional[float], typer.Option(help="Probability that a pixel of one random target "
                        "takes the noisy value (0).")] = None,
    resume: ResumeOpt = False,
    iterations: Annotated[Optional[int], typer.Option("--iterations", "-n", help="Total steps (10000).")] = None,
    batch: Annotated[Optional[int], typer.Option(help="Crops per step (8).")] = None,
    patch: Annotated[Optional[int], typer.Option(help="Crop side, a multiple of 8 (128).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Adam learning rate (5e-4).")] = None,
    schedule: Annotated[Optional[str], typer.Option(help="cosine (default) or constant.")] = None,
    init: Annotated[Optional[Path], typer.Option(help="Initial student weights.")] = None,
    val: ValOpt = None,
    val_every: ValEveryOpt = None,
    checkpoint_every: CheckpointEveryOpt = None,
    ema: EmaOpt = None,
    student_ch: Annotated[Optional[str], typer.Option(help="Student channels per level (default 32,64,128).")] = None,
    student_blocks: Annotated[Optional[str], typer.Option(help="Student residual blocks per level (default "
                              "1,1,2).")] = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    precision: Annotated[Optional[str], typer.Option(help="auto, fp32, bf16 or fp16 (autocast).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="DataLoader workers.")] = None,
    threads: ThreadsOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print errors and the summary only.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary to stdout.")] = False,
) -> None:
    """Distil the SDAP teacher into a small one-pass student network (20x+ faster on CPU).

    The teacher denoises the noisy images once (cached on disk), then the student learns noisy ->
    teacher output (L1). Writes the same run folder as `sdap train`; `sdap denoise --weights
    RUN/best.safetensors` loads the student.
    """
    from .commands import distill as cmd
    from .config import DistillConfig
    from .console import TrainProgress, report_training

    def triple(v: Optional[str], name: str):
        if v is None:
            return None
        try:
            return tuple(int(x) for x in v.split(","))
        except ValueError:
            raise _fail(f"--{name} {v!r}: give three integers, e.g. 32,64,128", 2) from None

    flags = dict(data=data, teacher=teacher, teacher_refine=teacher_refine, out=out, cache=cache, recharge=recharge,
                 targets=targets.split(",") if targets else None, ensemble=ensemble,
                 iterations=iterations, batch=batch, patch=patch, lr=lr, schedule=schedule, init=init, val=val,
                 val_every=val_every, checkpoint_every=checkpoint_every, seed=seed, device=device,
                 precision=precision, workers=workers, threads=threads, ema=ema,
                 student={"ch": triple(student_ch, "student-ch"), "blocks": triple(student_blocks, "student-blocks")})
    cfg = _config(DistillConfig, flags, config)
    progress = TrainProgress(cfg.iterations, quiet)
    result = _run(lambda: cmd.run(cfg, resume=resume, on_teacher=progress.teacher, on_step=progress.step,
                                  on_validate=progress.validate),
                  progress, f"interrupted; state and last.safetensors saved, continue with --resume --out {cfg.out}")
    report_training(result, json_out, distilled=True)


@app.command(epilog="Examples:\n\n  sdap benchmark                     (a quick look: the default network, 3 sizes)\n\n"
                    "  sdap benchmark --full --json bench.json\n\n"
                    "  sdap benchmark --model full --sizes 12mp --refine none --precision bf16\n\n"
                    "  sdap benchmark --model default,student --sizes 512,12mp --precision bf16")
def benchmark(
    full: Annotated[bool, typer.Option("--full", help="Time the full grid (teacher and student, 4 sizes, "
                    "none/e, fp32/bf16: about half an hour on 2 CPU cores) for every list not given.",
                    show_default=shown(BenchmarkConfig, "full"))] = False,
    sizes: Annotated[Optional[str], typer.Option(help="Comma list: sides in pixels, 12mp, 24mp.",
                     show_default=shown(BenchmarkConfig, "sizes"))] = None,
    refine: Annotated[Optional[str], typer.Option(help="Comma list of none, e, r3 (teacher rows).",
                      show_default=shown(BenchmarkConfig, "refine"))] = None,
    precision: Annotated[Optional[str], typer.Option(help="Comma list of fp32, bf16, fp16, auto.",
                         show_default=shown(BenchmarkConfig, "precision"))] = None,
    channels_last: Annotated[Optional[str], typer.Option(help="Comma list of on/off.",
                             show_default=shown(BenchmarkConfig, "channels_last"))] = None,
    compile: Annotated[Optional[str], typer.Option(help="Comma list of on/off: torch.compile.",
                       show_default=shown(BenchmarkConfig, "compile"))] = None,
    model: Annotated[Optional[str], typer.Option(help="Comma list of auto (what sdap denoise runs by default "
                     "here: the student on CPU, the teacher on CUDA), default (the shipped teacher), student "
                     "(the shipped distilled student) and full (the paper's 128/9 DBSNl, random weights).",
                     show_default=shown(BenchmarkConfig, "model"))] = None,
    weights: Annotated[Optional[Path], typer.Option("--weights", "-w", help="Time this weights file's "
                       "network.")] = None,
    device: DeviceOpt = None,
    threads: ThreadsOpt = None,
    tile: Annotated[Optional[int], typer.Option(help="Tile side.", show_default=shown(BenchmarkConfig, "tile",
                    "automatic"))] = None,
    warmup: Annotated[Optional[int], typer.Option(help="Warm-up runs.",
                      show_default=shown(BenchmarkConfig, "warmup"))] = None,
    runs: Annotated[Optional[int], typer.Option(help="Timed runs (1 for >= 4 MP).",
                    show_default=shown(BenchmarkConfig, "runs"))] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the results here.")] = None,
) -> None:
    """Time denoising: ms per image, megapixels/s, achieved MAC/s against the analytic count, and peak
    memory (process RSS on CPU, max allocated on CUDA), each setting in a fresh process. Without options a
    quick look (about a minute on 2 CPU cores); --full for the whole grid."""
    from .commands import benchmark as cmd
    from .console import benchmark_table, info

    values = dict(full=full or None, sizes=split(sizes), refine=split(refine), precision=split(precision),
                  channels_last=split(channels_last, on_off), compile=split(compile, on_off), model=split(model),
                  weights=weights, device=device, threads=threads, tile=tile, warmup=warmup, runs=runs)
    cfg = _config(BenchmarkConfig, values)
    partial, planned = cmd.BenchmarkResult(), None
    try:
        planned = cmd.plan(cfg)
        info(f"timing {len(planned.rows)} setting(s) on {planned.device}, roughly {planned.seconds:.0f} s: "
             + ", ".join(f"{r.model} {r.size} {r.refine} {r.precision}" for r in planned.rows))
        result = cmd.run(cfg, planned=planned, result=partial,
                         on_row=lambda r: info(f"{r.model} {r.size} {r.refine} {r.precision}: "
                                               f"{r.error or f'{r.ms:.0f} ms, {r.mpix_per_s:.3f} MP/s'}"))
    except SdapError as e:
        raise _fail(str(e), e.exit_code) from None
    except KeyboardInterrupt:
        if partial.rows:
            benchmark_table(partial)
        total = f" of {len(planned.rows)}" if planned else ""
        raise _fail(f"interrupted after {len(partial.rows)}{total} setting(s)", 130) from None
    benchmark_table(result)
    if json_path is not None:
        json_path.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    if any(r.error for r in result.rows):
        raise typer.Exit(code=1)


@app.command(epilog="Examples:\n\n"
                    "  sdap evaluate --noisy SIDD_noisy/ --clean SIDD_clean/ --csv scores.csv\n\n"
                    "  sdap evaluate --data-dir sidd_val_blocks/ --save out/ --figure fig.png\n\n"
                    "  sdap evaluate --dataset sidd-val --data-dir SIDD/ --limit 64 --json val.json\n\n"
                    "  sdap evaluate --denoised out/ --clean SIDD_clean/ --metric-convention y\n\n"
                    "  sdap evaluate --dataset sidd-bench --data-dir SIDD/ --submit SubmitSrgb.csv\n\n"
                    "  sdap evaluate --dataset dnd --data-dir dnd_2017/ --submit bundled/")
def evaluate(
    dataset: DatasetOpt = None,
    data_dir: DataDirOpt = None,
    noisy: NoisyOpt = None,
    clean: CleanOpt = None,
    denoised: DenoisedOpt = None,
    weights: WeightsOpt = None,
    model: ModelOpt = None,
    refine: RefineOpt = None,
    pd: PdOpt = None,
    tile: TileOpt = None,
    tile_overlap: OverlapOpt = None,
    device: DeviceOpt = None,
    precision: PrecisionOpt = None,
    strength: StrengthOpt = None,
    auto: AutoOpt = None,
    compile: CompileOpt = False,
    metric_convention: ConventionOpt = None,
    limit: LimitOpt = None,
    save: SaveOpt = None,
    csv: CsvOpt = None,
    json_file: JsonFileOpt = None,
    figure: FigureOpt = None,
    submit: SubmitOpt = None,
    adapt: AdaptOpt = False,
    adapt_iters: AdaptItersOpt = None,
    adapt_lr: AdaptLrOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Score denoising with PSNR/SSIM against clean references, and write benchmark submissions.

    Prints a table (noisy input and denoised PSNR/SSIM per image, mean and std) on stdout. The exit
    code is 1 if any image failed.
    """
    from .commands import evaluate as cmd
    from .config import EvalConfig
    from .console import EvalProgress, report_evaluate

    inference = dict(model=model, refine=refine, pd=pd, tile=tile, tile_overlap=tile_overlap, device=device,
                     precision=precision, adapt=adapt or None, adapt_iters=adapt_iters, adapt_lr=adapt_lr,
                     compile=compile or None, strength=strength, auto=auto)
    flags = dict(dataset=dataset, data_dir=data_dir, noisy=noisy, clean=clean, denoised=denoised, weights=weights,
                 metric_convention=metric_convention, limit=limit, save=save, csv=csv, json=json_file,
                 figure=figure, submit=submit, inference=inference)
    cfg = _config(EvalConfig, flags, whole=None)
    progress = EvalProgress(quiet)
    result = _run(lambda: cmd.run(cfg, progress=progress), progress)
    report_evaluate(result, quiet, cmd.CONVENTION_NOTES[cfg.metric_convention], cfg.save)
    if result.failed:
        raise typer.Exit(code=1)


@app.command(epilog="Examples:\n\n  sdap export denoiser.onnx\n\n  sdap export teacher.onnx --model teacher\n\n"
                    "  sdap export student.pt -w runs/student/best.safetensors")
def export(
    output: Annotated[Path, typer.Argument(help="Output: .onnx (ONNX) or .pt (TorchScript).", show_default=False)],
    weights: WeightsOpt = None,
    model: ExportModelOpt = None,
    opset: OpsetOpt = None,
    check: CheckOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary to stdout.")] = False,
) -> None:
    """Export a network with its whole inference (pad, PD-2 + E or one pass, crop, clamp) to one file:
    input 'noisy' (N, 3, H, W) float32 RGB 0-1, any H, W (>= 2 teacher, >= 8 student), output 'denoised'
    of the same shape. The .pt is scripted TorchScript (any size too); .onnx needs the onnx package (pip install onnx onnxruntime)."""
    from .commands import export as cmd
    from .config import ExportConfig
    from .console import report_export

    cfg = _config(ExportConfig, dict(output=output, weights=weights, model=model, opset=opset, check=check,
                                     overwrite=overwrite or None), whole=None)
    try:
        result = cmd.run(cfg)
    except SdapError as e:
        raise _fail(str(e), e.exit_code) from None
    report_export(result, json_out)


def main() -> None:
    """Console-script entry point."""
    app()
