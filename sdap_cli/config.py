"""What every command accepts: pydantic models, the one source of defaults, bounds and cross-field checks.
Field names equal flag names (``tile_overlap`` is ``--tile-overlap``), so ``console.flag_message`` needs no
mapping. Where the values come from (presets, YAML files, flags) and which wins: ``config_sources``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

RefineMode = Literal["none", "e", "r3"]
"""Names of ``method.refine.REFINEMENTS`` (a test checks they agree)."""


class StrictModel(BaseModel):
    """Every config model: unknown fields are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class InferenceConfig(StrictModel):
    """How an image is denoised: which network, PD factor, refinement, tiling, device, precision."""

    model: Literal["auto", "teacher", "student"] = "auto"
    """Which shipped network (with --weights: which kind the file must be): 'teacher' (SDAP's DBSNl), 'student' (its
    one-pass distillation); 'auto': the student (on every device), the teacher with --refine/--pd/--r3-*/--adapt."""
    refine: RefineMode = "e"
    """'e': SDAP's second full-resolution pass (default); 'r3': AP-BSN's random replacing; 'none'."""
    pd: int = Field(2, ge=1, le=8)
    """PD (pixel-shuffle) factor of the first pass; 2 in SDAP."""
    tile: Optional[int] = Field(None, ge=16)
    """Tile side in pixels including the overlap; None: chosen from free memory."""
    tile_overlap: Optional[int] = Field(None, ge=0)
    """Context per tile side; None: the pipeline's receptive radius (tiled == whole image)."""
    r3_t: int = Field(8, ge=1)
    """R3 rounds T."""
    r3_p: float = Field(0.16, ge=0.0, le=1.0)
    """R3 replacement probability p."""
    seed: int = 0
    """Seed for R3's random masks."""
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    """Where the network runs."""
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """Arithmetic of the network; 'auto': bf16 where the hardware has it, else fp32."""
    threads: Optional[int] = Field(None, ge=1)
    """CPU threads for PyTorch; None: PyTorch's default."""
    runtime: Literal["auto", "torch", "onnxruntime", "openvino"] = "auto"
    """What runs the network: 'auto': for the CPU default (the shipped student at the default precision)
    OpenVINO when installed, else ONNX Runtime, with no torch import once the graph is cached
    (``inference/runtime.py``); torch for everything else and when a runtime fails its check; a runtime's
    name: that one, or an error saying why not."""
    strength: float = Field(1.0, ge=0.0, le=1.0)
    """Denoising strength s: output = input + s * (denoised - input); 1: full, 0: the input."""
    compile: bool = False
    """torch.compile the network for inference (CPU: inductor, frozen weights; CUDA: CUDA graphs per tile shape)."""
    adapt: bool = False
    """Fine-tune a copy of the weights on the images being denoised first (SDAP(S)-style)."""
    adapt_iters: int = Field(100, ge=1)
    """SDAP steps of --adapt."""
    adapt_lr: float = Field(5e-5, gt=0)
    """Adam learning rate of --adapt."""
    auto: bool = True
    """Measure each image's noise and pick its path (inference/adaptive.py); off with --no-auto or any fixed-path option."""

    @model_validator(mode="after")
    def _tile_vs_overlap(self) -> "InferenceConfig":
        if self.tile_overlap is not None and self.tile_overlap % self.pd:
            raise ValueError(f"tile_overlap {self.tile_overlap} must be a multiple of pd {self.pd}")
        if self.tile is not None and self.tile_overlap is not None and self.tile <= 2 * self.tile_overlap + self.pd:
            raise ValueError(f"tile {self.tile} must exceed 2 x tile_overlap + pd = "
                             f"{2 * self.tile_overlap + self.pd}; raise --tile or lower --tile-overlap")
        return self


class DenoiseConfig(StrictModel):
    """`sdap denoise`: which files, where the results go, how they are denoised."""

    inputs: list[str] = Field(min_length=1)
    """Files, folders, globs, or '-' for stdin."""
    output: Optional[str] = None
    """Output folder, file, or '-' for stdout; None: beside each input with the suffix."""
    weights: Optional[Path] = None
    """Weights file; None: the shipped default."""
    recursive: bool = False
    """Descend into sub-folders of folder inputs."""
    suffix: Optional[str] = None
    """Appended to output names ('' when --output is a folder, '_denoised' beside the inputs)."""
    format: Literal["same", "png", "tiff", "jpeg", "bmp", "webp", "heic"] = "same"
    """Output format; 'same' keeps the input's (camera RAW -> 16-bit TIFF; heic needs the heif extra)."""
    quality: int = Field(95, ge=1, le=100)
    """JPEG/WebP/HEIC quality 1-100; 95: no visible loss, still compact. JPEG is written with 4:4:4 chroma."""
    strip_metadata: bool = False
    """Write no EXIF, ICC profile or XMP; by default they are copied from the input (io/metadata.py)."""
    overwrite: bool = False
    """Replace existing outputs (never an input)."""
    skip_existing: bool = False
    """Leave existing outputs alone and count them as skipped (resumes a batch)."""
    shard: Optional[str] = None
    """'K/N': process only the K-th (1-based) of N deterministic parts of the sorted inputs."""
    save_adapted: Optional[Path] = None
    """With --adapt: also save the adapted weights here (.safetensors)."""
    inference: InferenceConfig = Field(default_factory=InferenceConfig)

    @field_validator("shard")
    @classmethod
    def _shard(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        try:
            k, n = (int(s) for s in v.split("/"))
        except ValueError:
            raise ValueError(f"shard {v!r} must look like K/N, e.g. 2/8") from None
        if not 1 <= k <= n:
            raise ValueError(f"shard {v!r}: K must be between 1 and N")
        return v

    @model_validator(mode="after")
    def _flags(self) -> "DenoiseConfig":
        if self.overwrite and self.skip_existing:
            raise ValueError("--overwrite and --skip-existing exclude each other")
        if self.save_adapted is not None and not self.inference.adapt:
            raise ValueError("--save-adapted needs --adapt")
        return self

    @property
    def shard_k_n(self) -> tuple[int, int]:
        """(K, N) of ``shard``; (1, 1) without it."""
        return (1, 1) if self.shard is None else tuple(int(s) for s in self.shard.split("/"))


class EvalConfig(StrictModel):
    """`sdap evaluate`: score a denoiser (or existing outputs) against clean references; write submissions."""
    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    dataset: Literal["folders", "sidd-val", "sidd-bench", "dnd"] = "folders"
    """'folders': --noisy/--clean (or --data-dir with noisy/clean sub-folders); 'sidd-val': the SIDD validation
    .mat files; 'sidd-bench': SIDD benchmark blocks (Kaggle CSV); 'dnd': DND sRGB bundle."""
    data_dir: Optional[Path] = None
    """Folder of the dataset files (sidd-val, sidd-bench, dnd) or with noisy/clean sub-folders (folders).
    None with a named dataset: looked for in ``$SDAP_DATA``, then in the current folder (each, and their
    sub-folders one level down; ``evaluation.evalsets.dataset_dir``)."""
    noisy: Optional[Path] = None
    """Folder of noisy images (dataset 'folders')."""
    clean: Optional[Path] = None
    """Folder of clean references (dataset 'folders')."""
    denoised: Optional[Path] = None
    """Folder of already denoised outputs to score instead of running the network."""
    weights: Optional[Path] = None
    """Weights file; None: the shipped default."""
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    metric_convention: Literal["sdap", "apbsn", "y"] = "sdap"
    """Metric convention (see sdap_cli/evaluation/metrics.py)."""
    limit: Optional[int] = Field(None, ge=1)
    """Evaluate only the first N images (blocks)."""
    save: Optional[Path] = None
    """Folder for the denoised outputs (PNG)."""
    csv: Optional[Path] = None
    """Per-image CSV file."""
    json_path: Optional[Path] = Field(None, alias="json")
    """Per-image JSON file (with the summary); given as ``json`` (``json_path`` also accepted)."""
    figure: Optional[Path] = None
    """PNG of noisy | denoised | clean crops for the best and worst images."""
    submit: Optional[Path] = None
    """sidd-bench: the Kaggle CSV to write; dnd: the folder of the .mat bundle."""

    @model_validator(mode="after")
    def _combinations(self) -> "EvalConfig":
        d = self.dataset
        if d == "folders":
            if self.data_dir is None and self.clean is None:
                raise ValueError("pass --noisy DIR --clean DIR (denoise and score), --denoised DIR --clean DIR "
                                 "(score existing outputs), or --data-dir DIR with noisy/clean sub-folders")
            if self.data_dir is not None and (self.noisy is not None or self.clean is not None):
                raise ValueError("--data-dir (noisy/clean sub-folders) and --noisy/--clean exclude each other")
            if self.data_dir is None and self.noisy is None and self.denoised is None:
                raise ValueError("--clean needs --noisy DIR (to denoise) or --denoised DIR (existing outputs)")
        else:                           # no --data-dir: evalsets.dataset_dir looks in $SDAP_DATA, then here
            if self.noisy is not None or self.clean is not None:
                raise ValueError(f"--noisy/--clean are for --dataset folders; --dataset {d} reads its "
                                 "files from --data-dir")
        if self.submit is not None and d not in ("sidd-bench", "dnd"):
            raise ValueError("--submit writes a benchmark submission: use it with --dataset sidd-bench "
                             "(Kaggle CSV) or --dataset dnd (.mat bundle folder)")
        if d in ("sidd-bench", "dnd"):
            if self.submit is None and self.save is None:
                raise ValueError(f"--dataset {d} has no clean images to score: pass --submit "
                                 f"{'out.csv' if d == 'sidd-bench' else 'DIR'} (and/or --save DIR)")
            if self.figure is not None:
                raise ValueError(f"--figure needs clean images; --dataset {d} has none")
            if self.submit is not None and self.limit is not None:
                raise ValueError("--submit needs every block: drop --limit")
        if self.denoised is not None:
            if self.weights is not None or self.inference.model_fields_set:
                raise ValueError("--denoised scores existing outputs: --weights and the denoising options "
                                 "(--refine, --tile, --device, ...) are not used with it")
            if self.save is not None:
                raise ValueError("--save writes denoised outputs; with --denoised they exist already")
        return self


BENCHMARK_FULL = {"sizes": ["256", "512", "1024", "12mp"], "refine": ["none", "e"], "precision": ["fp32", "bf16"],
                  "model": ["default", "student"]}
"""The grid of ``sdap benchmark --full`` (for the lists not given): 24 settings, about half an hour on 2 CPU cores."""


class BenchmarkConfig(StrictModel):
    """`sdap benchmark`: time denoising of synthetic images over a grid of settings. The defaults are a
    quick look (the network `sdap denoise` runs by default here, 3 sizes, within a minute or two on 2 CPU
    cores); ``full`` times :data:`BENCHMARK_FULL`."""

    full: bool = False
    """Time the full grid (``BENCHMARK_FULL``) for every list not given."""
    sizes: list[str] = Field(default_factory=lambda: ["512", "1024", "12mp"])
    """Square sides in pixels, or '12mp' for a 4000x3000 frame (tiled)."""
    refine: list[RefineMode] = Field(default_factory=lambda: ["e"])
    precision: list[Literal["auto", "fp32", "bf16", "fp16"]] = Field(default_factory=lambda: ["auto"])
    channels_last: list[bool] = Field(default_factory=lambda: [True])
    compile: list[bool] = Field(default_factory=lambda: [False])
    threads: Optional[int] = Field(None, ge=1)
    """CPU threads (None: PyTorch's default)."""
    model: list[Literal["auto", "default", "student", "full"]] = Field(default_factory=lambda: ["auto"])
    """Networks to time: 'auto' (what `sdap denoise` runs by default: the shipped student), 'default' (shipped teacher), 'student' (shipped student), 'full' (random 128/9
    DBSNl)."""
    weights: Optional[Path] = None
    """Time this weights file's network instead (overrides --model)."""
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    runtime: Literal["auto", "torch", "onnxruntime", "openvino"] = "auto"
    """What runs the shipped student's rows at the default precision: 'auto' as `sdap denoise` picks it
    (``InferenceConfig.runtime``), or the one named; the other rows run on torch."""
    tile: Optional[int] = Field(None, ge=16)
    """Tile side (None: automatic, as in `sdap denoise`)."""
    warmup: int = Field(2, ge=0)
    """Untimed runs first (oneDNN builds its kernels for each new shape on the first calls)."""
    runs: int = Field(3, ge=1)
    """Timed runs per setting (one for frames of 4 MP and more)."""
    roofline: bool = True
    """First measure this machine's best 3x3 convolution rate per precision (a few seconds) and report each
    setting's MAC/s as a fraction of it."""

    @model_validator(mode="before")
    @classmethod
    def _full_grid(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("full"):
            data = {**{k: v for k, v in BENCHMARK_FULL.items() if data.get(k) is None}, **data}
        return data

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, v: list[str]) -> list[str]:
        for s in v:
            if s.lower() not in ("12mp", "24mp") and not (s.isdigit() and int(s) >= 8):
                raise ValueError(f"size {s!r}: give a side in pixels (>= 8), 12mp or 24mp")
        return [s.lower() for s in v]


class ExportConfig(StrictModel):
    """`sdap export`: one network with its whole inference (pad, PD-2 + E or one pass, crop, clamp) as a file."""

    output: Path
    """Output file; its suffix picks the format: .onnx (ONNX), .pt (TorchScript) or .dtmodel (a darktable 5.6
    model package: a ZIP of ``<id>/config.json`` and ``<id>/model.onnx``, the id the file's stem)."""
    weights: Optional[Path] = None
    """Weights file (checked against ``model``); None: the shipped network ``model`` names."""
    model: Literal["student", "teacher"] = "student"
    """'student' (default: the one-pass network, ~20x cheaper, what deployment wants) or 'teacher' (DBSNl with
    PD-2 and E inside the graph, as `sdap denoise --model teacher`)."""
    opset: int = Field(17, ge=17, le=23)
    """ONNX opset (17 or newer; darktable loads up to 20)."""
    check: bool = True
    """Run the written file once (onnxruntime if installed / torch.jit.load) and report its max difference."""
    overwrite: bool = False
    """Replace an existing output file."""
    noise_from: Optional[Path] = None
    """A noise-conditional student: pin the noise measured on this photo into the graph, so every input (and
    every tile a host cuts) is told the same; None: the graph measures each input's noise itself."""
    maps_input: bool = False
    """A noise-conditional student: take the noise maps as a second input ``noise`` (N, 5, H, W) instead of
    measuring inside the graph (not for .dtmodel: darktable feeds one input)."""
    tile: int = Field(1024, ge=129, le=4096)
    """.dtmodel: the tile side darktable is told to use (``attributes.input_sizes``); it adds its 64-pixel
    overlap inside that side, so each tile keeps (tile - 128)^2 pixels."""

    @field_validator("output")
    @classmethod
    def _suffix(cls, v: Path) -> Path:
        if v.suffix.lower() not in (".onnx", ".pt", ".dtmodel"):
            raise ValueError(f"{v.name}: the suffix picks the format; use .onnx (ONNX), .pt (TorchScript) or "
                             ".dtmodel (darktable)")
        if v.suffix.lower() == ".dtmodel" and not (v.stem[:1].isalnum() and v.stem.isascii()
                                                   and all(c.isalnum() or c in "._-" for c in v.stem)):
            raise ValueError(f"{v.name}: the name before .dtmodel is the model's id in darktable; use letters, "
                             "digits, '.', '_' and '-'")
        return v

    @model_validator(mode="after")
    def _student_options(self) -> "ExportConfig":
        if self.model == "teacher" and (self.noise_from or self.maps_input):
            raise ValueError("--noise-from and --maps-input are for the noise-conditional student; drop them "
                             "or use --model student")
        if self.noise_from and self.maps_input:
            raise ValueError("--noise-from pins the noise inside the graph, --maps-input takes it as an input: "
                             "give one of them")
        if self.output.suffix.lower() == ".dtmodel" and self.maps_input:
            raise ValueError("darktable feeds the model one input: drop --maps-input for a .dtmodel")
        if self.output.suffix.lower() == ".dtmodel" and self.opset > 20:
            raise ValueError(f"--opset {self.opset}: darktable loads ONNX opsets up to 20")
        return self
