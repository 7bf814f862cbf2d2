"""Denoise image files: :func:`denoise_files` and :class:`FileBatch`, the batch `sdap denoise` runs.

Data flows one way: read -> tile -> model -> untile -> write. One bad file never stops the batch: it
becomes a failed :class:`FileResult` with a one-line reason, and the batch goes on. Outputs are written
atomically (``io.atomic``) and never replace an input; ``skip_existing`` resumes a batch, ``shard``
splits one over workers, and temporary files left by a killed run are removed from the output folders.

Three stages overlap (``io.overlap``): a reader thread decodes the next file and a writer thread encodes
the last one while the network denoises this one (decoders and encoders release the GIL). The first file
is read while PyTorch is imported, which is why this module imports the inference modules (and torch) only
when a batch starts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pydantic import ValidationError

from ..config import DenoiseConfig, InferenceConfig
from ..errors import ConfigError, OutOfMemory, OutputError, SdapError, first_line
from ..inference.memory import denoise_fits, reuse_freed_memory
from ..io import images
from ..io.atomic import remove_stale_temporaries
from ..io.batch import STDIO, Inputs, Job, plan_outputs, resolve_inputs, run_suffix, shard
from ..io.overlap import ReadWriteOverlap
from .arrays import Denoiser, option_error

__all__ = ["FileResult", "DenoiseResult", "Progress", "FileBatch", "denoise_files", "denoise_config"]


@dataclass
class FileResult:
    """What became of one input.

    Attributes:
        input: the input path ('-': stdin). output: where its result went (None: nowhere was planned).
        status: 'ok', 'skipped' (its output exists and ``skip_existing``, or its name says sdap wrote it)
            or 'failed'. error: the one-line reason ('failed', 'skipped'), else None.
        seconds: reading, denoising and writing it. megapixels: its size.
        noise, network: what was decided and what ran, as :attr:`~sdap_cli.api.ImageResult.noise` and
            :attr:`~sdap_cli.api.ImageResult.network`.
    """

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
    """A batch's summary: every file's result (in the order they were yielded) and the run's settings."""

    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    device: str = ""
    precision: str = ""
    runtime: str = ""               # what ran the network: 'torch', 'onnxruntime', 'openvino' (inference/runtime.py)
    auto: bool = False              # --auto in effect: the path was chosen per image (FileResult.noise)
    network: dict | None = None     # without --auto: the one network and options every file ran with
    own_outputs: int = 0            # inputs skipped because their names say sdap wrote them
    unsearched: int = 0             # sub-folders of folder inputs not searched (no --recursive)
    removed_temporaries: list[str] = field(default_factory=list)   # left by an earlier sdap killed mid-write

    def count(self, status: str) -> int:
        return sum(f.status == status for f in self.files)

    @property
    def taken(self) -> list[tuple[str, dict | None]]:
        """--auto: (path, what ran) of each file denoised."""
        return [(f.noise["path"], f.network) for f in self.files if f.status == "ok" and f.noise]

    @property
    def paths(self) -> dict[str, int]:
        """--auto: how many files took each path ('clean', 'light', 'heavy', 'one-pass')."""
        from ..inference.denoisers import count_paths

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
    """What a batch tells a progress display (the CLI's ``progress.py``): the number of files once the
    network is built, each file as it starts, each tile ``(done, total)`` of it, each file's result."""

    def start(self, total: int) -> None: ...
    def file_start(self, index: int, job: Job) -> None: ...
    def tile(self, done: int, total: int) -> None: ...
    def file_done(self, index: int, result: FileResult) -> None: ...


def _output_format(job: Job, cfg: DenoiseConfig, source_format: str) -> str:
    """``-f``, else the output file's suffix; on stdout (no suffix) the input's format (RAW: TIFF)."""
    fmt = None if cfg.format == "same" else cfg.format
    if job.output == STDIO:
        return fmt or ("tiff" if source_format == "raw" else source_format)
    return fmt or images.format_for_suffix(Path(job.output).suffix)


@dataclass
class _Denoised:
    """A file denoised and not yet written: the output samples and what the report says of it."""

    img: images.Image
    rgb: np.ndarray
    fmt: str
    megapixels: float
    noise: dict | None
    network: dict | None
    job: Job
    seconds: float = 0.0
    """Reading and denoising it took (the write is added when it is done)."""

    def result(self, seconds: float) -> FileResult:
        return FileResult(self.job.source, self.job.output, "ok", None, seconds, self.megapixels, self.noise,
                          self.network)


def _read(job: Job) -> tuple[images.Image, float]:
    """Stage 1 (the reader thread): decode the input, refused before decoding if it cannot fit in memory;
    and the seconds that took (a file read ahead waits for the network, which is not its time)."""
    t0 = time.perf_counter()
    return images.read_image(job.source, fits=denoise_fits), time.perf_counter() - t0


def _denoise(den: Denoiser, job: Job, img: images.Image, cfg: DenoiseConfig, progress: Progress | None
             ) -> _Denoised:
    """Stage 2 (the main thread): the network, samples in, samples out, converted tile by tile (about
    twice the decoded image in all); the input pixels are freed before the output is written."""
    try:
        rgb, noise, network = den.denoise_samples(img, progress.tile if progress is not None else None)
    except OutOfMemory as e:
        raise OutOfMemory(f"{job.source}: {e}") from None
    mp = img.height * img.width / 1e6
    img.release()
    return _Denoised(img, rgb, _output_format(job, cfg, img.format), mp, noise, network, job)


def _write(job: Job, done: _Denoised, cfg: DenoiseConfig) -> None:
    """Stage 3 (the writer thread): encode and write the output atomically, with the input's metadata."""
    if job.output != STDIO:
        parent = Path(job.output).parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"{parent}: cannot create the output folder ({e.strerror or e})") from None
    images.write_image(job.output, done.rgb, done.img, done.fmt, cfg.quality,
                       None if cfg.strip_metadata else done.img.metadata)


def _failed(job: Job, e: BaseException) -> FileResult:
    """A failure of this file as its result (the batch goes on): an SdapError's one line, or the type and
    first line of anything else."""
    if isinstance(e, SdapError):
        return FileResult(job.source, job.output, "failed", str(e))
    return FileResult(job.source, job.output, "failed", f"{job.source}: {type(e).__name__}: {first_line(e)}")


def _planned(job: Job) -> FileResult | None:
    """The result of a job that does not run (a planned failure or skip), else None."""
    if job.error is not None:
        return FileResult(job.source, job.output, "failed", job.error)
    if job.skip_reason is not None:
        return FileResult(job.source, job.output, "skipped", job.skip_reason)
    return None


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


class FileBatch:
    """The batch of files a :class:`~sdap_cli.config.DenoiseConfig` names, as an iterator of
    :class:`FileResult`: one per input, in input order (inputs that name nothing and files skipped by
    name first). Nothing happens until the first result is asked for; then the inputs are resolved, stale
    temporaries removed, the network built, and each file read, denoised and written while the next is
    read. Stopping early (``break``, :meth:`close`) stops there: the outputs of the results yielded are
    written, no other is (and writes are atomic: never half a file). :attr:`summary` collects the results
    and the run's device, precision and network.

    Raises (from iteration):
        SdapError: what stops everything (weights, device, ``output='-'`` with several inputs); a bad file
            is a failed result instead.
    """

    def __init__(self, config: DenoiseConfig, progress: Progress | None = None) -> None:
        self.config, self.progress = config, progress
        self.summary = DenoiseResult()
        self._results = self._run()

    def __iter__(self) -> FileBatch:
        return self

    def __next__(self) -> FileResult:
        return next(self._results)

    def close(self) -> None:
        """Stop the batch: nothing further is read, denoised or written."""
        self._results.close()

    def _done(self, i: int | None, fr: FileResult) -> FileResult:
        self.summary.files.append(fr)
        if i is not None and self.progress is not None:
            self.progress.file_done(i, fr)
        return fr

    def _start(self) -> tuple[list[Job], list[FileResult]]:
        """Plan the jobs, remove stale temporaries from their output folders; the jobs and the results of the
        inputs that give none."""
        cfg, s = self.config, self.summary
        planned = _plan(cfg)
        jobs = planned.jobs
        s.own_outputs, s.unsearched = len(planned.own_outputs), planned.unsearched
        s.removed_temporaries = [str(p) for d in sorted({Path(j.output).parent for j in jobs
                                                         if j.output and j.output != STDIO})
                                 for p in remove_stale_temporaries(d)]
        early = [FileResult(src, None, "failed", why) for src, why in planned.failures] + \
            [FileResult(src, None, "skipped", "named as an output of sdap") for src in planned.own_outputs]
        return jobs, early

    def _build(self, runnable: list[Job]) -> Denoiser:
        """The network (``adapt``: fine-tuned on the inputs first); the run's settings go into the summary."""
        cfg, s = self.config, self.summary
        den = Denoiser.from_config(cfg.inference, cfg.weights, adapt_images=lambda: _adapt_images(runnable),
                                   save_adapted=cfg.save_adapted,
                                   on_adapt_step=getattr(self.progress, "adapt", None))
        s.device, s.precision, s.auto, s.network = den.device, den.precision, den.auto, den.network
        s.runtime = den.runtime
        return den

    def _run(self) -> Iterator[FileResult]:
        t0 = time.perf_counter()
        reuse_freed_memory()                # tiles reuse the memory of the last one (inference.memory)
        cfg, progress = self.config, self.progress
        jobs, early = self._start()
        runnable = [j for j in jobs if _planned(j) is None]
        pipe = ReadWriteOverlap(lambda i: _read(jobs[i]), lambda i, done: _write(jobs[i], done, cfg))

        def read_next(after: int) -> None:              # the next file that runs, one at a time
            k = next((k for k in range(after + 1, len(jobs)) if _planned(jobs[k]) is None), None)
            if k is not None:
                pipe.read_ahead(k)

        def written() -> tuple[int, FileResult] | None:  # the write in flight, as its file's result
            w = pipe.written()
            if w is None:
                return None
            i, done, error, seconds = w
            return i, _failed(jobs[i], error) if error else done.result(done.seconds + seconds)

        try:
            for fr in early:
                yield self._done(None, fr)
            if runnable and not cfg.inference.adapt:
                read_next(-1)               # the first file is decoded while torch is imported
            den = self._build(runnable) if runnable else None
            if progress is not None:
                progress.start(len(jobs))
            for i, job in enumerate(jobs):
                if progress is not None:
                    progress.file_start(i, job)
                fr = _planned(job)
                if fr is None:
                    try:
                        (img, read_s), _ = pipe.take(i)
                        started = time.perf_counter() - read_s
                        read_next(i)
                        done = _denoise(den, job, img, cfg, progress)
                        done.seconds = time.perf_counter() - started
                    except Exception as e:              # noqa: BLE001 - the batch goes on
                        fr = _failed(job, e)
                        read_next(i)
                last = written()            # the last file's write had this file's denoising to finish
                if last is not None:
                    yield self._done(*last)
                if fr is None:
                    pipe.write(i, done)
                else:
                    yield self._done(i, fr)
            last = written()
            if last is not None:
                yield self._done(*last)
        finally:
            pipe.close()
            self.summary.seconds = time.perf_counter() - t0


def denoise_config(inputs: str | os.PathLike | list, output: str | os.PathLike | None = None, **options: Any
                   ) -> DenoiseConfig:
    """The :class:`DenoiseConfig` of :func:`denoise_files`' arguments (None values left at their defaults).

    Raises:
        ConfigError: an unknown option or a bad value or combination, on one line.
    """
    batch_fields = set(DenoiseConfig.model_fields) - {"inputs", "output", "inference"}
    inference_fields = set(InferenceConfig.model_fields)
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - batch_fields - inference_fields)
    if unknown:
        names = ", ".join(sorted(batch_fields | inference_fields))
        raise ConfigError(f"{', '.join(unknown)}: unknown option (options: {names})")
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    values = {k: v for k, v in given.items() if k in batch_fields}
    values["inference"] = {k: v for k, v in given.items() if k in inference_fields}
    try:
        return DenoiseConfig(inputs=[os.fspath(x) for x in items],
                             output=None if output is None else os.fspath(output), **values)
    except ValidationError as e:
        raise option_error(e) from None


def denoise_files(inputs: str | os.PathLike | list, output: str | os.PathLike | None = None, *,
                  progress: Progress | None = None, **options: Any) -> FileBatch:
    """Denoise image files as `sdap denoise` does; an iterator yielding one :class:`FileResult` per input.

    Args:
        inputs: files, folders (their images; sub-folders with ``recursive=True``), glob patterns, '-' (stdin).
        output: an output folder (mirroring the input folders), a file (one input), '-' (stdout), or
            None: beside each input, named with the suffix '_denoised'.
        progress: an object with the methods of :class:`Progress` (``tile(done, total)`` included), or None.
        **options: the fields of :class:`~sdap_cli.config.DenoiseConfig` (``weights``, ``recursive``,
            ``suffix``, ``format``, ``quality`` (1-100), ``strip_metadata``, ``overwrite``, ``skip_existing``,
            ``shard`` ('K/N'), ``save_adapted``) and those of the :class:`~sdap_cli.api.Denoiser` (``device``,
            ``precision``, ``model``, ``tile``, ``strength``, ``adapt``, ...).

    Returns:
        A :class:`FileBatch`: iterate it (each file is done when its result arrives); its ``summary``
        collects the results and the device, precision and network of the run.

    Raises:
        ConfigError: an unknown option or a bad value, at once; what stops the whole batch (weights, device)
        when iterating. A bad file is a result with status 'failed', and the batch goes on.

    Example:
        >>> for r in denoise_files(["photos/"], "clean/", skip_existing=True):   # doctest: +SKIP
        ...     print(r.input, r.status, r.error or r.noise)
    """
    return FileBatch(denoise_config(inputs, output, **options), progress)
