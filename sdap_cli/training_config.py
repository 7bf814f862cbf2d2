"""What `sdap train` and `sdap distill` accept: pydantic models, the one source of their defaults, bounds and
cross-field checks (the other commands' are in ``config.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from .config import RefineMode, StrictModel

__all__ = ["ModelConfig", "LoopConfig", "TrainConfig", "StudentConfig", "DistillConfig"]


class ModelConfig(StrictModel):
    """DBSNl architecture (paper defaults); ``in_ch``/``out_ch``: image channels in and out."""

    in_ch: int = Field(3, ge=1)
    out_ch: int = Field(3, ge=1)
    base_ch: int = Field(128, ge=2, multiple_of=2)
    """Branch width; 128 in the paper."""
    num_module: int = Field(9, ge=0)
    """Dilated residual blocks per branch; 9 in the paper."""


class LoopConfig(StrictModel):
    """Options every training loop has (``sdap train`` and ``sdap distill``)."""

    data: list[str] = Field(min_length=1)
    """Folders (searched recursively) or files of noisy images; GT files by SIDD/CC naming are ignored."""
    out: str = "runs/sdap"
    """Run folder: config.yaml, train_log.csv, state.pt (resume), best/last .safetensors."""
    patch: int = Field(160, ge=8)
    """Training crop side."""
    batch: int = Field(16, ge=1)
    """Crops per step (per process under torchrun)."""
    lr: float = Field(1e-4, gt=0)
    """Adam learning rate (betas 0.9, 0.999)."""
    schedule: Literal["constant", "cosine"] = "constant"
    """Learning-rate schedule."""
    lr_min: float = Field(1e-6, ge=0)
    """Final learning rate of the cosine schedule."""
    warmup: int = Field(0, ge=0)
    """Linear learning-rate warm-up over the first N steps (0: none); for --init runs whose Adam state is lost."""
    iterations: int = Field(20000, ge=1)
    """Optimizer steps in total."""
    ema: float = Field(0.0, ge=0.0, lt=1.0)
    """Weight average decay d: after each step avg <- d avg + (1 - d) w; validated, kept, saved instead (0: off)."""
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
    """Seed of crops, augmentation, random permutations and initial weights."""
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """Autocast precision; master weights stay fp32."""
    channels_last: bool = True
    compile: bool = False
    """torch.compile the network (CUDA; slow to start)."""
    workers: int = Field(2, ge=0)
    """DataLoader worker processes."""
    threads: Optional[int] = Field(None, ge=1)


class TrainConfig(LoopConfig):
    """`sdap train`: SDAP self-supervised training (RSG + cyclic L1) of DBSNl on noisy images."""

    preset: Optional[Literal["stage1", "stage2"]] = None
    """Paper schedule this run follows (sets lr, patch, batch unless given)."""
    model: ModelConfig = Field(default_factory=ModelConfig)
    p: int = Field(5, ge=2, le=8)
    """RSG cell size: p*p sub-images per patch (5 in SDAP); the patch must be a multiple of it."""
    init: Optional[Path] = None
    """Initial weights (any format `denoise` loads), e.g. the stage-1 best for stage 2."""

    @model_validator(mode="after")
    def _check(self) -> "TrainConfig":
        if self.patch % self.p:
            raise ValueError(f"patch {self.patch} must be a multiple of the RSG cell size p = {self.p}; "
                             f"try {self.patch // self.p * self.p}")
        if self.preset == "stage2" and self.init is None:
            raise ValueError("preset stage2 fine-tunes the stage-1 best: pass --init RUN/best.safetensors")
        return self


class StudentConfig(StrictModel):
    """StudentUNet architecture: widths and residual blocks of its three levels (1/2, 1/4, 1/8)."""

    ch: tuple[int, int, int] = (40, 64, 128)
    """Channels per level (the shipped student's; (32, 64, 128) before 2026-12-07: 1.15-1.25x faster)."""
    blocks: tuple[int, int, int] = (1, 1, 2)
    """Residual blocks per level (encoder and decoder each)."""

    @field_validator("ch", "blocks")
    @classmethod
    def _positive(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        if min(v) < 1:
            raise ValueError(f"{v}: every level needs at least 1")
        return v


class DistillConfig(LoopConfig):
    """`sdap distill`: train a StudentUNet on noisy -> teacher output pairs (L1)."""

    out: str = "runs/distill"
    teacher: Optional[Path] = None
    """Teacher weights (a DBSNl file); None: the shipped default."""
    ensemble: list[Path] = []
    """More teachers (DBSNl files): each target is the per-pixel mean over ``teacher`` and these."""
    teacher_refine: RefineMode = "e"
    """How the teacher denoises the training images (its outputs are the targets)."""
    targets: list[Literal["teacher", "phase1", "phase2", "phase3", "hflip", "vflip", "rot90", "rot180", "rot270",
                          "transpose", "transverse", "auto"]] = ["teacher"]
    """Teacher outputs the student learns, loss summed over them (training/distill.py TARGETS)."""
    self_ensemble: Literal[1, 2, 4, 8] = 1
    """The teacher's target averaged over this many of the 8 flips and transposes (training/distill.py
    DIHEDRAL; 1: the teacher as it is). Each term is one more teacher pass, cached."""
    recharge: float = Field(0.0, ge=0.0, le=1.0)
    """Probability that a pixel of one random target takes the noisy value (APR-RD's recharge)."""
    cache: Optional[Path] = None
    """Folder of cached teacher outputs (keyed by teacher, image, refine, target); None: ``<out>/teacher_cache``."""
    student: StudentConfig = Field(default_factory=StudentConfig)
    init: Optional[Path] = None
    """Initial student weights (a student .safetensors)."""
    patch: int = Field(128, ge=8, multiple_of=8)
    """Training crop side, a multiple of 8 (the student's alignment)."""
    batch: int = Field(8, ge=1)
    lr: float = Field(5e-4, gt=0)
    schedule: Literal["constant", "cosine"] = "cosine"
    iterations: int = Field(10000, ge=1)
    condition: bool = False
    """A noise-conditional one-pass student (training/onepass.py): told each image's measured noise, it
    learns every path's output (heavy: the teacher; light: the light teacher at PD-1 + blend; clean: the
    input) and, from ``clean`` images with synthetic noise, the clean image itself."""
    clean: list[str] = []
    """Folders or files of clean photos: each is a target of itself and of ``synthetic`` noisy versions."""
    synthetic: int = Field(4, ge=0)
    """Noisy versions of each clean photo (training/synthetic.py: white, signal, box, pd2, bayer)."""
    fresh_noise: bool = False
    """Draw each clean photo's noise anew for every crop (kind, level and noise; told the whole photo's reading
    at that level, interpolated: training/synthetic.py ``FreshNoise``) instead of ``synthetic`` fixed versions;
    a crop is then clean in 1 of ``synthetic + 1``."""
    synthetic_kinds: Optional[dict[Literal["white", "signal", "box", "pd2", "bayer", "camera", "phone"], float]] = None
    """With ``fresh_noise``: relative weights of the noise kinds drawn (training/synthetic.py ``ALL_KINDS``; a
    kind left out is not drawn); None: the first five (``KINDS``, not ``camera`` or ``phone``) all equal."""
    synthetic_levels: tuple[float, float] = (1.0, 12.0)
    """Range of the synthetic noise's std (8-bit levels), drawn log-uniformly."""
    synthetic_share: float = Field(1 / 3, gt=0.0, lt=1.0)
    """About this fraction of the crops drawn comes from the clean photos and their noisy versions."""
    clean_scales: list[float] = [1.0]
    """Each clean photo at these scales (area-averaged; 0.5: half the side, finer detail per pixel and less
    of its own grain), each with its noisy versions."""
    target_blend: tuple[float, float] = (0.5, 0.0)
    """(light, heavy): how much of its path's Wiener blend a real noisy image's target gets (0: the teacher's
    output as it is, low-frequency checked; 1: blended as ``sdap denoise --model teacher`` blends). The blend
    puts part of the input back where the teacher smooths; a student that keeps detail from the clean photos
    learns the noise put back too (DND residual noise)."""
    recolour: int = Field(0, ge=0)
    """Recoloured copies of each clean photo (channels permuted, saturation raised; training/synthetic.py),
    each with ``synthetic`` noisy versions too."""
    light_teacher: Optional[Path] = None
    """The network of the light path's targets (PD-1 + blend); None: the shipped teacher."""
    self_targets: Optional[Path] = None
    """With ``condition``: a noise-conditional one-pass student whose self-ensemble is the target of the real
    images whose noise reads as the heavy path's, in place of the teacher's (training/targets.py
    ``student_target``); None: the teacher's."""
    self_targets_ensemble: Literal[1, 2, 4, 8] = 8
    """Flips and transposes averaged in a ``self_targets`` target (each one more pass of that student, cached)."""
    self_targets_told: float = Field(1.0, gt=0.0, le=4.0)
    """The factor on the noise levels ``self_targets`` is told (1: what ``sdap denoise`` measures)."""

    @field_validator("synthetic_kinds", mode="before")
    @classmethod
    def _kinds_text(cls, v):
        """'white=2,box=1.5' (the command line's form) -> {'white': 2.0, 'box': 1.5}."""
        if not isinstance(v, str):
            return v
        try:
            return {k.strip(): float(w) for k, w in (part.split("=") for part in v.split(","))}
        except ValueError:
            raise ValueError(f"--synthetic-kinds {v!r}: give kind=weight pairs separated by commas, "
                             "e.g. white=2,box=1") from None

    @field_validator("synthetic_kinds")
    @classmethod
    def _kinds_weighed(cls, v):
        if v is not None and (any(w < 0 for w in v.values()) or not sum(v.values()) > 0):
            raise ValueError(f"--synthetic-kinds {v}: weights >= 0, not all 0")
        return v

    @model_validator(mode="after")
    def _one_pass(self) -> "DistillConfig":
        if self.clean and not self.condition:
            raise ValueError("--clean trains the noise-conditional student: add --condition")
        if self.recolour and not self.clean:
            raise ValueError("--recolour recolours the clean photos: add --clean")
        if self.fresh_noise and not (self.clean and self.synthetic):
            raise ValueError("--fresh-noise draws the clean photos' noise: add --clean and --synthetic >= 1")
        if self.synthetic_kinds is not None:
            if not self.fresh_noise:
                raise ValueError("--synthetic-kinds weighs the kinds of --fresh-noise: add --fresh-noise")
        lo, hi = self.synthetic_levels
        if not 0 < lo <= hi:
            raise ValueError(f"--synthetic-levels {lo:g},{hi:g}: give 0 < low <= high")
        if not all(0 <= v <= 1 for v in self.target_blend):
            raise ValueError(f"--target-blend {self.target_blend}: each share in [0, 1]")
        if not self.clean_scales or not all(0 < v <= 1 for v in self.clean_scales):
            raise ValueError(f"--clean-scales {self.clean_scales}: each scale in (0, 1]")
        if self.self_ensemble > 1 and self.targets != ["teacher"]:
            raise ValueError("--self-ensemble averages the teacher's one target: leave --targets")
        if self.self_targets is not None and not self.condition:
            raise ValueError("--self-targets makes the one-pass student's heavy targets: add --condition")
        if self.condition and (self.targets != ["teacher"] or self.recharge):
            raise ValueError("--condition makes its own targets (one per image): leave --targets and --recharge")
        return self
