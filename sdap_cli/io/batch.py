"""A batch of inputs: which files the command line names, and where each one's output goes.

Inputs are files, folders (their images; sub-folders with ``--recursive``), glob patterns and ``-``
(stdin). Outputs go into ``--output`` (mirroring the input folders), beside the inputs with the suffix
``_denoised``, or to stdout; an output never overwrites an input, two inputs never share an output, and
files whose names say this tool wrote them are not denoised again.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..config import DenoiseConfig
from . import images

__all__ = ["STDIO", "BESIDE_SUFFIX", "Job", "Inputs", "run_suffix", "is_own_output", "resolve_inputs",
           "plan_outputs", "shard"]

STDIO = "-"


@dataclass
class Job:
    """One input and where its result goes."""

    source: str                     # a path, or '-' for stdin
    rel: Path                       # path relative to the input root (used under an output folder)
    output: str = ""                # a path, or '-' for stdout
    skip_reason: str | None = None  # set when the output exists and --skip-existing
    error: str | None = None        # set when the job cannot run (planned failure)



BESIDE_SUFFIX = "_denoised"
"""The name suffix of outputs written beside their inputs (no ``--output``, no ``--suffix``)."""


@dataclass
class Inputs:
    """What the inputs resolved to: the jobs, the inputs that failed, the files skipped because their
    names say this tool wrote them, and the sub-folders a folder input had but was not searched (no -r)."""

    jobs: list[Job] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    """(input, why it gives no job): a folder without images, a pattern without matches, a missing path."""
    own_outputs: list[str] = field(default_factory=list)
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
    """Expand files, folders and globs into jobs; unmatched inputs become ``failures``.

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
            res.own_outputs.append(src)
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
                res.failures.append((item, f"{item}: no images found in this folder{hint}"))
            for f in found:
                add(str(f), f.relative_to(p), True)
        elif p.exists():
            add(item, Path(p.name), False)
        elif glob.has_magic(item):
            matches = sorted(m for m in glob.glob(item, recursive=recursive)
                             if Path(m).is_file() and images.is_image_path(m))
            if not matches:
                res.failures.append((item, f"{item}: no images match this pattern"))
            for m in matches:
                add(m, Path(Path(m).name), True)
        else:
            res.failures.append((item, f"{item}: no such file or folder"))
    return res


def output_suffix(src: str, fmt: str) -> str:
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
            name = job.rel.stem + suffix + output_suffix(job.source, cfg.format)
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
