"""Pydantic models: the single source of defaults for every subcommand.

Resolution order: defaults here < a YAML config file < options given on the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(_Strict):
    """DBSNl architecture (paper defaults)."""

    in_ch: int = Field(3, ge=1)
    """Input channels."""
    out_ch: int = Field(3, ge=1)
    """Output channels."""
    base_ch: int = Field(128, ge=2, multiple_of=2)
    """Branch width; 128 in the paper."""
    num_module: int = Field(9, ge=0)
    """Dilated residual blocks per branch; 9 in the paper."""


class InferenceConfig(_Strict):
    """How an image is denoised: PD factor, refinement, tiling, device, precision."""

    refine: Literal["none", "e", "r3"] = "e"
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

    @model_validator(mode="after")
    def _tile_vs_overlap(self) -> "InferenceConfig":
        if self.tile_overlap is not None and self.tile_overlap % self.pd:
            raise ValueError(f"tile_overlap {self.tile_overlap} must be a multiple of pd {self.pd}")
        if self.tile is not None and self.tile_overlap is not None and self.tile <= 2 * self.tile_overlap + self.pd:
            raise ValueError(f"tile {self.tile} must exceed 2 x tile_overlap + pd = "
                             f"{2 * self.tile_overlap + self.pd}; raise --tile or lower --tile-overlap")
        return self


OutputFormat = Literal["same", "png", "tiff", "jpeg", "bmp", "webp"]


class DenoiseConfig(_Strict):
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
    format: OutputFormat = "same"
    """Output format; 'same' keeps the input's (camera RAW -> 16-bit TIFF)."""
    overwrite: bool = False
    """Replace existing outputs (never an input)."""
    skip_existing: bool = False
    """Leave existing outputs alone and count them as skipped (resumes a batch)."""
    shard: Optional[str] = None
    """'K/N': process only the K-th (1-based) of N deterministic parts of the sorted inputs."""
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
        return self

    @property
    def shard_k_n(self) -> tuple[int, int]:
        if self.shard is None:
            return 1, 1
        k, n = (int(s) for s in self.shard.split("/"))
        return k, n


PRESETS: dict[str, dict] = {
    # SDAP paper, stage 1 (sdap-method.md section 3): Adam lr 1e-4, patch 160, batch 16
    "stage1": {"lr": 1e-4, "patch": 160, "batch": 16},
    # stage 2: fine-tune from the stage-1 best with lr 1e-5, patch 250, batch 8
    "stage2": {"lr": 1e-5, "patch": 250, "batch": 8},
}


class TrainConfig(_Strict):
    """`sdap train`: SDAP self-supervised training (RSG + cyclic L1) of DBSNl on noisy images."""

    data: list[str] = Field(min_length=1)
    """Folders (searched recursively) or files of noisy images; GT files by SIDD/CC naming are ignored."""
    out: str = "runs/sdap"
    """Run folder: config.yaml, train_log.csv, state.pt (resume), best/last .safetensors."""
    preset: Optional[Literal["stage1", "stage2"]] = None
    """Paper schedule this run follows (sets lr, patch, batch unless given)."""
    model: ModelConfig = Field(default_factory=ModelConfig)
    p: int = Field(5, ge=2, le=8)
    """RSG cell size: p*p sub-images per patch (5 in SDAP)."""
    patch: int = Field(160, ge=10)
    """Training crop side, a multiple of p."""
    batch: int = Field(16, ge=1)
    """Crops per step (per process under torchrun)."""
    lr: float = Field(1e-4, gt=0)
    """Adam learning rate (betas 0.9, 0.999)."""
    schedule: Literal["constant", "cosine"] = "constant"
    """Learning-rate schedule; SDAP uses a constant rate."""
    lr_min: float = Field(1e-6, ge=0)
    """Final learning rate of the cosine schedule."""
    iterations: int = Field(20000, ge=1)
    """Optimizer steps in total."""
    init: Optional[Path] = None
    """Initial weights (any format `denoise` loads), e.g. the stage-1 best for stage 2."""
    val: Optional[str] = None
    """Validation folder (noisy/clean sub-folders) or folder with the SIDD validation .mat files."""
    val_every: int = Field(500, ge=1)
    """Validate every this many steps (and at the end)."""
    val_limit: Optional[int] = Field(None, ge=1)
    """Use only the first N validation images."""
    checkpoint_every: int = Field(500, ge=1)
    """Save the resumable state (and a numbered .safetensors) every this many steps."""
    log_every: int = Field(20, ge=1)
    """Write a CSV row every this many steps."""
    seed: int = 0
    """Seed of crops, augmentation, RSG permutations and initial weights."""
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """Autocast precision; master weights stay fp32."""
    channels_last: bool = True
    compile: bool = False
    """torch.compile the network (CUDA; slow to start)."""
    workers: int = Field(2, ge=0)
    """DataLoader worker processes."""
    threads: Optional[int] = Field(None, ge=1)

    @model_validator(mode="after")
    def _check(self) -> "TrainConfig":
        if self.patch % self.p:
            raise ValueError(f"patch {self.patch} must be a multiple of the RSG cell size p = {self.p}; "
                             f"try {self.patch // self.p * self.p}")
        if self.preset == "stage2" and self.init is None:
            raise ValueError("preset stage2 fine-tunes the stage-1 best: pass --init RUN/best.safetensors")
        return self
