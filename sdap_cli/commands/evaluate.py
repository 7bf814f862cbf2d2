"""`sdap evaluate`: PSNR/SSIM of a denoiser (or of existing outputs) against clean references, and
benchmark submissions (SIDD Kaggle CSV, DND sRGB bundle).

Data flows one way: a list of samples (name + lazy loaders) -> denoise or read the output -> round to
the source's bit depth (as a saved output would be) -> metrics -> rows, outputs, figure, submission.
One bad sample becomes a failed row with a one-line reason; the rest go on.

Where the pieces live: the samples and their pairing rule in ``evaluation.evalsets`` / ``training.datasets``
(``pair_key``), the figure in ``evaluation.figures``, the denoiser in ``inference.denoisers`` (as `sdap denoise`
builds it), submissions in ``evaluation.submissions``. This module runs the steps and collects the rows.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ..config import EvalConfig, InferenceConfig
from ..errors import ConfigError, OutOfMemory, OutputError, SdapError, first_line
from ..evaluation.evalsets import Sample, dataset_dir, dnd_samples, eval_samples
from ..evaluation.figures import crop, make_figure
from ..evaluation.metrics import psnr_ssim, to_uint8
from ..evaluation.submissions import write_dnd_bundle, write_sidd_kaggle_csv
from ..inference.denoiser import Denoiser
from ..inference.runtime import runtime_denoiser
from ..inference.denoisers import (
    auto_active,
    build_denoiser,
    choose_weights,
    count_paths,
    denoise_image,
    inference_device,
)
from ..inference.memory import reuse_freed_memory
from ..io import images
from ..io.atomic import make_parent
from ..io.folders import pair_key
from ..io.images import as_float, png_like

__all__ = ["run", "Row", "EvalResult", "Sample", "pair_key", "denoise_sample", "METRICS",
           "CONVENTION_NOTES"]

NETWORK_KEYS = ("model", "weights", "pd", "refine", "strength", "blend")
"""The CSV's columns of what ran on each image (``network_model``, ...; empty where nothing ran)."""
METRICS = ("psnr_in", "ssim_in", "psnr", "ssim", "gain", "seconds")
CONVENTION_NOTES = {
    "sdap": "sdap: uint8 RGB, PSNR over the whole array (range 255), SSIM Gaussian sigma 1.5, "
            "no sample covariance, channel mean",
    "apbsn": "apbsn: float clipped to 0-255, PSNR range 255, SSIM 7x7 uniform window, channel mean",
    "y": "y: BT.601 luma of uint8 RGB, PSNR range 255, SSIM Gaussian sigma 1.5",
}


@dataclass
class Row:
    """One image: metrics of the noisy input and of the denoised output against the clean reference."""

    name: str
    psnr_in: float | None = None
    ssim_in: float | None = None
    psnr: float | None = None
    ssim: float | None = None
    seconds: float = 0.0
    output: str | None = None
    error: str | None = None
    path: str | None = None             # --auto: the path taken and the measured noise (inference/adaptive.py)
    sigma: float | None = None
    rho1: float | None = None
    rho2: float | None = None
    network: dict | None = None         # what ran on this image (Denoiser.describe(), + 'blend' under --auto)

    @property
    def gain(self) -> float | None:
        if self.psnr is None or self.psnr_in is None:
            return None
        return self.psnr - self.psnr_in

    def to_dict(self) -> dict:
        d = asdict(self)
        d["gain"] = self.gain
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


@dataclass
class EvalResult:
    rows: list[Row] = field(default_factory=list)
    dataset: str = ""
    convention: str = ""
    mode: str = ""                      # 'denoise' | 'outputs' (scored existing --denoised files)
    device: str = ""
    precision: str = ""
    runtime: str = ""                   # what ran the network: 'torch', 'onnxruntime', 'openvino'
    auto: bool = False
    network: dict | None = None         # without --auto: the one network and options every image ran with
    seconds: float = 0.0
    unmatched: list[str] = field(default_factory=list)
    submission: str | None = None
    written: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if r.error is not None]

    @property
    def taken(self) -> list[tuple[str, dict | None]]:
        """--auto: (path, what ran) of each image denoised."""
        return [(r.path, r.network) for r in self.rows if r.error is None and r.path is not None]

    @property
    def paths(self) -> dict[str, int]:
        """--auto: how many images took each path ('clean', 'light', 'heavy')."""
        return count_paths(self.taken)

    @property
    def scored(self) -> list[Row]:
        return [r for r in self.rows if r.error is None and r.psnr is not None]

    def summary(self) -> dict[str, dict[str, float]]:
        """Mean, std (population, over images), min, max and count of every metric, failed rows excluded."""
        out: dict[str, dict[str, float]] = {}
        for m in METRICS:
            vals = np.array([getattr(r, m) for r in self.rows if r.error is None and getattr(r, m) is not None],
                            np.float64)
            if vals.size:
                with np.errstate(invalid="ignore"):     # an identical image (PSNR inf): std inf - inf = nan
                    std = float(vals.std())
                out[m] = {"mean": float(vals.mean()), "std": std, "min": float(vals.min()),
                          "max": float(vals.max()), "n": int(vals.size)}
        return out

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "rows"}
        d["images"] = [r.to_dict() for r in self.rows]
        d["summary"] = {m: {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                            for k, v in s.items()} for m, s in self.summary().items()}
        d["failed_count"] = len(self.failed)
        d["paths"] = self.paths
        return d


class Progress(Protocol):
    def start(self, total: int) -> None: ...
    def item_start(self, index: int, name: str) -> None: ...
    def tile(self, done: int, total: int) -> None: ...
    def item_done(self, index: int, row: Row) -> None: ...


# ----------------------------------------------------------------------------------------- denoise

class _Fatal(SdapError):
    """Stops the whole run (not just one sample)."""


def denoise_sample(den: Denoiser, noisy: np.ndarray, inf: InferenceConfig, on_tile
                   ) -> tuple[np.ndarray, dict | None, dict | None]:
    """The per-image step (`sdap denoise`'s, with its ``--auto`` decision and what ran), then round to
    the source's sample type (uint8 for 8-bit sources), as a saved output is."""
    try:                            # 8-bit samples in, 8-bit out (rounded per tile, as to_uint8 rounds)
        buf = np.empty_like(noisy) if noisy.dtype == np.uint8 else None
        out, noise, network = denoise_image(den, noisy, inf, on_tile, out=buf)
    except OutOfMemory as e:        # the next image would not fit either: stop the run
        raise _Fatal(str(e)) from None
    return (to_uint8(out) if noisy.dtype == np.uint8 else out), noise, network


def _save(arr: np.ndarray, folder: Path, name: str) -> str:
    path = folder / (Path(name).stem + ".png" if Path(name).suffix else name + ".png")
    images.write_image(path, as_float(arr), png_like(arr), "png")
    return str(path)


# ----------------------------------------------------------------------------------------- outputs

def write_csv(result: EvalResult, path: Path) -> None:
    make_parent(path, "--csv")
    cols = ["name", "psnr_in", "ssim_in", "psnr", "ssim", "gain", "seconds", "output", "error", "path", "sigma",
            "rho1", "rho2"] + [f"network_{k}" for k in NETWORK_KEYS]
    try:
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            for r in result.rows:
                d = r.to_dict()
                d.update({f"network_{k}": (r.network or {}).get(k) for k in NETWORK_KEYS})
                w.writerow(["" if d[c] is None else (f"{d[c]:.6f}" if isinstance(d[c], float) else d[c])
                            for c in cols])
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror or e})") from None


def write_json(result: EvalResult, path: Path) -> None:
    make_parent(path, "--json")
    try:
        path.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror or e})") from None


def _check_save(cfg: EvalConfig) -> None:
    if cfg.save is None:
        return
    save = os.path.realpath(cfg.save)
    for p in (cfg.noisy, cfg.clean, cfg.data_dir):
        if p is not None and os.path.realpath(p) == save:
            raise ConfigError(f"--save {cfg.save} is an input folder; choose another folder")
    try:
        cfg.save.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{cfg.save}: cannot create the --save folder ({e.strerror or e})") from None


# ----------------------------------------------------------------------------------------- steps

def _load_samples(cfg: EvalConfig, result: EvalResult):
    """(samples, their number, (images, blocks) of benchmark blocks or None); unmatched names go to
    ``result``."""
    if cfg.dataset == "dnd":
        samples, total = dnd_samples(cfg)
        return samples, total, None
    samples, result.unmatched, shape = eval_samples(cfg)
    if cfg.limit is not None:
        samples = samples[:cfg.limit]
    return samples, len(samples), shape


def _load_denoiser(cfg: EvalConfig, samples, result: EvalResult) -> Denoiser:
    """The denoiser (``--adapt``: fine-tuned on the noisy samples first; the CPU default on ONNX Runtime, as
    `sdap denoise` runs it, ``inference.runtime``); its facts go to ``result``."""
    den, _ = runtime_denoiser(cfg.inference, cfg.weights)
    if den is None:
        device = inference_device(cfg.inference)
        loaded = choose_weights(cfg.weights, cfg.inference, device)
        if cfg.inference.adapt:
            from ..training.adapt import adapt_weights          # training (and scipy) only for --adapt

            adapt_weights(loaded, cfg.inference, [as_float(s.noisy()) for s in samples if s.noisy is not None],
                          device)
        den = build_denoiser(loaded, cfg.inference, device, given=cfg.weights is not None)
    result.device, result.precision = str(den.device), den.precision
    result.runtime = getattr(getattr(den, "heavy", den), "runtime", "torch")
    result.auto = auto_active(cfg.inference)
    result.network = None if result.auto else den.describe()
    return den


def _evaluate_sample(s: Sample, den: Denoiser | None, cfg: EvalConfig, progress: Progress | None):
    """One sample's row, and its (denoised, noisy, clean) arrays; a failure becomes ``row.error``."""
    row = Row(s.name)
    ts = time.perf_counter()
    out = noisy = clean = None
    try:
        noisy = s.noisy() if s.noisy is not None else None
        if s.denoised is not None:
            out = s.denoised()
        else:
            out, noise, row.network = denoise_sample(den, noisy, cfg.inference,
                                                     progress.tile if progress is not None else None)
            for k, v in (noise or {}).items():
                setattr(row, k, v)
        row.seconds = time.perf_counter() - ts
        if s.clean is not None:
            clean = s.clean()
            row.psnr, row.ssim = psnr_ssim(out, clean, cfg.metric_convention)
            if noisy is not None:
                row.psnr_in, row.ssim_in = psnr_ssim(noisy, clean, cfg.metric_convention)
        if cfg.save is not None:
            row.output = _save(out, cfg.save, s.name)
    except _Fatal:
        raise
    except SdapError as e:
        row.error = str(e)
    except (ValueError, OSError) as e:
        row.error = f"{s.name}: {first_line(e)}"
    except Exception as e:                                  # noqa: BLE001 - the run goes on
        row.error = f"{s.name}: {type(e).__name__}: {first_line(e)}"
    return row, (out, noisy, clean)


class _Sinks:
    """Where good samples go besides the rows: the SIDD Kaggle array, the DND bundle (written image by
    image), and the best and worst images by PSNR gain for the figure."""

    def __init__(self, cfg: EvalConfig, shape: tuple[int, int] | None) -> None:
        self.cfg, self.shape = cfg, shape
        self.kaggle = None          # (images, blocks, H, W, 3) uint8, allocated at the first block
        self.dnd_pending: dict[tuple[int, int], np.ndarray] = {}
        self.best: tuple[float, Row, dict] | None = None
        self.worst: tuple[float, Row, dict] | None = None

    def add(self, s: Sample, row: Row, out: np.ndarray, noisy: np.ndarray | None, clean: np.ndarray | None) -> None:
        cfg = self.cfg
        if cfg.submit is not None and cfg.dataset == "sidd-bench":
            self._kaggle_block(s, row, out)
        if cfg.dataset == "dnd" and cfg.submit is not None:
            if self.dnd_pending and next(iter(self.dnd_pending))[0] != s.index[0]:
                write_dnd_bundle(self.dnd_pending, cfg.submit)      # one image done: write it, free memory
                self.dnd_pending = {}
            self.dnd_pending[s.index] = as_float(out)
        if cfg.figure is not None and row.psnr is not None:
            self._figure_pick(row, out, noisy, clean)

    def _kaggle_block(self, s: Sample, row: Row, out: np.ndarray) -> None:
        i, j = s.index
        if self.kaggle is None:
            self.kaggle = np.zeros((*self.shape, *out.shape), np.uint8)
        if out.shape != self.kaggle.shape[2:]:
            row.error = f"{s.name}: denoised block has shape {out.shape}, expected {self.kaggle.shape[2:]}"
        else:
            self.kaggle[i, j] = to_uint8(as_float(out)) if out.dtype != np.uint8 else out

    def _figure_pick(self, row: Row, out: np.ndarray, noisy: np.ndarray | None, clean: np.ndarray) -> None:
        best, worst = self.best, self.worst
        score = row.gain if row.gain is not None else row.psnr
        if best is None or score > best[0] or worst is None or score < worst[0]:
            crops = {"denoised": crop(out), "clean": crop(clean)}
            if noisy is not None:
                crops["noisy"] = crop(noisy)
            if best is None or score > best[0]:
                self.best = (score, row, crops)
            if worst is None or score < worst[0]:
                self.worst = (score, row, crops)

    def finish(self, result: EvalResult) -> None:
        """Write the submission (every block must have succeeded) and the figure."""
        cfg = self.cfg
        if cfg.submit is not None:
            failed = len(result.failed)
            if failed:
                raise SdapError(f"submission incomplete: {failed} of {len(result.rows)} blocks failed "
                                f"(first: {result.failed[0].error})")
            if self.kaggle is not None:
                make_parent(cfg.submit, "--submit")
                write_sidd_kaggle_csv(self.kaggle, cfg.submit)
                result.submission = str(cfg.submit)
            elif self.dnd_pending:
                write_dnd_bundle(self.dnd_pending, cfg.submit)
                result.submission = str(cfg.submit)
        if cfg.figure is not None and self.best is not None:
            entries = [("best", self.best[1], self.best[2])]
            if self.worst[1] is not self.best[1]:
                entries.append(("worst", self.worst[1], self.worst[2]))
            make_figure(entries, cfg.figure)
            result.written.append(str(cfg.figure))


def _write_tables(cfg: EvalConfig, result: EvalResult) -> None:
    if cfg.csv is not None:
        write_csv(result, cfg.csv)
        result.written.append(str(cfg.csv))
    if cfg.json_path is not None:
        result.written.append(str(cfg.json_path))
        write_json(result, cfg.json_path)


# ----------------------------------------------------------------------------------------- run

def run(cfg: EvalConfig, progress: Progress | None = None) -> EvalResult:
    """Evaluate every sample of ``cfg``; a failing sample becomes a row with ``error`` set.

    Raises:
        SdapError: for problems that stop everything (missing dataset files, weights, device, an
            incomplete submission, unwritable outputs).
    """
    t0 = time.perf_counter()
    if cfg.dataset != "folders" and cfg.data_dir is None:           # $SDAP_DATA, then the current folder
        cfg.data_dir = dataset_dir(cfg.dataset, None)
    reuse_freed_memory()                # tiles reuse the memory of the last one (inference.memory)
    result = EvalResult(dataset=cfg.dataset, convention=cfg.metric_convention,
                        mode="outputs" if cfg.denoised is not None else "denoise")
    _check_save(cfg)
    samples, total, shape = _load_samples(cfg, result)
    den = _load_denoiser(cfg, samples, result) if cfg.denoised is None else None
    sinks = _Sinks(cfg, shape)
    if progress is not None:
        progress.start(total)
    for idx, s in enumerate(samples):
        if progress is not None:
            progress.item_start(idx, s.name)
        row, (out, noisy, clean) = _evaluate_sample(s, den, cfg, progress)
        result.rows.append(row)
        if row.error is None:
            sinks.add(s, row, out, noisy, clean)
        if progress is not None:
            progress.item_done(idx, row)
    sinks.finish(result)
    result.seconds = time.perf_counter() - t0
    _write_tables(cfg, result)
    return result
