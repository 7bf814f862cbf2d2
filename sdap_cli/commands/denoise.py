"""`sdap denoise`: resolve inputs, plan outputs, denoise each file, report per file.

Data flows one way: read -> tile -> model -> untile -> write. One bad file never stops the batch: it
becomes a failed ``FileResult`` with a one-line reason.
"""

from __future__ import annotations

import glob
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ..config import DenoiseConfig
from ..errors import ConfigError, InputError, OutOfMemory, OutputError, SdapError, first_line
from ..inference.denoiser import Denoiser
from ..inference.denoisers import (
    auto_active,
    build_denoiser,
    choose_weights,
    count_paths,
    denoise_image,
    inference_device,
)
from ..inference.memory import denoise_fits
from ..io import images
from ..training.adapt import adapt_weights

STDIO = "-"


@dataclass
class Job:
    """One input and where its result goes."""

    source: str                     # a path, or '-' for stdin
    rel: Path                       # path relative to the input root (used under an output folder)
    output: str = ""                # a path, or '-' for stdout
    skip_reason: str | None = None  # set when the output exists and --skip-existing
    error: str | None = None        # set when the job cannot run (planned failure)


@dataclass
class FileResult:
    input: str
    output: str | None
    status: str                     # 'ok' | 'skipped' | 'failed'
    error: str | None = None
    seconds: float = 0.0
    megapixels: float = 0.0
    noise: dict | None = None       # --auto: {'path', 'sigma', 'rho1', 'rho2'} (inference/adaptive.py)
    network: dict | None = None     # what ran: {'model', 'weights', 'pd', 'refine', 'strength'[, 'blend']}


@dataclass
class DenoiseResult:
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    device: str = ""
    precision: str = ""
    auto: bool = False              # --auto in effect: the path was chosen per image (FileResult.noise)
    network: dict | None = None     # without --auto: the one network and options every file ran with
    own_outputs: int = 0            # inputs skipped because their names say sdap wrote them
    unsearched: int = 0             # sub-folders of folder inputs not searched (no --recursive)

    def count(self, status: str) -> int:
        return sum(f.status == status for f in self.files)

    @property
    def taken(self) -> list[tuple[str, dict | None]]:
        """--auto: (path, what ran) of each file denoised."""
        return [(f.noise["path"], f.network) for f in self.files if f.status == "ok" and f.noise]

    @property
    def paths(self) -> dict[str, int]:
        """--auto: how many files took each path ('clean', 'light', 'heavy')."""
        return count_paths(self.taken)

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(ok=self.count("ok"), skipped=self.count("skipped"), failed_count=self.count("failed"),
                 paths=self.paths)
        return d


class Progress(Protocol):
    def start(self, total: int) -> None: ...
    def file_start(self, index: int, job: Job) -> None: ...
    def tile(self, done: int, total: int) -> None: ...
    def file_done(self, index: int, result: FileResult) -> None: ...


BESIDE_SUFFIX = "_denoised"
"""The name suffix of outputs written beside their inputs (no ``--output``, no ``--suffix``)."""


@dataclass
class Inputs:
    """What the inputs resolved to: the jobs, the inputs that failed, the files skipped because their
    names say this tool wrote them, and the sub-folders a folder input had but was not searched (no -r)."""

    jobs: list[Job] = field(default_factory=list)
    failures: list[FileResult] = field(default_factory=list)
    own_outputs: list[FileResult] = field(default_factory=list)
    unsearched: int = 0


def run_suffix(cfg: DenoiseConfig) -> str:
    """The suffix this run adds to output names: ``--suffix``, else '_denoised' beside the inputs, else ''."""
    if cfg.suffix is not None:
        return cfg.suffix
    return BESIDE_SUFFIX if cfg.output is None else ""


def is_own_output(path: str | Path, suffix: str) -> bool:
    """Whether a file's name says an earlier run of this tool wrote it: its stem ends with the suffix
    outputs beside their inputs get ('_denoised') or with this run's own suffix (if any).

        >>> is_own_output("beside/34_denoised.png", ""), is_own_output("a/34.png", "_x"), is_own_output("34_x.tif", "_x")
        (True, False, True)
    """
    stem = Path(path).stem
    return stem.endswith(BESIDE_SUFFIX) or bool(suffix) and stem.endswith(suffix)


def resolve_inputs(inputs: list[str], recursive: bool, suffix: str = "") -> Inputs:
    """Expand files, folders and globs into jobs; unmatched inputs become failed results.

    Files found in a folder or by a pattern whose names say this tool wrote them (:func:`is_own_output`)
    are skipped, as are files named on the command line that would get ``suffix`` twice: a second run
    beside its outputs does not denoise them again. ``suffix``: this run's (:func:`run_suffix`).
    """
    res = Inputs()
    seen: set[str] = set()

    def add(src: str, rel: Path, found: bool) -> None:
        key = src if src == STDIO else os.path.realpath(src)
        if key in seen:
            return
        seen.add(key)
        if src != STDIO and (is_own_output(src, suffix) if found else bool(suffix) and
                             Path(src).stem.endswith(suffix)):
            res.own_outputs.append(FileResult(src, None, "skipped", "named as an output of sdap"))
        else:
            res.jobs.append(Job(src, rel))

    for item in inputs:
        if item == STDIO:
            add(STDIO, Path("stdin.png"), False)
            continue
        p = Path(item)
        if p.is_dir():
            walker = p.rglob("*") if recursive else p.glob("*")
            found = sorted(f for f in walker if f.is_file() and images.is_image_path(f)
                           and not any(part.startswith(".") for part in f.relative_to(p).parts))
            if not recursive:
                res.unsearched += sum(1 for d in p.iterdir() if d.is_dir() and not d.name.startswith("."))
            if not found:
                hint = "" if recursive else " (use --recursive to search sub-folders)"
                res.failures.append(FileResult(item, None, "failed", f"{item}: no images found in this folder{hint}"))
            for f in found:
                add(str(f), f.relative_to(p), True)
        elif p.exists():
            add(item, Path(p.name), False)
        elif glob.has_magic(item):
            matches = sorted(m for m in glob.glob(item, recursive=recursive)
                             if Path(m).is_file() and images.is_image_path(m))
            if not matches:
                res.failures.append(FileResult(item, None, "failed", f"{item}: no images match this pattern"))
            for m in matches:
                add(m, Path(Path(m).name), True)
        else:
            res.failures.append(FileResult(item, None, "failed", f"{item}: no such file or folder"))
    return res


def _output_suffix(src: str, fmt: str) -> str:
    ext = Path(src).suffix
    if fmt == "same":
        return ".tif" if ext.lower() in images.RAW_SUFFIXES else (ext or ".png")
    return images.suffix_for_format(fmt)


def plan_outputs(jobs: list[Job], cfg: DenoiseConfig) -> None:
    """Fill ``job.output`` (or ``job.error`` / ``job.skip_reason``) for every job."""
    out = cfg.output
    single_file = (out is not None and out != STDIO and len(jobs) == 1 and not Path(out).is_dir()
                   and Path(out).suffix.lower() in images.READ_SUFFIXES - images.RAW_SUFFIXES)
    suffix = cfg.suffix if cfg.suffix is not None else ("_denoised" if out is None else "")
    claimed: dict[str, str] = {}
    for job in jobs:
        if out == STDIO:
            job.output = STDIO
            continue
        if job.source == STDIO and out is None:
            job.output = STDIO
            continue
        if single_file:
            dest = Path(out)
        else:
            name = job.rel.stem + suffix + _output_suffix(job.source, cfg.format)
            base = Path(job.source).parent if out is None else Path(out) / job.rel.parent
            dest = base / name
        job.output = str(dest)
        real = os.path.realpath(dest)
        if job.source != STDIO and real == os.path.realpath(job.source):
            job.error = f"{job.source}: output would overwrite the input; choose another --output or --suffix"
        elif real in claimed:
            job.error = f"{job.source}: output {dest} is also the output of {claimed[real]}; use --suffix or folders"
        elif dest.exists() and cfg.skip_existing:
            job.skip_reason = "output exists"
        elif dest.exists() and not cfg.overwrite:
            job.error = f"{job.source}: output {dest} exists (use --overwrite or --skip-existing)"
        claimed.setdefault(real, job.source)


def shard(jobs: list[Job], k: int, n: int) -> list[Job]:
    """The K-th (1-based) of N parts: the i-th job in sorted order goes to part (i mod N) + 1."""
    if n == 1:
        return jobs
    ordered = sorted(jobs, key=lambda j: (str(j.rel), j.source))
    return [j for i, j in enumerate(ordered) if i % n == k - 1]


def _output_format(job: Job, cfg: DenoiseConfig, source_format: str) -> str:
    """``-f``, else the output file's suffix; on stdout (no suffix) the input's format (RAW: TIFF)."""
    fmt = None if cfg.format == "same" else cfg.format
    if job.output == STDIO:
        return fmt or ("tiff" if source_format == "raw" else source_format)
    return fmt or images.format_for_suffix(Path(job.output).suffix)


def denoise_file(den: Denoiser, job: Job, cfg: DenoiseConfig, progress: Progress | None) -> FileResult:
    """Read one input, denoise it (:func:`denoise_image`) and write its output atomically."""
    t0 = time.perf_counter()
    img = images.read_image(job.source, fits=denoise_fits)
    on_tile = progress.tile if progress is not None else None
    try:
        # samples in, samples out, converted tile by tile: about twice the decoded image in all
        rgb, noise, network = denoise_image(den, img.colour, cfg.inference, on_tile, out=img.output_buffer())
    except OutOfMemory as e:
        raise OutOfMemory(f"{job.source}: {e}") from None
    mp = img.height * img.width / 1e6
    img.release()                   # the input pixels are not needed to write the output: free them first
    fmt = _output_format(job, cfg, img.format)
    if job.output != STDIO:
        parent = Path(job.output).parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"{parent}: cannot create the output folder ({e.strerror or e})") from None
    images.write_image(job.output, rgb, img, fmt, cfg.quality, None if cfg.strip_metadata else img.metadata)
    return FileResult(job.source, job.output, "ok", None, time.perf_counter() - t0, mp, noise, network)


def _run_job(den: Denoiser | None, job: Job, cfg: DenoiseConfig, progress: Progress | None) -> FileResult:
    """One job's result; a failure of this file becomes a failed FileResult, never an exception."""
    if job.error is not None:
        return FileResult(job.source, job.output, "failed", job.error)
    if job.skip_reason is not None:
        return FileResult(job.source, job.output, "skipped", job.skip_reason)
    try:
        return denoise_file(den, job, cfg, progress)
    except SdapError as e:
        return FileResult(job.source, job.output, "failed", str(e))
    except Exception as e:                           # noqa: BLE001 - the batch goes on
        return FileResult(job.source, job.output, "failed", f"{job.source}: {type(e).__name__}: {first_line(e)}")


def _adapt_images(runnable: list[Job]) -> list[np.ndarray]:
    """The readable inputs, for ``--adapt`` (unreadable ones are reported when their job runs)."""
    out = []
    for job in runnable:
        try:
            out.append(images.read_image(job.source).rgb)
        except SdapError:
            pass
    if runnable and runnable[0].source == STDIO:
        raise ConfigError("--adapt cannot read stdin twice; give files")
    return out


def _plan(cfg: DenoiseConfig) -> Inputs:
    """The resolved inputs, their jobs (with planned outputs) cut to this shard."""
    res = resolve_inputs(cfg.inputs, cfg.recursive, run_suffix(cfg))
    res.jobs = shard(res.jobs, *cfg.shard_k_n)
    if cfg.output == STDIO and len(res.jobs) + len(res.failures) > 1:
        raise ConfigError("--output - (stdout) takes exactly one input")
    plan_outputs(res.jobs, cfg)
    return res


def run(cfg: DenoiseConfig, progress: Progress | None = None) -> DenoiseResult:
    """Denoise every input of ``cfg``; never raises for a single bad file.

    Raises:
        SdapError: for problems that stop everything (weights, device, output '-' with many inputs).
    """
    t0 = time.perf_counter()
    planned = _plan(cfg)
    jobs = planned.jobs
    result = DenoiseResult(files=planned.failures + planned.own_outputs, own_outputs=len(planned.own_outputs),
                           unsearched=planned.unsearched)
    runnable = [j for j in jobs if j.error is None and j.skip_reason is None]
    den = None
    if runnable:
        device = inference_device(cfg.inference)
        loaded = choose_weights(cfg.weights, cfg.inference, device)
        if cfg.inference.adapt:
            adapt_weights(loaded, cfg.inference, _adapt_images(runnable), device, cfg.save_adapted,
                          on_step=getattr(progress, "adapt", None))
        den = build_denoiser(loaded, cfg.inference, device, given=cfg.weights is not None)
        result.device, result.precision = str(den.device), den.precision
        result.auto = auto_active(cfg.inference)
        result.network = None if result.auto else den.describe()
    if progress is not None:
        progress.start(len(jobs))
    for i, job in enumerate(jobs):
        if progress is not None:
            progress.file_start(i, job)
        fr = _run_job(den, job, cfg, progress)
        result.files.append(fr)
        if progress is not None:
            progress.file_done(i, fr)
    result.seconds = time.perf_counter() - t0
    return result


__all__ = ["run", "resolve_inputs", "run_suffix", "is_own_output", "Inputs", "BESIDE_SUFFIX", "plan_outputs", "shard", "denoise_image", "denoise_file", "Job",
           "FileResult", "DenoiseResult", "InputError", "OutputError"]
