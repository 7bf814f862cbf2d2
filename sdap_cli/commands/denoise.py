"""`sdap denoise`: resolve inputs, plan outputs, denoise each file, report per file.

Data flows one way: read -> tile -> model -> untile -> write. One bad file never stops the batch: it
becomes a failed ``FileResult`` with a one-line reason.

Three stages overlap (:func:`run`, ``io.overlap``): a reader thread decodes the next file and a writer
thread encodes the last one while the network denoises this one (decoders and encoders release the GIL). The first file is
read while PyTorch is imported, which is why this module imports the inference modules (and torch) only
inside :func:`run`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..config import DenoiseConfig
from ..errors import ConfigError, InputError, OutOfMemory, OutputError, SdapError, first_line
from ..inference.memory import denoise_fits, reuse_freed_memory
from ..io import images
from ..io.batch import (BESIDE_SUFFIX, STDIO, Inputs, Job, is_own_output, plan_outputs, resolve_inputs,  # noqa: F401
                        run_suffix, shard)
from ..io.atomic import remove_stale_temporaries
from ..io.overlap import ReadWriteOverlap

if TYPE_CHECKING:
    from ..inference.denoiser import Denoiser


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
    removed_temporaries: list[str] = field(default_factory=list)   # left by an earlier sdap killed mid-write

    def count(self, status: str) -> int:
        return sum(f.status == status for f in self.files)

    @property
    def taken(self) -> list[tuple[str, dict | None]]:
        """--auto: (path, what ran) of each file denoised."""
        return [(f.noise["path"], f.network) for f in self.files if f.status == "ok" and f.noise]

    @property
    def paths(self) -> dict[str, int]:
        """--auto: how many files took each path ('clean', 'light', 'heavy')."""
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
    from ..inference.denoisers import denoise_image

    on_tile = progress.tile if progress is not None else None
    try:
        rgb, noise, network = denoise_image(den, img.colour, cfg.inference, on_tile, out=img.output_buffer())
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


def run(cfg: DenoiseConfig, progress: Progress | None = None) -> DenoiseResult:
    """Denoise every input of ``cfg``; never raises for a single bad file. Reading, denoising and writing
    overlap (``io.overlap.ReadWriteOverlap``); results and progress come in input order.

    Raises:
        SdapError: for problems that stop everything (weights, device, output '-' with many inputs).
    """
    t0 = time.perf_counter()
    reuse_freed_memory()                # tiles reuse the memory of the last one (inference.memory)
    planned = _plan(cfg)
    jobs = planned.jobs
    result = DenoiseResult(files=[FileResult(src, None, "failed", why) for src, why in planned.failures] +
                           [FileResult(src, None, "skipped", "named as an output of sdap") for src in planned.own_outputs],
                           own_outputs=len(planned.own_outputs),
                           unsearched=planned.unsearched,
                           removed_temporaries=[str(p) for d in sorted({Path(j.output).parent for j in jobs
                                                                       if j.output and j.output != STDIO})
                                                for p in remove_stale_temporaries(d)])
    runnable = [j for j in jobs if _planned(j) is None]
    pipe = ReadWriteOverlap(lambda i: _read(jobs[i]), lambda i, done: _write(jobs[i], done, cfg))

    def read_next(after: int) -> None:                  # the next file that runs, one at a time
        k = next((k for k in range(after + 1, len(jobs)) if _planned(jobs[k]) is None), None)
        if k is not None:
            pipe.read_ahead(k)

    def finish(i: int, fr: FileResult) -> None:
        result.files.append(fr)
        if progress is not None:
            progress.file_done(i, fr)

    def collect() -> None:                              # the write in flight, as its file's result
        w = pipe.written()
        if w is not None:
            i, done, error, seconds = w
            finish(i, _failed(jobs[i], error) if error else done.result(done.seconds + seconds))

    try:
        if runnable and not cfg.inference.adapt:
            read_next(-1)               # the first file is decoded while torch is imported
        den = _build(cfg, runnable, result, progress) if runnable else None
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
                except Exception as e:                  # noqa: BLE001 - the batch goes on
                    fr = _failed(job, e)
                    read_next(i)
            collect()                   # the last file's write had this file's denoising to finish
            if fr is None:
                pipe.write(i, done)
            else:
                finish(i, fr)
        collect()
    finally:
        pipe.close()
    result.seconds = time.perf_counter() - t0
    return result


def _build(cfg: DenoiseConfig, runnable: list[Job], result: DenoiseResult, progress: Progress | None) -> Denoiser:
    """The weights (``--adapt``: fine-tuned on the inputs first) and the denoiser; the run's device,
    precision and (without ``--auto``) network go into ``result``."""
    from ..inference.denoisers import (
        auto_active,
        build_denoiser,
        choose_weights,
        inference_device,
    )

    device = inference_device(cfg.inference)
    loaded = choose_weights(cfg.weights, cfg.inference, device)
    if cfg.inference.adapt:
        from ..training.adapt import (
            adapt_weights,  # training (and scipy) only for --adapt
        )

        adapt_weights(loaded, cfg.inference, _adapt_images(runnable), device, cfg.save_adapted,
                      on_step=getattr(progress, "adapt", None))
    den = build_denoiser(loaded, cfg.inference, device, given=cfg.weights is not None)
    result.device, result.precision = str(den.device), den.precision
    result.auto = auto_active(cfg.inference)
    result.network = None if result.auto else den.describe()
    return den


__all__ = ["run", "resolve_inputs", "run_suffix", "is_own_output", "Inputs", "BESIDE_SUFFIX", "plan_outputs", "shard", "Job",
           "FileResult", "DenoiseResult", "InputError", "OutputError"]
