"""Every option of every subcommand of ``cli.py``, declared once as a Typer option type.

Every option shows its effective default in ``--help``: :func:`shown` reads it from the pydantic field of
``config.py`` (the one source of defaults), so no value is repeated here; options whose config field is a
``Literal`` complete its values in the shell (:func:`choices`). Where train and distill differ in a
default, the option is a function of the config class (``out_opt(TrainConfig)``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional, get_args, get_origin

import typer
from pydantic import BaseModel

from .config import BenchmarkConfig, DenoiseConfig, EvalConfig, ExportConfig, InferenceConfig
from .training_config import DistillConfig, ModelConfig, StudentConfig, TrainConfig


def shown(model: type[BaseModel], name: str, none: str = "none") -> str:
    """The ``[default: ...]`` text of option ``name``: the default of ``model``'s field of that name, or
    ``none`` (what the code does instead) when that default is None. Booleans read 'on'/'off'.

    Example:
        >>> shown(InferenceConfig, "pd"), shown(InferenceConfig, "auto"), shown(InferenceConfig, "tile", "x")
        ('2', 'on', 'x')
    """
    v = model.model_fields[name].get_default(call_default_factory=True)
    if v is None:
        return none
    if isinstance(v, bool):
        return "on" if v else "off"
    return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


def choices(model: type[BaseModel], name: str) -> list[str]:
    """The values a ``Literal`` field of ``model`` allows (for shell completion), [] for other fields.

    Example:
        >>> choices(InferenceConfig, "model"), choices(InferenceConfig, "tile")
        (['auto', 'teacher', 'student'], [])
    """
    ann = model.model_fields[name].annotation
    lits = [a for a in (ann, *get_args(ann)) if get_origin(a) is Literal]
    return [str(v) for v in get_args(lits[0])] if lits else []


def _opt(*names: str, help: str, default: str, complete: tuple[type[BaseModel], str] | None = None
         ) -> typer.models.OptionInfo:
    """An option showing ``default``; ``complete=(model, field)``: the shell completes the field's choices."""
    values = choices(*complete) if complete else []
    return typer.Option(*names, help=help, show_default=default,
                        autocompletion=(lambda incomplete: [v for v in values if v.startswith(incomplete)])
                        if values else None)


_I = InferenceConfig
OFF = "off"  # the presentation flags (--quiet, --json) that are not config fields

# Options shared by denoise, evaluate, train and benchmark (declared once).
WeightsOpt = Annotated[Optional[Path], _opt("--weights", "-w", help="Weights: ours (.safetensors), "
                       "official SDAP or AP-BSN (.pth).", default=shown(DenoiseConfig, "weights", "the shipped model"))]
RefineOpt = Annotated[Optional[str], _opt(help="Refinement after the PD-2 pass: e (SDAP's second "
                      "pass), r3 (AP-BSN), none (fastest).", default=shown(_I, "refine"), complete=(_I, "refine"))]
TileOpt = Annotated[Optional[int], _opt(help="Tile side in pixels, overlap included (one too "
                    "small to hold the overlap is raised).", default=shown(_I, "tile", "from free memory"))]
OverlapOpt = Annotated[Optional[int], _opt(help="Context per tile side (the default makes tiles match the "
                       "whole-image result).", default=shown(_I, "tile_overlap", "the receptive field"))]
DeviceOpt = Annotated[Optional[str], _opt(help="auto, cpu, cuda or mps.", default=shown(_I, "device"), complete=(_I, "device"))]
PrecisionOpt = Annotated[Optional[str], _opt(help="auto, fp32, bf16 or fp16.", default=shown(_I, "precision"),
                       complete=(_I, "precision"))]
ThreadsOpt = Annotated[Optional[int], _opt(help="CPU threads.", default=shown(_I, "threads", "PyTorch's"))]
RuntimeOpt = Annotated[Optional[str], _opt(help="What runs the network: auto (the CPU default on OpenVINO if "
                       "installed, else ONNX Runtime, without importing torch once its graph is cached; torch "
                       "otherwise), torch, onnxruntime or openvino.",
                       default=shown(_I, "runtime"), complete=(_I, "runtime"))]
CompileOpt = Annotated[bool, _opt("--compile", help="torch.compile the network (faster on large "
                       "images and same-size batches; the first image of each size pays the compile).",
                       default=shown(_I, "compile"))]
AdaptItersOpt = Annotated[Optional[int], _opt(help="Steps of --adapt.", default=shown(_I, "adapt_iters"))]
AdaptLrOpt = Annotated[Optional[float], _opt(help="Learning rate of --adapt.", default=shown(_I, "adapt_lr"))]
StrengthOpt = Annotated[Optional[float], _opt(help="Denoising strength 0-1: output = input + "
                        "s x (denoised - input). 1 full; ~0.5 keeps fine detail on light noise.",
                        default=shown(_I, "strength"))]
PdOpt = Annotated[Optional[int], _opt("--pd", help="PD factor of the teacher's first pass: 2 "
                  "(SDAP) for camera noise correlated between neighbouring pixels; 1 for light, "
                  "pixel-independent noise (clean DSLR shots).", default=shown(_I, "pd"))]
ModelOpt = Annotated[Optional[str], _opt("--model", "-m", help="auto (the fast distilled student, told "
                     "each image's noise; the SDAP teacher with --refine/--pd/--adapt), teacher or student.",
                     default=shown(_I, "model"), complete=(_I, "model"))]
AutoOpt = Annotated[Optional[bool], _opt("--auto/--no-auto", help="Measure each image's noise; a clean "
                    "image comes back as it is; on CPU the student is told the noise and makes one pass; with "
                    "a teacher's weights, phone-like noise from level 8 -> PD-2 + E, the rest -> the shipped student "
                    "(without one: PD-1 blended to keep detail). --no-auto, or any of --model teacher/student, --pd, --refine, --strength, --adapt: "
                    "one fixed path.",
                    default=shown(_I, "auto"))]
QuietOpt = Annotated[bool, _opt("--quiet", "-q", help="Print errors only.", default=OFF)]

# Options of denoise only.
OutputOpt = Annotated[Optional[str], _opt("--output", "-o", help="Output folder (created), file, or - for "
                      "stdout.", default=shown(DenoiseConfig, "output", "beside each input"))]
R3SeedOpt = Annotated[Optional[int], _opt(help="Seed of R3's random masks.", default=shown(_I, "seed"))]
R3TOpt = Annotated[Optional[int], _opt("--r3-t", help="R3 rounds T.", default=shown(_I, "r3_t"))]
R3POpt = Annotated[Optional[float], _opt("--r3-p", help="R3 replacement probability.", default=shown(_I, "r3_p"))]
RecursiveOpt = Annotated[bool, _opt("--recursive", "-r", help="Search folders recursively.",
                         default=shown(DenoiseConfig, "recursive"))]
SuffixOpt = Annotated[Optional[str], _opt(help="Appended to output file names.", default=shown(
                      DenoiseConfig, "suffix", "'' with --output DIR, '_denoised' beside the inputs"))]
FormatOpt = Annotated[Optional[str], _opt("--format", "-f", help="same, png, tiff, jpeg, bmp, webp or heic "
                      "(same: the input's; camera RAW -> 16-bit TIFF).", default=shown(DenoiseConfig, "format"),
                      complete=(DenoiseConfig, "format"))]
QualityOpt = Annotated[Optional[int], _opt("--quality", help="JPEG/WebP/HEIC quality 1-100 (JPEG with 4:4:4 "
                       "chroma).", default=shown(DenoiseConfig, "quality"))]
StripMetadataOpt = Annotated[bool, _opt("--strip-metadata", help="Write no EXIF, ICC profile or XMP (by "
                             "default they are copied from each input).",
                             default=shown(DenoiseConfig, "strip_metadata"))]
OverwriteOpt = Annotated[bool, _opt(help="Replace existing outputs (never inputs).",
                         default=shown(DenoiseConfig, "overwrite"))]
SkipExistingOpt = Annotated[bool, _opt(help="Skip inputs whose output exists (resume).",
                            default=shown(DenoiseConfig, "skip_existing"))]
ShardOpt = Annotated[Optional[str], _opt(help="K/N: process the K-th of N parts of the inputs.",
                     default=shown(DenoiseConfig, "shard", "all inputs"))]
AdaptOpt = Annotated[bool, _opt("--adapt", help="First fine-tune a copy of the weights on the noisy "
                     "images themselves (SDAP(S)-style, self-supervised); the weights file is not changed.",
                     default=shown(_I, "adapt"))]
SaveAdaptedOpt = Annotated[Optional[Path], _opt(help="Save the adapted weights here.",
                           default=shown(DenoiseConfig, "save_adapted", "not saved"))]
JsonOutOpt = Annotated[bool, _opt("--json", help="Print a JSON summary to stdout.", default=OFF)]

# Options of evaluate only.
_E = EvalConfig
DatasetOpt = Annotated[Optional[str], _opt(help="folders (--noisy/--clean or --data-dir with noisy/clean "
                       "sub-folders), sidd-val, sidd-bench (Kaggle CSV with --submit) or dnd (.mat bundle "
                       "with --submit).", default=shown(_E, "dataset"), complete=(_E, "dataset"))]
DataDirOpt = Annotated[Optional[Path], _opt(help="Folder of the dataset files: Validation*BlocksSrgb.mat, "
                       "BenchmarkNoisyBlocksSrgb.mat, DND info.mat + images_srgb/, or noisy/clean sub-folders.",
                       default=shown(_E, "data_dir", "none"))]
NoisyOpt = Annotated[Optional[Path], _opt(help="Folder of noisy images.", default=shown(_E, "noisy"))]
CleanOpt = Annotated[Optional[Path], _opt(help="Folder of clean references, paired by name (identical, or "
                     "NOISY_x/GT_x, x_real/x_mean).", default=shown(_E, "clean"))]
DenoisedOpt = Annotated[Optional[Path], _opt(help="Folder of existing outputs to score (no network is run).",
                        default=shown(_E, "denoised", "none: run the network"))]
ConventionOpt = Annotated[Optional[str], _opt(help="sdap (uint8 RGB, Gaussian SSIM), apbsn (float 0-255, "
                          "7x7 uniform SSIM) or y (BT.601 luma).", default=shown(_E, "metric_convention"),
                          complete=(_E, "metric_convention"))]
LimitOpt = Annotated[Optional[int], _opt(help="Only the first N images (blocks).", default=shown(_E, "limit", "all"))]
SaveOpt = Annotated[Optional[Path], _opt(help="Folder for the denoised outputs (PNG).",
                    default=shown(_E, "save", "not saved"))]
CsvOpt = Annotated[Optional[Path], _opt("--csv", help="Write a CSV row per image.", default=shown(_E, "csv"))]
JsonFileOpt = Annotated[Optional[Path], _opt("--json", help="Write a JSON file: a row per image and the summary.",
                        default=shown(_E, "json_path"))]
FigureOpt = Annotated[Optional[Path], _opt(help="PNG of noisy | denoised | clean crops of the best and worst "
                      "images (PSNR gain).", default=shown(_E, "figure"))]
SubmitOpt = Annotated[Optional[Path], _opt(help="sidd-bench: Kaggle CSV to write; dnd: folder of the .mat "
                      "bundle.", default=shown(_E, "submit"))]

# Options shared by train and distill; where their defaults differ, a function of the config class.
_L = TrainConfig
DataOpt = Annotated[Optional[list[str]], _opt("--data", "-d", help="Folder or file of noisy images "
                    "(repeatable; searched recursively; GT files ignored).", default="none")]
ConfigOpt = Annotated[Optional[Path], _opt("--config", "-c", help="YAML file of options (flags override it).",
                      default="none")]
ResumeOpt = Annotated[bool, _opt(help="Continue from RUN/state.pt.", default=OFF)]
ValOpt = Annotated[Optional[str], _opt(help="Validation folder (noisy/clean sub-folders, or "
                   "the SIDD validation .mat files).", default=shown(_L, "val"))]
ValEveryOpt = Annotated[Optional[int], _opt(help="Validate every N steps.", default=shown(_L, "val_every"))]
CheckpointEveryOpt = Annotated[Optional[int], _opt(help="Save resumable state every N steps.",
                               default=shown(_L, "checkpoint_every"))]
SeedOpt = Annotated[Optional[int], _opt(help="Seed.", default=shown(_L, "seed"))]
EmaOpt = Annotated[Optional[float], _opt(help="Weight average decay d, e.g. 0.999: validate and save the average "
                   "of the last ~1/(1-d) steps' weights; 0 off.", default=shown(_L, "ema"))]
WarmupOpt = Annotated[Optional[int], _opt(help="Linear learning-rate warm-up over the first N steps (for --init "
                      "runs whose optimizer state is lost); 0 off.", default=shown(_L, "warmup"))]
TrainDeviceOpt = Annotated[Optional[str], _opt(help="auto, cpu, cuda or mps.", default=shown(_L, "device"),
                           complete=(_L, "device"))]
TrainPrecisionOpt = Annotated[Optional[str], _opt(help="auto, fp32, bf16 or fp16 (autocast; weights stay fp32).",
                              default=shown(_L, "precision"), complete=(_L, "precision"))]
WorkersOpt = Annotated[Optional[int], _opt(help="DataLoader worker processes.", default=shown(_L, "workers"))]
SummaryQuietOpt = Annotated[bool, _opt("--quiet", "-q", help="Print errors and the summary only.", default=OFF)]


def out_opt(cls: type[BaseModel]):
    return Annotated[Optional[str], _opt("--out", "-o", help="Run folder.", default=shown(cls, "out"))]


def iterations_opt(cls: type[BaseModel]):
    return Annotated[Optional[int], _opt("--iterations", "-n", help="Total steps.", default=shown(cls, "iterations"))]


def batch_opt(cls: type[BaseModel]):
    return Annotated[Optional[int], _opt(help="Crops per step.", default=shown(cls, "batch"))]


def patch_opt(cls: type[BaseModel], rule: str):
    return Annotated[Optional[int], _opt(help=f"Crop side ({rule}).", default=shown(cls, "patch"))]


def lr_opt(cls: type[BaseModel]):
    return Annotated[Optional[float], _opt(help="Adam learning rate.", default=shown(cls, "lr"))]


def schedule_opt(cls: type[BaseModel]):
    return Annotated[Optional[str], _opt(help="constant or cosine.", default=shown(cls, "schedule"),
                                         complete=(cls, "schedule"))]


# Options of train only.
PresetOpt = Annotated[Optional[str], _opt(help="stage1 (lr 1e-4, patch 160, batch 16) or stage2 (lr 1e-5, patch "
                      "250, batch 8, needs --init): the paper's schedules.", default=shown(_L, "preset"),
                      complete=(_L, "preset"))]
InitOpt = Annotated[Optional[Path], _opt(help="Initial weights.", default=shown(_L, "init"))]
BaseChOpt = Annotated[Optional[int], _opt(help="DBSNl width (128 in the paper).",
                      default=shown(ModelConfig, "base_ch"))]
NumModuleOpt = Annotated[Optional[int], _opt(help="DBSNl blocks per branch (9 in the paper).",
                         default=shown(ModelConfig, "num_module"))]
TrainCompileOpt = Annotated[Optional[bool], _opt("--compile/--no-compile", help="torch.compile the network.",
                            default=shown(_L, "compile"))]

# Options of distill only.
_D = DistillConfig
TeacherOpt = Annotated[Optional[Path], _opt("--teacher", "-t", help="Teacher weights (DBSNl).",
                       default=shown(_D, "teacher", "the shipped teacher"))]
EnsembleOpt = Annotated[Optional[list[Path]], _opt(help="One more teacher (repeatable): each target is the mean "
                        "of all the teachers' outputs.", default="none")]
TeacherRefineOpt = Annotated[Optional[str], _opt(help="How the teacher denoises: e, r3 or none.",
                             default=shown(_D, "teacher_refine"), complete=(_D, "teacher_refine"))]
CacheOpt = Annotated[Optional[Path], _opt(help="Folder of cached teacher outputs.",
                     default=shown(_D, "cache", "RUN/teacher_cache"))]
TargetsOpt = Annotated[Optional[str], _opt(help="Comma list of teacher outputs to learn, loss summed: teacher, "
                       "phase1-3, hflip, vflip, rot90, rot180, rot270, transpose, transverse, auto.",
                       default=shown(_D, "targets"))]
SelfEnsembleOpt = Annotated[Optional[int], _opt(help="Average the teacher's target over 1, 2, 4 or 8 flips and "
                            "transposes (each one more cached teacher pass).", default=shown(_D, "self_ensemble"))]
RechargeOpt = Annotated[Optional[float], _opt(help="Probability that a pixel of one random target takes the "
                        "noisy value.", default=shown(_D, "recharge"))]
ConditionOpt = Annotated[Optional[bool], _opt("--condition/--no-condition", help="Train the noise-conditional "
                         "one-pass student: told each image's measured noise, it learns every --auto path's "
                         "output, and clean photos (--clean) with synthetic noise.", default=shown(_D, "condition"))]
CleanPhotosOpt = Annotated[Optional[list[str]], _opt("--clean", help="Folder or file of clean photos (repeatable): "
                           "targets of themselves and of their synthetic noisy versions.", default="none")]
SyntheticOpt = Annotated[Optional[int], _opt(help="Synthetic noisy versions per clean photo.",
                         default=shown(_D, "synthetic"))]
FreshNoiseOpt = Annotated[Optional[bool], _opt("--fresh-noise/--fixed-noise", help="Draw the clean photos' noise "
                          "anew for every crop instead of --synthetic fixed versions.", default=shown(_D, "fresh_noise"))]
SyntheticKindsOpt = Annotated[Optional[str], _opt("--synthetic-kinds", help="With --fresh-noise: relative weights of "
                              "the noise kinds, e.g. white=2,box=1.5,signal=1,pd2=1,bayer=1,camera=1,phone=1 (a kind left out: never; "
                              "default: the first five equally).",
                              default=shown(_D, "synthetic_kinds", "all equal"))]
SyntheticLevelsOpt = Annotated[Optional[str], _opt(help="LOW,HIGH: range of the synthetic noise's std in 8-bit "
                               "levels (log-uniform).", default=shown(_D, "synthetic_levels"))]
SyntheticShareOpt = Annotated[Optional[float], _opt(help="Fraction of the training crops drawn from the clean "
                              "photos and their noisy versions.", default="0.333")]
CleanScalesOpt = Annotated[Optional[str], _opt(help="Comma list: each clean photo at these scales "
                           "(area-averaged, e.g. 1,0.5).", default=shown(_D, "clean_scales"))]
TargetBlendOpt = Annotated[Optional[str], _opt(help="LIGHT,HEAVY: share of each path's Wiener blend in the "
                           "real images' --condition targets (0: the teacher's output as it is).",
                           default=shown(_D, "target_blend"))]
RecolourOpt = Annotated[Optional[int], _opt(help="Recoloured copies per clean photo (channels permuted, "
                        "saturation raised), each with its noisy versions.", default=shown(_D, "recolour"))]
LightTeacherOpt = Annotated[Optional[Path], _opt(help="The light path's network for --condition targets (PD-1 "
                            "+ blend).", default=shown(_D, "light_teacher", "the shipped teacher"))]
SelfTargetsOpt = Annotated[Optional[Path], _opt(help="With --condition: a noise-conditional student whose "
                           "self-ensemble is the target of the real images that read as phone noise (the heavy "
                           "path), in place of the teacher's.", default=shown(_D, "self_targets", "the teacher's"))]
SelfTargetsEnsembleOpt = Annotated[Optional[int], _opt(help="Flips and transposes averaged in a --self-targets "
                                   "target: 1, 2, 4 or 8.", default=shown(_D, "self_targets_ensemble"))]
SelfTargetsToldOpt = Annotated[Optional[float], _opt(help="Factor on the noise levels the --self-targets student "
                               "is told (1: as measured).", default=shown(_D, "self_targets_told"))]
StudentInitOpt = Annotated[Optional[Path], _opt(help="Initial student weights.", default=shown(_D, "init"))]
StudentChOpt = Annotated[Optional[str], _opt(help="Student channels per level.",
                         default=shown(StudentConfig, "ch"))]
StudentBlocksOpt = Annotated[Optional[str], _opt(help="Student residual blocks per level.",
                             default=shown(StudentConfig, "blocks"))]

# Options of benchmark.
_B = BenchmarkConfig
FullOpt = Annotated[bool, _opt("--full", help="Time the full grid (teacher and student, 4 sizes, none/e, "
                    "fp32/bf16: about half an hour on 2 CPU cores) for every list not given.",
                    default=shown(_B, "full"))]
SizesOpt = Annotated[Optional[str], _opt(help="Comma list: sides in pixels, 12mp, 24mp.", default=shown(_B, "sizes"))]
RefinesOpt = Annotated[Optional[str], _opt("--refine", help="Comma list of none, e, r3 (teacher rows).",
                       default=shown(_B, "refine"))]
PrecisionsOpt = Annotated[Optional[str], _opt("--precision", help="Comma list of fp32, bf16, fp16, auto.",
                          default=shown(_B, "precision"))]
ChannelsLastOpt = Annotated[Optional[str], _opt(help="Comma list of on/off: NHWC activations.",
                            default=shown(_B, "channels_last"))]
CompilesOpt = Annotated[Optional[str], _opt("--compile", help="Comma list of on/off: torch.compile.",
                        default=shown(_B, "compile"))]
ModelsOpt = Annotated[Optional[str], _opt("--model", help="Comma list of auto (what sdap denoise runs by default "
                      "by default: the shipped student), default (the shipped teacher), student (the "
                      "shipped distilled student) and full (the paper's 128/9 DBSNl, random weights).",
                      default=shown(_B, "model"))]
BenchWeightsOpt = Annotated[Optional[Path], _opt("--weights", "-w", help="Time this weights file's network "
                            "(instead of --model).", default=shown(_B, "weights"))]
BenchDeviceOpt = Annotated[Optional[str], _opt(help="auto, cpu, cuda or mps.", default=shown(_B, "device"),
                           complete=(_B, "device"))]
BenchRuntimeOpt = Annotated[Optional[str], _opt("--runtime", help="What runs the shipped student's rows: auto (as "
                            "sdap denoise picks it), torch, onnxruntime or openvino.", default=shown(_B, "runtime"),
                            complete=(_B, "runtime"))]
BenchTileOpt = Annotated[Optional[int], _opt(help="Tile side.", default=shown(_B, "tile", "automatic"))]
WarmupRunsOpt = Annotated[Optional[int], _opt("--warmup", help="Untimed runs first.", default=shown(_B, "warmup"))]
RunsOpt = Annotated[Optional[int], _opt(help="Timed runs (1 for >= 4 MP).", default=shown(_B, "runs"))]
RooflineOpt = Annotated[Optional[bool], _opt("--roofline/--no-roofline", help="First measure this machine's best "
                        "3x3 convolution rate per precision (a few seconds); each row's GMAC/s is then also a "
                        "fraction of it.", default=shown(_B, "roofline"))]
JsonWriteOpt = Annotated[Optional[Path], _opt("--json", help="Also write the results here.", default="none")]

# Options of export.
ExportModelOpt = Annotated[Optional[str], _opt("--model", "-m", help="student (one pass, ~20x cheaper) or teacher "
                           "(DBSNl, PD-2 and E inside the graph).", default=shown(ExportConfig, "model"),
                           complete=(ExportConfig, "model"))]
OpsetOpt = Annotated[Optional[int], _opt(help="ONNX opset, 17 or newer (darktable: up to 20).",
                     default=shown(ExportConfig, "opset"))]
CheckOpt = Annotated[Optional[bool], _opt("--check/--no-check", help="Run the written file once and report its "
                     "max difference to torch (ONNX needs onnxruntime).", default=shown(ExportConfig, "check"))]
ExportOverwriteOpt = Annotated[bool, _opt(help="Replace an existing output file.",
                               default=shown(ExportConfig, "overwrite"))]
NoiseFromOpt = Annotated[Optional[Path], _opt(help="Pin the noise measured on this photo into the graph: every "
                        "input, and every tile a host such as darktable cuts, is told the same.",
                        default=shown(ExportConfig, "noise_from", "measured in the graph"))]
MapsInputOpt = Annotated[bool, _opt(help="Take the noise maps as a second input 'noise' (N, 5, H, W) instead of "
                         "measuring inside the graph (not for .dtmodel).", default=shown(ExportConfig, "maps_input"))]
ExportTileOpt = Annotated[Optional[int], _opt("--tile", help=".dtmodel: the tile side darktable is told to use "
                          "(it keeps the centre, tile - 128, of each).", default=shown(ExportConfig, "tile"))]


def show_version(value: bool) -> None:
    """``--version`` (with other arguments; alone, ``entry.main`` answers it first): print the sdap and
    torch versions and exit, without importing torch."""
    if value:
        from . import version_line

        typer.echo(version_line())
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
