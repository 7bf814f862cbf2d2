"""What `sdap evaluate` reads: samples (a name plus lazy loaders) from paired folders, the SIDD
``.mat`` blocks or the DND bundle.

Pairing (``--noisy/--clean``, ``--denoised/--clean``) is ``datasets.pair_key``: names equal after
dropping the extension, the usual noisy/clean tags and ``_denoised``; all-digit names compare as numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import EvalConfig
from ..errors import InputError
from . import images
from .datasets import VALIDATION_SUBFOLDERS, is_ground_truth, pair_key
from .submissions import load_dnd, load_sidd_blocks

__all__ = ["Sample", "Loader", "eval_samples", "dnd_samples", "read_sample"]

Loader = Callable[[], np.ndarray]


@dataclass
class Sample:
    """One image to evaluate; loaders return ``(H, W, 3)`` uint8 (8-bit sources) or float32 in [0, 1]."""

    name: str
    noisy: Loader | None = None
    clean: Loader | None = None
    denoised: Loader | None = None
    index: tuple[int, int] | None = None          # (image, block) of benchmark blocks, 0-based


def read_sample(path: Path) -> np.ndarray:
    """An image file as uint8 ``(H, W, 3)`` (8-bit sources) or float32 in [0, 1]."""
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
        if gt is not None and is_ground_truth(p.name) != gt:
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
            d_loader = (lambda d=d: read_sample(d)) if d is not None else _missing(denoised, p.name)
        samples.append(Sample(p.name, noisy=(lambda p=p: read_sample(p)) if noisy is not None else None,
                              clean=lambda c=cl[key]: read_sample(c), denoised=d_loader))
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
                d_loader = (lambda d=d: read_sample(d)) if d is not None else _missing(denoised, name)
            out.append(Sample(name, noisy=(lambda i=i, j=j: noisy[i, j]) if noisy is not None else None,
                              clean=(lambda i=i, j=j: clean[i, j]) if clean is not None else None,
                              denoised=d_loader, index=(i, j)))
    return out


def eval_samples(cfg: EvalConfig) -> tuple[list[Sample], list[str], tuple[int, int] | None]:
    """(samples, unmatched file names, (images, blocks) for benchmark sets)."""
    d = cfg.dataset
    if d == "folders":
        if cfg.data_dir is not None:
            root = cfg.data_dir
            if not root.is_dir():
                raise InputError(f"{root}: no such folder (--data-dir)")
            subs = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
            for n, c in VALIDATION_SUBFOLDERS:
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
    # dnd: blocks are read image by image; samples are created lazily by dnd_samples
    return [], [], None


def dnd_samples(cfg: EvalConfig):
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
                d_loader = (lambda d=d: read_sample(d)) if d is not None else _missing(cfg.denoised, name)
            yield Sample(name, noisy=lambda b=block: b, denoised=d_loader, index=(i, k))

    return gen(), min(total, cfg.limit) if cfg.limit else total
