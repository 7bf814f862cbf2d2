"""The `sdap` command line: one thin function per subcommand (Typer).

Each function turns its flags into the command's config (``config.resolve``), runs ``commands.<name>.run``
and hands the result to ``console``. Every one of them runs inside :func:`boundary`, the one place where
errors become a one-line message and an exit code: a bad flag, value or config file (2), any other
``SdapError`` (its ``exit_code``: 1, or 2 for usage errors), Ctrl-C (130). The options themselves are
declared in ``options.py``.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Callable, Iterator, Optional

import typer

from . import options as o
from .config import BenchmarkConfig, DenoiseConfig, EvalConfig, ExportConfig
from .errors import ConfigError, SdapError, first_line
from .training_config import DistillConfig, TrainConfig


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
    no_args_is_help=True, rich_markup_mode="rich", pretty_exceptions_enable=False,
)


@app.callback()
def _root(version: o.VersionOpt = False) -> None:
    """Remove real camera noise from photos with SDAP (self-supervised blind-spot network)."""


class Run:
    """What :func:`boundary` needs to know of a running command: progress displays to close, the
    Ctrl-C message, and what to show of the work done before Ctrl-C."""

    def __init__(self) -> None:
        self.closing: list = []
        self.interrupted = "interrupted"
        self.on_interrupt: Callable[[], None] | None = None

    def progress(self, p):
        """Register a progress display to close however the command ends; returns it."""
        self.closing.append(p)
        return p


@contextmanager
def boundary() -> Iterator[Run]:
    """The one error boundary of every command: SdapError -> one line, exit ``e.exit_code`` (1; 2 for
    usage errors); Ctrl-C -> what finished (``Run.on_interrupt``), one line, exit 130; any other exception
    (a bug) -> one line, exit 1 (``SDAP_TRACEBACK=1`` raises it instead); progress closed."""
    from .console import error

    run = Run()
    code, message = 0, ""
    try:
        yield run
    except SdapError as e:
        code, message = e.exit_code, str(e)
    except KeyboardInterrupt:
        code = 130
    except Exception as e:                      # noqa: BLE001 - a bug: still one line, no traceback
        if os.environ.get("SDAP_TRACEBACK"):
            raise
        code, message = 1, (f"unexpected error, {type(e).__name__}: {first_line(e)} (SDAP_TRACEBACK=1 shows "
                            "where)")
    finally:
        for p in run.closing:
            p.close()
    if code == 130:
        if run.on_interrupt is not None:
            run.on_interrupt()
        message = run.interrupted
    if code:
        error(message)
        raise typer.Exit(code=code)


def _config(cls, flags: dict, config_file: Optional[Path] = None, whole: Optional[str] = "--config"):
    """``config.resolve``; a bad value or file becomes a ConfigError naming the flag (exit code 2)."""
    from pydantic import ValidationError

    from .config_sources import ConfigFileError, resolve
    from .console import flag_message

    try:
        return resolve(cls, flags, config_file)
    except ValidationError as e:
        raise ConfigError(flag_message(e, whole)) from None
    except ConfigFileError as e:
        raise ConfigError(str(e)) from None


def _triple(v: Optional[str], name: str) -> tuple[int, ...] | None:
    """'32,64,128' -> (32, 64, 128); a usage error naming ``--name`` otherwise."""
    if v is None:
        return None
    try:
        return tuple(int(x) for x in v.split(","))
    except ValueError:
        raise ConfigError(f"--{name} {v!r}: give three integers, e.g. 32,64,128") from None


def _floats(v: Optional[str], name: str, n: int | None = None) -> list[float] | None:
    """'1,0.5' -> [1.0, 0.5] (``n`` of them when given); a usage error naming ``--name`` otherwise."""
    if v is None:
        return None
    try:
        out = [float(x) for x in v.split(",")]
    except ValueError:
        out = []
    if not out or (n is not None and len(out) != n):
        raise ConfigError(f"--{name} {v!r}: give {n or 'one or more'} numbers separated by commas")
    return out


@app.command(epilog="Examples:\n\n  sdap denoise noisy/*.png -o clean/\n\n"
                    "  sdap denoise photos/ --recursive -o out/ --skip-existing\n\n"
                    "  sdap denoise IMG_0001.dng -o clean/          (16-bit TIFF)\n\n"
                    "  cat a.png | sdap denoise - -o - > b.png\n\n"
                    "  sdap denoise big/ -o out/ --shard $SLURM_ARRAY_TASK_ID/8")
def denoise(
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders, globs, or - for stdin.",
                                                show_default=False)],
    output: o.OutputOpt = None, weights: o.WeightsOpt = None, model: o.ModelOpt = None,
    refine: o.RefineOpt = None, pd: o.PdOpt = None, tile: o.TileOpt = None, tile_overlap: o.OverlapOpt = None,
    device: o.DeviceOpt = None, precision: o.PrecisionOpt = None, threads: o.ThreadsOpt = None,
    runtime: o.RuntimeOpt = None, strength: o.StrengthOpt = None, auto: o.AutoOpt = None, compile: o.CompileOpt = False,
    seed: o.R3SeedOpt = None, r3_t: o.R3TOpt = None, r3_p: o.R3POpt = None, recursive: o.RecursiveOpt = False,
    suffix: o.SuffixOpt = None, format: o.FormatOpt = None, quality: o.QualityOpt = None,
    strip_metadata: o.StripMetadataOpt = False, overwrite: o.OverwriteOpt = False,
    skip_existing: o.SkipExistingOpt = False, shard: o.ShardOpt = None, adapt: o.AdaptOpt = False,
    adapt_iters: o.AdaptItersOpt = None, adapt_lr: o.AdaptLrOpt = None, save_adapted: o.SaveAdaptedOpt = None,
    quiet: o.QuietOpt = False, json_out: o.JsonOutOpt = False,
) -> None:
    """Denoise images (PNG, JPEG, TIFF, BMP, WebP, HEIC, camera RAW) keeping size, bit depth, gray, alpha and metadata.

    Outputs are written atomically and never replace an input. A bad file is reported on one line and
    the batch goes on; the exit code is 1 if any file failed.
    """
    from .commands import denoise as cmd
    from .console import report_denoise
    from .progress import make_progress

    with boundary() as run:
        inference = dict(model=model, refine=refine, pd=pd, tile=tile, tile_overlap=tile_overlap, device=device,
                         precision=precision, threads=threads, runtime=runtime, seed=seed, r3_t=r3_t, r3_p=r3_p,
                         adapt=adapt or None, adapt_iters=adapt_iters, adapt_lr=adapt_lr, compile=compile or None,
                         strength=strength, auto=auto)
        cfg = _config(DenoiseConfig, dict(inputs=inputs, output=output, weights=weights, recursive=recursive,
                                          suffix=suffix, format=format, overwrite=overwrite,
                                          skip_existing=skip_existing, shard=shard, save_adapted=save_adapted,
                                          inference=inference, quality=quality, strip_metadata=strip_metadata or None))
        if json_out and cfg.output == "-":
            raise ConfigError("--json needs stdout, which --output - uses for the image")
        progress = run.progress(make_progress(quiet))
        result = cmd.run(cfg, progress=progress)
    report_denoise(result, quiet, json_out)
    if result.failed:
        raise typer.Exit(code=1)


@app.command(epilog="Examples:\n\n  sdap train --data ./SIDD_Medium_Srgb --preset stage1 --val ./sidd_val --out runs/s1\n\n"
                    "  sdap train --data ./SIDD_Medium_Srgb --preset stage2 --init runs/s1/best.safetensors "
                    "--out runs/s2\n\n"
                    "  sdap train --config my.yaml --resume\n\n"
                    "  torchrun --nproc_per_node=4 -m sdap_cli train --data ... (DDP)")
def train(
    data: o.DataOpt = None, out: o.out_opt(TrainConfig) = None, config: o.ConfigOpt = None,
    preset: o.PresetOpt = None, resume: o.ResumeOpt = False, iterations: o.iterations_opt(TrainConfig) = None,
    batch: o.batch_opt(TrainConfig) = None, patch: o.patch_opt(TrainConfig, "multiple of p=5") = None,
    lr: o.lr_opt(TrainConfig) = None, schedule: o.schedule_opt(TrainConfig) = None, warmup: o.WarmupOpt = None,
    init: o.InitOpt = None, val: o.ValOpt = None, val_every: o.ValEveryOpt = None,
    checkpoint_every: o.CheckpointEveryOpt = None, ema: o.EmaOpt = None, base_ch: o.BaseChOpt = None,
    num_module: o.NumModuleOpt = None, seed: o.SeedOpt = None, device: o.TrainDeviceOpt = None,
    precision: o.TrainPrecisionOpt = None, compile: o.TrainCompileOpt = None, workers: o.WorkersOpt = None,
    threads: o.ThreadsOpt = None, quiet: o.SummaryQuietOpt = False, json_out: o.JsonOutOpt = False,
) -> None:
    """Train DBSNl self-supervised with SDAP (RSG sub-samples + cyclic L1) on noisy images only.

    Writes RUN/config.yaml, RUN/train_log.csv, RUN/state.pt (for --resume) and RUN/best.safetensors /
    RUN/last.safetensors, which `sdap denoise --weights` loads.
    """
    from .commands import train as cmd
    from .console import report_training
    from .progress import TrainProgress

    with boundary() as run:
        flags = dict(data=data, out=out, preset=preset, iterations=iterations, batch=batch, patch=patch, lr=lr,
                     schedule=schedule, warmup=warmup, init=init, val=val, val_every=val_every,
                     checkpoint_every=checkpoint_every, seed=seed, device=device, precision=precision,
                     compile=compile, workers=workers, ema=ema, threads=threads,
                     model={"base_ch": base_ch, "num_module": num_module})
        cfg = _config(TrainConfig, flags, config)
        run.interrupted = f"interrupted; state and last.safetensors saved, continue with --resume --out {cfg.out}"
        progress = run.progress(TrainProgress(cfg.iterations, quiet))
        result = cmd.run(cfg, resume=resume, on_step=progress.step, on_validate=progress.validate)
    report_training(result, json_out)


@app.command(epilog="Examples:\n\n  sdap distill --data ./noisy_photos --val ./sidd_val --out runs/student\n\n"
                    "  sdap distill --teacher runs/s2/best.safetensors --data ./SIDD_Medium_Srgb -n 20000\n\n"
                    "  sdap distill --config distill.yaml --resume\n\n"
                    "  sdap denoise photo.png -w runs/student/best.safetensors")
def distill(
    data: o.DataOpt = None, teacher: o.TeacherOpt = None, ensemble: o.EnsembleOpt = None,
    teacher_refine: o.TeacherRefineOpt = None, out: o.out_opt(DistillConfig) = None, config: o.ConfigOpt = None,
    cache: o.CacheOpt = None, targets: o.TargetsOpt = None, self_ensemble: o.SelfEnsembleOpt = None,
    recharge: o.RechargeOpt = None, condition: o.ConditionOpt = None, clean: o.CleanPhotosOpt = None, synthetic: o.SyntheticOpt = None,
    recolour: o.RecolourOpt = None, light_teacher: o.LightTeacherOpt = None, self_targets: o.SelfTargetsOpt = None,
    self_targets_ensemble: o.SelfTargetsEnsembleOpt = None, self_targets_told: o.SelfTargetsToldOpt = None,
    fresh_noise: o.FreshNoiseOpt = None, synthetic_levels: o.SyntheticLevelsOpt = None, synthetic_share: o.SyntheticShareOpt = None,
    clean_scales: o.CleanScalesOpt = None, target_blend: o.TargetBlendOpt = None, synthetic_kinds: o.SyntheticKindsOpt = None,
    resume: o.ResumeOpt = False, iterations: o.iterations_opt(DistillConfig) = None,
    batch: o.batch_opt(DistillConfig) = None, patch: o.patch_opt(DistillConfig, "multiple of 8") = None,
    lr: o.lr_opt(DistillConfig) = None, schedule: o.schedule_opt(DistillConfig) = None,
    warmup: o.WarmupOpt = None, init: o.StudentInitOpt = None, val: o.ValOpt = None,
    val_every: o.ValEveryOpt = None, checkpoint_every: o.CheckpointEveryOpt = None, ema: o.EmaOpt = None,
    student_ch: o.StudentChOpt = None, student_blocks: o.StudentBlocksOpt = None, seed: o.SeedOpt = None,
    device: o.TrainDeviceOpt = None, precision: o.TrainPrecisionOpt = None, workers: o.WorkersOpt = None,
    threads: o.ThreadsOpt = None, quiet: o.SummaryQuietOpt = False, json_out: o.JsonOutOpt = False,
) -> None:
    """Distil the SDAP teacher into a small one-pass student network (20x+ faster on CPU).

    The teacher denoises the noisy images once (cached on disk), then the student learns noisy ->
    teacher output (L1). Writes the same run folder as `sdap train`; `sdap denoise --weights
    RUN/best.safetensors` loads the student.
    """
    from .commands import distill as cmd
    from .console import report_training
    from .progress import TrainProgress

    with boundary() as run:
        flags = dict(data=data, teacher=teacher, teacher_refine=teacher_refine, out=out, cache=cache,
                     recharge=recharge, targets=targets.split(",") if targets else None, ensemble=ensemble,
                     self_ensemble=self_ensemble, fresh_noise=fresh_noise, synthetic_kinds=synthetic_kinds,
                     condition=condition, clean=clean, synthetic=synthetic, recolour=recolour,
                     light_teacher=light_teacher, synthetic_share=synthetic_share, self_targets=self_targets,
                     self_targets_ensemble=self_targets_ensemble, self_targets_told=self_targets_told,
                     synthetic_levels=_floats(synthetic_levels, "synthetic-levels", 2), clean_scales=_floats(clean_scales, "clean-scales"),
                     target_blend=_floats(target_blend, "target-blend", 2), iterations=iterations, batch=batch,
                     patch=patch, lr=lr, schedule=schedule, warmup=warmup, init=init, val=val, val_every=val_every,
                     checkpoint_every=checkpoint_every, seed=seed, device=device, precision=precision,
                     workers=workers, threads=threads, ema=ema,
                     student={"ch": _triple(student_ch, "student-ch"),
                              "blocks": _triple(student_blocks, "student-blocks")})
        cfg = _config(DistillConfig, flags, config)
        run.interrupted = f"interrupted; state and last.safetensors saved, continue with --resume --out {cfg.out}"
        progress = run.progress(TrainProgress(cfg.iterations, quiet))
        result = cmd.run(cfg, resume=resume, on_teacher=progress.teacher, on_step=progress.step,
                         on_validate=progress.validate)
    report_training(result, json_out, distilled=True)


@app.command(epilog="Examples:\n\n  sdap benchmark                     (a quick look: the default network, 3 sizes)\n\n"
                    "  sdap benchmark --full --json bench.json\n\n"
                    "  sdap benchmark --model full --sizes 12mp --refine none --precision bf16\n\n"
                    "  sdap benchmark --model default,student --sizes 512,12mp --precision bf16")
def benchmark(
    full: o.FullOpt = False, sizes: o.SizesOpt = None, refine: o.RefinesOpt = None, precision: o.PrecisionsOpt = None,
    channels_last: o.ChannelsLastOpt = None, compile: o.CompilesOpt = None, model: o.ModelsOpt = None,
    weights: o.BenchWeightsOpt = None, device: o.BenchDeviceOpt = None, threads: o.ThreadsOpt = None,
    tile: o.BenchTileOpt = None, warmup: o.WarmupRunsOpt = None, runs: o.RunsOpt = None,
    roofline: o.RooflineOpt = None, json_path: o.JsonWriteOpt = None, runtime: o.BenchRuntimeOpt = None,
) -> None:
    """Time denoising: ms per image, megapixels/s, achieved MAC/s against the analytic count and as a
    fraction of this machine's best convolution rate (roof), and peak memory (process RSS on CPU, max
    allocated on CUDA), each setting in a fresh process. Without options a
    quick look (about a minute on 2 CPU cores); --full for the whole grid."""
    from .commands import benchmark as cmd
    from .console import benchmark_table, info

    split, on_off = o.comma_list, o.on_off
    with boundary() as run:
        values = dict(full=full or None, sizes=split(sizes), refine=split(refine), precision=split(precision),
                      channels_last=split(channels_last, on_off), compile=split(compile, on_off),
                      model=split(model), weights=weights, device=device, threads=threads, tile=tile, runtime=runtime,
                      warmup=warmup, runs=runs, roofline=roofline)
        cfg = _config(BenchmarkConfig, values)
        planned = cmd.plan(cfg)
        partial = cmd.BenchmarkResult()

        def finished() -> None:         # Ctrl-C: the table of the settings that finished
            if partial.rows:
                benchmark_table(partial)
            run.interrupted = f"interrupted after {len(partial.rows)} of {len(planned.rows)} setting(s)"

        run.on_interrupt = finished
        info(f"timing {len(planned.rows)} setting(s) on {planned.device}, roughly {planned.seconds:.0f} s: "
             + ", ".join(f"{r.model} {r.size} {r.refine} {r.precision}" for r in planned.rows))
        result = cmd.run(cfg, planned=planned, result=partial,
                         on_row=lambda r: info(f"{r.model} {r.size} {r.refine} {r.precision}: "
                                               f"{r.error or f'{r.ms:.0f} ms, {r.mpix_per_s:.3f} MP/s'}"))
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
    dataset: o.DatasetOpt = None, data_dir: o.DataDirOpt = None, noisy: o.NoisyOpt = None, clean: o.CleanOpt = None,
    denoised: o.DenoisedOpt = None, weights: o.WeightsOpt = None, model: o.ModelOpt = None,
    refine: o.RefineOpt = None, pd: o.PdOpt = None, tile: o.TileOpt = None, tile_overlap: o.OverlapOpt = None,
    device: o.DeviceOpt = None, precision: o.PrecisionOpt = None, runtime: o.RuntimeOpt = None,
    strength: o.StrengthOpt = None, auto: o.AutoOpt = None, compile: o.CompileOpt = False,
    metric_convention: o.ConventionOpt = None, limit: o.LimitOpt = None, save: o.SaveOpt = None,
    csv: o.CsvOpt = None, json_file: o.JsonFileOpt = None, figure: o.FigureOpt = None, submit: o.SubmitOpt = None,
    adapt: o.AdaptOpt = False, adapt_iters: o.AdaptItersOpt = None, adapt_lr: o.AdaptLrOpt = None, quiet: o.QuietOpt = False,
) -> None:
    """Score denoising with PSNR/SSIM against clean references, and write benchmark submissions.

    Prints a table (noisy input and denoised PSNR/SSIM per image, mean and std) on stdout. The exit
    code is 1 if any image failed.
    """
    from .commands import evaluate as cmd
    from .console import report_evaluate
    from .progress import EvalProgress

    with boundary() as run:
        inference = dict(model=model, refine=refine, pd=pd, tile=tile, tile_overlap=tile_overlap, device=device,
                         precision=precision, runtime=runtime, adapt=adapt or None, adapt_iters=adapt_iters,
                         adapt_lr=adapt_lr, compile=compile or None, strength=strength, auto=auto)
        flags = dict(dataset=dataset, data_dir=data_dir, noisy=noisy, clean=clean, denoised=denoised,
                     weights=weights, metric_convention=metric_convention, limit=limit, save=save, csv=csv,
                     json=json_file, figure=figure, submit=submit, inference=inference)
        cfg = _config(EvalConfig, flags, whole=None)
        progress = run.progress(EvalProgress(quiet))
        result = cmd.run(cfg, progress=progress)
    report_evaluate(result, quiet, cmd.CONVENTION_NOTES[cfg.metric_convention], cfg.save)
    if result.failed:
        raise typer.Exit(code=1)


@app.command(epilog="Examples:\n\n  sdap export denoiser.onnx\n\n  sdap export denoise-sdap.dtmodel\n\n"
                    "  sdap export denoise-sdap.dtmodel --noise-from sample.jpg\n\n"
                    "  sdap export teacher.onnx --model teacher\n\n"
                    "  sdap export student.pt -w runs/student/best.safetensors")
def export(
    output: Annotated[Path, typer.Argument(help="Output: .onnx (ONNX), .pt (TorchScript) or .dtmodel (darktable "
                                                "5.6 model package).", show_default=False)],
    weights: o.WeightsOpt = None, model: o.ExportModelOpt = None, opset: o.OpsetOpt = None,
    noise_from: o.NoiseFromOpt = None, maps_input: o.MapsInputOpt = False, tile: o.ExportTileOpt = None,
    check: o.CheckOpt = None, overwrite: o.ExportOverwriteOpt = False, json_out: o.JsonOutOpt = False,
) -> None:
    """Export a network with its whole inference to one file: input 'noisy' (N, 3, H, W) float32 RGB 0-1, any
    H, W (>= 2 teacher, >= 8 student), output 'denoised' of the same shape. Around the default student the
    graph does what sdap denoise does: it measures the noise (or is told the one pinned with --noise-from),
    makes one pass, blends, keeps clean images as they are. The .pt is TorchScript (any size too); .onnx and
    .dtmodel need the onnx package (pip install onnx onnxruntime). A .dtmodel is imported in darktable 5.6 under
    preferences > AI > import from file; then enable it for the denoise task."""
    from .commands import export as cmd
    from .console import report_export

    with boundary():
        cfg = _config(ExportConfig, dict(output=output, weights=weights, model=model, opset=opset, check=check,
                                         overwrite=overwrite or None, noise_from=noise_from,
                                         maps_input=maps_input or None, tile=tile), whole=None)
        result = cmd.run(cfg)
    report_export(result, json_out)


def main() -> None:
    """Console-script entry point."""
    app()
