"""`sdap evaluate`: PSNR/SSIM of a denoiser (or of existing outputs) against clean references, and
benchmark submissions (SIDD Kaggle CSV, DND sRGB bundle).

Data flows one way: a list of samples (name + lazy loaders) -> denoise or read the output -> round to
the source's bit depth (as a saved output would be) -> metrics -> rows, outputs, figure, submission.
One bad sample becomes a failed row with a one-line reason; the rest go on.

Pairing rule for folders (``--noisy/--clean``, ``--denoised/--clean``): files pair when their names are
equal after dropping the extension, the prefixes ``NOISY_``/``GT_``/``noisy_``/``clean_``/``gt_``, the
suffixes ``_real``/``_mean``/``_noisy``/``_clean``/``_gt``/``_noise`` (SIDD and Nam/CC naming) and, for
outputs, ``_denoised``; all-digit names compare as numbers (``0034`` = ``34``).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ..config import DenoiseConfig, EvalConfig, InferenceConfig
from ..core import images
from ..core.datasets import _GT_NAME, _pair_key
from ..core.inference import Denoiser, StudentDenoiser, is_oom
from ..core.metrics import psnr_ssim, to_uint8
from ..core.submissions import load_dnd, load_sidd_blocks, write_dnd_bundle, write_sidd_kaggle_csv
from ..errors import ConfigError, InputError, OutputError, SdapError

__all__ = ["run", "Row", "EvalResult", "Sample", "pair_key", "build_denoiser_for", "METRICS",
           "CONVENTION_NOTES"]

METRICS = ("psnr_in", "ssim_in", "psnr", "ssim", "gain", "seconds")
CONVENTION_NOTES = {
    "sdap": "sdap: uint8 RGB, PSNR over the whole array (range 255), SSIM Gaussian sigma 1.5, "
            "no sample covariance, channel mean",
    "apbsn": "apbsn: float clipped to 0-255, PSNR range 255, SSIM 7x7 uniform window, channel mean",
    "y": "y: BT.601 luma of uint8 RGB, PSNR range 255, SSIM Gaussian sigma 1.5",
}
# sub-folder names tried under --data-dir for --dataset folders (as `sdap train --val` does)
SUBFOLDERS = (("sidd_noisy", "sidd_clean"), ("noisy", "clean"), ("noisy_images", "gt_images"),
              ("noisy", "gt"), ("input", "target"))
FIGURE_CROP = 256


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
    weights: str = ""
    device: str = ""
    precision: str = ""
    refine: str = ""
    strength: float = 1.0
    pd: int = 2
    seconds: float = 0.0
    unmatched: list[str] = field(default_factory=list)
    submission: str | None = None
    written: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if r.error is not None]

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
                out[m] = {"mean": float(vals.mean()), "std": float(vals.std()), "min": float(vals.min()),
                          "max": float(vals.max()), "n": int(vals.size)}
        return out

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "rows"}
        d["images"] = [r.to_dict() for r in self.rows]
        d["summary"] = {m: {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                            for k, v in s.items()} for m, s in self.summary().items()}
        d["failed_count"] = len(self.failed)
        return d


class Progress(Protocol):
    def start(self, total: int) -> None: ...
    def item_start(self, index: int, name: str) -> None: ...
    def tile(self, done: int, total: int) -> None: ...
    def item_done(self, index: int, row: Row) -> None: ...


Loader = Callable[[], np.ndarray]


@dataclass
class Sample:
    """One image to evaluate; loaders return ``(H, W, 3)`` uint8 (8-bit sources) or float32 in [0, 1]."""

    name: str
    noisy: Loader | None = None
    clean: Loader | None = None
    denoised: Loader | None = None
    index: tuple[int, int] | None = None          # (image, block) of benchmark blocks, 0-based


# ----------------------------------------------------------------------------------------- sources

def pair_key(name: str) -> str:
    """The pairing key of a file name (see the module docstring).

    Example:
        >>> [pair_key(n) for n in ("NOISY_SRGB_010.PNG", "GT_SRGB_010.PNG", "a_real.png", "a_mean.JPG",
        ...                        "0034.png", "34_denoised.png")]
        ['SRGB_010', 'SRGB_010', 'a', 'a', '34', '34']
    """
    stem = re.sub(r"_denoised$", "", Path(name).stem, flags=re.IGNORECASE)
    key = _pair_key(stem + ".x")
    return str(int(key)) if key.isdigit() else key


def _read(path: Path) -> np.ndarray:
    img = images.read_image(path)
    if img.dtype == np.uint8:
        return np.rint(img.rgb * 255).astype(np.uint8)
    return img.rgb


def _folder_index(folder: Path, role: str, gt: bool | None = None) -> dict[str, Path]:
    """Images of ``folder`` by pairing key; ``gt`` True/False keeps only / drops ground-truth names
    (``GT_*``, ``*_mean.*``, ``*clean*``, ``*_gt.*``), for noisy and clean files in one folder."""
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder (--{role})")
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if gt is not None and bool(_GT_NAME.search(p.name)) != gt:
            continue
        if p.is_file() and images.is_image_path(p) and not p.name.startswith("."):
            out.setdefault(pair_key(p.name), p)
    if not out:
        raise InputError(f"{folder}: no images in this folder (--{role})")
    return out


def _sort_key(name: str):
    k = pair_key(name)
    return (0, int(k), name) if k.isdigit() else (1, 0, name)


def _folder_samples(noisy: Path | None, clean: Path, denoised: Path | None
                    ) -> tuple[list[Sample], list[str]]:
    mixed = noisy is not None and noisy.resolve() == clean.resolve()     # e.g. CC's x_real.png + x_mean.png
    cl = _folder_index(clean, "clean", gt=True if mixed else None)
    den = _folder_index(denoised, "denoised") if denoised is not None else None
    primary, role = ((_folder_index(noisy, "noisy", gt=False if mixed else None), "noisy") if noisy is not None
                     else (den, "denoised"))
    samples, unmatched = [], []
    for key, p in sorted(primary.items(), key=lambda kv: _sort_key(kv[1].name)):
        if key not in cl:
            unmatched.append(p.name)
            continue
        d_loader = None
        if den is not None:
            d = den.get(key)
            d_loader = (lambda d=d: _read(d)) if d is not None else _missing(denoised, p.name)
        samples.append(Sample(p.name, noisy=(lambda p=p: _read(p)) if noisy is not None else None,
                              clean=lambda c=cl[key]: _read(c), denoised=d_loader))
    if not samples:
        other = noisy if noisy is not None else denoised
        raise InputError(f"{other}: no image in this folder has a partner in {clean} (--{role} / --clean "
                         "pair by name: identical, or equal after dropping NOISY_/GT_ and _real/_mean/"
                         "_noisy/_clean/_gt/_denoised)")
    return samples, unmatched


def _missing(folder: Path, name: str) -> Loader:
    def fail() -> np.ndarray:
        raise InputError(f"{folder}: no denoised output for {name} (pairing by name, see --help)")
    return fail


def _block_samples(noisy: np.ndarray | None, clean: np.ndarray | None, denoised: Path | None,
                   shape: tuple[int, int]) -> list[Sample]:
    """Samples for SIDD blocks ``(images, blocks, H, W, 3)``; name = flat index ``i * blocks + j``."""
    den = _folder_index(denoised, "denoised") if denoised is not None else None
    n_img, n_blk = shape
    out = []
    for i in range(n_img):
        for j in range(n_blk):
            name = str(i * n_blk + j)
            d_loader = None
            if den is not None:
                d = den.get(name)
                d_loader = (lambda d=d: _read(d)) if d is not None else _missing(denoised, name)
            out.append(Sample(name, noisy=(lambda i=i, j=j: noisy[i, j]) if noisy is not None else None,
                              clean=(lambda i=i, j=j: clean[i, j]) if clean is not None else None,
                              denoised=d_loader, index=(i, j)))
    return out


def _samples(cfg: EvalConfig) -> tuple[list[Sample], list[str], tuple[int, int] | None]:
    """(samples, unmatched file names, (images, blocks) for benchmark sets)."""
    d = cfg.dataset
    if d == "folders":
        if cfg.data_dir is not None:
            root = cfg.data_dir
            if not root.is_dir():
                raise InputError(f"{root}: no such folder (--data-dir)")
            subs = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
            for n, c in SUBFOLDERS:
                if n in subs and c in subs:
                    s, u = _folder_samples(subs[n], subs[c], cfg.denoised)
                    return s, u, None
            hint = (" (it holds the SIDD validation .mat files: use --dataset sidd-val)"
                    if (root / "ValidationNoisyBlocksSrgb.mat").is_file() else "")
            raise InputError(f"{root}: expected noisy/clean sub-folders (SIDD_noisy + SIDD_clean, noisy + "
                             f"clean, Noisy_Images + GT_Images, noisy + gt, input + target){hint}")
        s, u = _folder_samples(cfg.noisy, cfg.clean, cfg.denoised)
        return s, u, None
    root = cfg.data_dir
    if not root.is_dir():
        raise InputError(f"{root}: no such folder (--data-dir)")
    if d == "sidd-val":
        noisy_mat = root / "ValidationNoisyBlocksSrgb.mat"
        # with --denoised the noisy blocks are optional (only for the input metrics)
        noisy = load_sidd_blocks(noisy_mat, "ValidationNoisyBlocksSrgb") \
            if cfg.denoised is None or noisy_mat.is_file() else None
        clean = load_sidd_blocks(root / "ValidationGtBlocksSrgb.mat", "ValidationGtBlocksSrgb")
        if noisy is not None and noisy.shape != clean.shape:
            raise InputError(f"{root}: noisy blocks {noisy.shape} and clean blocks {clean.shape} differ")
        return _block_samples(noisy, clean, cfg.denoised, clean.shape[:2]), [], clean.shape[:2]
    if d == "sidd-bench":
        noisy = load_sidd_blocks(root / "BenchmarkNoisyBlocksSrgb.mat", "BenchmarkNoisyBlocksSrgb")
        return _block_samples(noisy, None, cfg.denoised, noisy.shape[:2]), [], noisy.shape[:2]
    # dnd: blocks are read image by image; samples are created lazily by _dnd_samples
    return [], [], None


def _dnd_samples(cfg: EvalConfig):
    """DND blocks as samples, produced lazily (each image file is read once)."""
    dnd = load_dnd(cfg.data_dir)
    den = _folder_index(cfg.denoised, "denoised") if cfg.denoised is not None else None
    total = sum(dnd.blocks_per_image(i) for i in range(dnd.n_images))

    def gen():
        for i, k, block in dnd.iter_blocks(cfg.limit):
            name = "%04d_%02d" % (i + 1, k + 1)
            d_loader = None
            if den is not None:
                d = den.get(pair_key(name))
                d_loader = (lambda d=d: _read(d)) if d is not None else _missing(cfg.denoised, name)
            yield Sample(name, noisy=lambda b=block: b, denoised=d_loader, index=(i, k))

    return gen(), min(total, cfg.limit) if cfg.limit else total


# ----------------------------------------------------------------------------------------- denoise

def build_denoiser_for(weights: Path | None, inference: InferenceConfig, adapt_images: list | None = None):
    """A :class:`Denoiser` and its loaded weights, exactly as `sdap denoise` builds them (``--adapt``:
    fine-tuned on ``adapt_images`` first)."""
    from .denoise import build_denoiser

    return build_denoiser(DenoiseConfig(inputs=["-"], weights=weights, inference=inference), adapt_images)


def _as_float(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)


class _Fatal(SdapError):
    """Stops the whole run (not just one sample)."""


def _denoise(den: Denoiser, noisy: np.ndarray, inf: InferenceConfig, on_tile) -> np.ndarray:
    """Denoise, then round to the source's sample type (uint8 for 8-bit sources), as a saved output is."""
    try:
        out = den.denoise(_as_float(noisy), tile=inf.tile, overlap=inf.tile_overlap, on_tile=on_tile)
    except Exception as e:                                  # noqa: BLE001
        if is_oom(e):
            raise _Fatal("out of memory even at the smallest tile; try --device cpu or --precision bf16") \
                from None
        raise
    return to_uint8(out) if noisy.dtype == np.uint8 else out


def _like(arr: np.ndarray) -> images.Image:
    dt = np.uint8 if arr.dtype == np.uint8 else np.uint16
    return images.Image(rgb=_as_float(arr), dtype=dt, channels=3, alpha=None, format="png")


def _save(arr: np.ndarray, folder: Path, name: str) -> str:
    path = folder / (Path(name).stem + ".png" if Path(name).suffix else name + ".png")
    images.write_image(path, _as_float(arr), _like(arr), "png")
    return str(path)


# ----------------------------------------------------------------------------------------- figure

def _crop(x: np.ndarray, size: int = FIGURE_CROP) -> np.ndarray:
    h, w = x.shape[:2]
    y0, x0 = max((h - size) // 2, 0), max((w - size) // 2, 0)
    return to_uint8(_as_float(x[y0:y0 + size, x0:x0 + size]))


def _panel(img: np.ndarray, label: str, band: int = 22) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    out = np.full((h + band, max(w, 8), 3), 24, np.uint8)
    out[band:, :w] = img
    scale = 0.42 if w >= 200 else 0.32
    cv2.putText(out, label, (4, band - 7), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _hstack(panels: list[np.ndarray], gap: int = 4) -> np.ndarray:
    h = max(p.shape[0] for p in panels)
    w = sum(p.shape[1] for p in panels) + gap * (len(panels) - 1)
    out = np.full((h, w, 3), 255, np.uint8)
    x = 0
    for p in panels:
        out[:p.shape[0], x:x + p.shape[1]] = p
        x += p.shape[1] + gap
    return out


def make_figure(entries: list[tuple[str, Row, dict[str, np.ndarray]]], path: Path) -> None:
    """Write a PNG: one row per entry (title, row, {'noisy','denoised','clean': crop}), panels
    noisy | denoised | clean with their PSNR."""
    import cv2

    rows = []
    for title, row, crops in entries:
        panels = []
        if "noisy" in crops:
            panels.append(_panel(crops["noisy"], f"noisy {row.psnr_in:.2f} dB"))
        panels.append(_panel(crops["denoised"], f"denoised {row.psnr:.2f} dB"))
        panels.append(_panel(crops["clean"], "clean"))
        body = _hstack(panels)
        head = np.full((24, body.shape[1], 3), 255, np.uint8)
        gain = f" ({row.gain:+.2f} dB)" if row.gain is not None else ""
        cv2.putText(head, f"{title}: {row.name}{gain}", (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)
        rows.append(np.vstack([head, body]))
    w = max(r.shape[1] for r in rows)
    fig = np.vstack([np.pad(r, ((0, 6), (0, w - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    _mkparent(path, "--figure")
    images.write_image(path, fig.astype(np.float32) / 255.0, _like(fig), images.format_for_suffix(path.suffix)
                       if path.suffix else "png")


# ----------------------------------------------------------------------------------------- outputs

def _mkparent(path: Path, option: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{path.parent}: cannot create the folder for {option} ({e.strerror or e})") from None


def write_csv(result: EvalResult, path: Path) -> None:
    _mkparent(path, "--csv")
    cols = ["name", "psnr_in", "ssim_in", "psnr", "ssim", "gain", "seconds", "output", "error"]
    try:
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            for r in result.rows:
                d = r.to_dict()
                w.writerow(["" if d[c] is None else (f"{d[c]:.6f}" if isinstance(d[c], float) else d[c])
                            for c in cols])
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror or e})") from None


def write_json(result: EvalResult, path: Path) -> None:
    _mkparent(path, "--json")
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


# ----------------------------------------------------------------------------------------- run

def run(cfg: EvalConfig, progress: Progress | None = None) -> EvalResult:
    """Evaluate every sample of ``cfg``; a failing sample becomes a row with ``error`` set.

    Raises:
        SdapError: for problems that stop everything (missing dataset files, weights, device, an
            incomplete submission, unwritable outputs).
    """
    t0 = time.perf_counter()
    result = EvalResult(dataset=cfg.dataset, convention=cfg.convention,
                        mode="outputs" if cfg.denoised is not None else "denoise")
    _check_save(cfg)
    if cfg.dataset == "dnd":
        samples, total = _dnd_samples(cfg)
        shape = None
    else:
        samples, result.unmatched, shape = _samples(cfg)
        if cfg.limit is not None:
            samples = samples[:cfg.limit]
        total = len(samples)
    den = None
    if cfg.denoised is None:
        adapt_images = [_as_float(s.noisy()) for s in samples if s.noisy is not None] if cfg.inference.adapt \
            else None
        den, loaded = build_denoiser_for(cfg.weights, cfg.inference, adapt_images)
        result.weights, result.device, result.precision = str(loaded.path), str(den.device), den.precision
        result.refine = "student" if isinstance(den, StudentDenoiser) else cfg.inference.refine
        result.strength = cfg.inference.strength
        result.pd = 1 if isinstance(den, StudentDenoiser) else cfg.inference.pd
    kaggle = None                    # (images, blocks, H, W, 3) uint8, allocated at the first block
    dnd_pending: dict[tuple[int, int], np.ndarray] = {}
    best: tuple[float, Row, dict] | None = None
    worst: tuple[float, Row, dict] | None = None
    if progress is not None:
        progress.start(total)
    for idx, s in enumerate(samples):
        if progress is not None:
            progress.item_start(idx, s.name)
        row = Row(s.name)
        ts = time.perf_counter()
        out = noisy = clean = None
        try:
            noisy = s.noisy() if s.noisy is not None else None
            if s.denoised is not None:
                out = s.denoised()
            else:
                out = _denoise(den, noisy, cfg.inference, progress.tile if progress is not None else None)
            row.seconds = time.perf_counter() - ts
            if s.clean is not None:
                clean = s.clean()
                row.psnr, row.ssim = psnr_ssim(out, clean, cfg.convention)
                if noisy is not None:
                    row.psnr_in, row.ssim_in = psnr_ssim(noisy, clean, cfg.convention)
            if cfg.save is not None:
                row.output = _save(out, cfg.save, s.name)
        except _Fatal:
            raise
        except SdapError as e:
            row.error = str(e)
        except (ValueError, OSError) as e:
            row.error = f"{s.name}: {str(e).splitlines()[0][:200] if str(e) else type(e).__name__}"
        except Exception as e:                                  # noqa: BLE001 - the run goes on
            msg = str(e).splitlines()[0][:200] if str(e) else ""
            row.error = f"{s.name}: {type(e).__name__}: {msg}"
        result.rows.append(row)
        if row.error is None:
            if cfg.submit is not None and cfg.dataset == "sidd-bench":
                i, j = s.index
                if kaggle is None:
                    kaggle = np.zeros((*shape, *out.shape), np.uint8)
                if out.shape != kaggle.shape[2:]:
                    row.error = f"{s.name}: denoised block has shape {out.shape}, expected {kaggle.shape[2:]}"
                else:
                    kaggle[i, j] = to_uint8(_as_float(out)) if out.dtype != np.uint8 else out
            if cfg.dataset == "dnd" and cfg.submit is not None:
                if dnd_pending and next(iter(dnd_pending))[0] != s.index[0]:
                    write_dnd_bundle(dnd_pending, cfg.submit)      # one image done: write it, free memory
                    dnd_pending = {}
                dnd_pending[s.index] = _as_float(out)
            if cfg.figure is not None and row.psnr is not None:
                score = row.gain if row.gain is not None else row.psnr
                if best is None or score > best[0] or worst is None or score < worst[0]:
                    crops = {"denoised": _crop(out), "clean": _crop(clean)}
                    if noisy is not None:
                        crops["noisy"] = _crop(noisy)
                    if best is None or score > best[0]:
                        best = (score, row, crops)
                    if worst is None or score < worst[0]:
                        worst = (score, row, crops)
        if progress is not None:
            progress.item_done(idx, row)
    if cfg.submit is not None:
        failed = len(result.failed)
        if failed:
            raise SdapError(f"submission incomplete: {failed} of {len(result.rows)} blocks failed "
                            f"(first: {result.failed[0].error})")
        if kaggle is not None:
            _mkparent(cfg.submit, "--submit")
            write_sidd_kaggle_csv(kaggle, cfg.submit)
            result.submission = str(cfg.submit)
        elif dnd_pending:
            write_dnd_bundle(dnd_pending, cfg.submit)
            result.submission = str(cfg.submit)
    if cfg.figure is not None and best is not None:
        entries = [("best", best[1], best[2])]
        if worst[1] is not best[1]:
            entries.append(("worst", worst[1], worst[2]))
        make_figure(entries, cfg.figure)
        result.written.append(str(cfg.figure))
    result.seconds = time.perf_counter() - t0
    if cfg.csv is not None:
        write_csv(result, cfg.csv)
        result.written.append(str(cfg.csv))
    if cfg.json_path is not None:
        result.written.append(str(cfg.json_path))
        write_json(result, cfg.json_path)
    return result
