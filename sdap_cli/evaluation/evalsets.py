"""What `sdap evaluate` reads: samples (a name plus lazy loaders) from paired folders, the SIDD
``.mat`` blocks or the DND bundle.

Pairing (``--noisy/--clean``, ``--denoised/--clean``) is ``io.folders.pair_key``: names equal after
dropping the extension, the usual noisy/clean tags and ``_denoised``; all-digit names compare as numbers.
:func:`load_pairs` reads the same folders (or the SIDD validation ``.mat`` files) into memory for
validation during training.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import EvalConfig
from ..errors import InputError
from ..io import images
from ..io.folders import index_folder, pair_key, paired_subfolders
from ..io.images import as_float
from .submissions import DND_URL, SIDD_URL, load_dnd, load_sidd_blocks

__all__ = ["Sample", "Loader", "eval_samples", "dnd_samples", "read_sample", "PairedSet", "load_pairs",
           "load_paired_folders"]

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


def _sort_key(name: str):
    k = pair_key(name)
    return (0, int(k), name) if k.isdigit() else (1, 0, name)


def _folder_samples(noisy: Path | None, clean: Path, denoised: Path | None
                    ) -> tuple[list[Sample], list[str]]:
    mixed = noisy is not None and noisy.resolve() == clean.resolve()     # e.g. CC's x_real.png + x_mean.png
    cl = index_folder(clean, "clean", gt=True if mixed else None)
    den = index_folder(denoised, "denoised") if denoised is not None else None
    primary, role = ((index_folder(noisy, "noisy", gt=False if mixed else None), "noisy") if noisy is not None
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
    den = index_folder(denoised, "denoised") if denoised is not None else None
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


DATASET_FILES = {"sidd-val": ("ValidationNoisyBlocksSrgb.mat", "ValidationGtBlocksSrgb.mat"),
                 "sidd-bench": ("BenchmarkNoisyBlocksSrgb.mat",),
                 "dnd": ("info.mat", "images_srgb")}
"""The files that make a folder hold each named dataset."""
DATA_ENV = "SDAP_DATA"


def dataset_dir(dataset: str, given: Path | None, env: dict | None = None, cwd: Path | None = None) -> Path:
    """The folder of a named dataset's files: ``given`` (``--data-dir``) if set; else the first of
    ``$SDAP_DATA`` and the current folder, each itself or one of its sub-folders (in name order), that
    holds every file of ``DATASET_FILES[dataset]``.

    Raises:
        InputError: found nowhere; the message names the files, where they come from and where it looked.
    """
    if given is not None:
        return given
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    need = DATASET_FILES[dataset]
    roots = ([Path(env[DATA_ENV])] if env.get(DATA_ENV) else []) + [cwd]
    for root in roots:
        try:
            subs = sorted(p for p in root.iterdir() if p.is_dir())
        except OSError:
            subs = []
        for d in [root, *subs]:
            if all((d / n).exists() for n in need):
                return d
    where = (f"${DATA_ENV} ({env[DATA_ENV]}) or " if env.get(DATA_ENV) else f"${DATA_ENV} (not set) or ") + \
        f"the current folder ({cwd})"
    source = DND_URL if dataset == "dnd" else SIDD_URL
    raise InputError(f"--dataset {dataset}: {' and '.join(need)} not found in {where} or their sub-folders; "
                     f"download them from {source} and pass their folder with --data-dir or set {DATA_ENV}")


def eval_samples(cfg: EvalConfig) -> tuple[list[Sample], list[str], tuple[int, int] | None]:
    """(samples, unmatched file names, (images, blocks) for benchmark sets)."""
    d = cfg.dataset
    if d == "folders":
        if cfg.data_dir is not None:
            root = cfg.data_dir
            if not root.is_dir():
                raise InputError(f"{root}: no such folder (--data-dir)")
            pair = paired_subfolders(root)
            if pair is not None:
                s, u = _folder_samples(*pair, cfg.denoised)
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
    den = index_folder(cfg.denoised, "denoised") if cfg.denoised is not None else None
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


@dataclass
class PairedSet:
    """Validation pairs in memory: names, noisy and clean float32 ``(H, W, 3)`` arrays in [0, 1]."""

    names: list[str]
    noisy: list[np.ndarray]
    clean: list[np.ndarray]

    def head(self, n: int | None) -> "PairedSet":
        """The first ``n`` pairs (all for None)."""
        return self if not n else PairedSet(self.names[:n], self.noisy[:n], self.clean[:n])


def load_pairs(path: str | Path) -> PairedSet:
    """A validation set: a folder with noisy/clean sub-folders (paired as `sdap evaluate` pairs them), or
    the folder holding the SIDD validation .mat files (blocks named by their flat index i * 32 + j)."""
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    if (root / "ValidationNoisyBlocksSrgb.mat").is_file():
        noisy = load_sidd_blocks(root / "ValidationNoisyBlocksSrgb.mat", "ValidationNoisyBlocksSrgb")
        clean = load_sidd_blocks(root / "ValidationGtBlocksSrgb.mat", "ValidationGtBlocksSrgb")
        noisy, clean = noisy.reshape(-1, *noisy.shape[2:]), clean.reshape(-1, *clean.shape[2:])
        return PairedSet([str(i) for i in range(len(noisy))], [a.astype(np.float32) / 255 for a in noisy],
                         [a.astype(np.float32) / 255 for a in clean])
    pair = paired_subfolders(root)
    if pair is None:
        raise InputError(f"{root}: expected noisy/clean sub-folders (e.g. SIDD_noisy and SIDD_clean) "
                         "or ValidationNoisyBlocksSrgb.mat")
    return load_paired_folders(*pair)


def load_paired_folders(noisy: str | Path, clean: str | Path) -> PairedSet:
    """The pairs of a noisy and a clean folder (paired as `sdap evaluate` pairs them) in memory."""
    samples, _ = _folder_samples(Path(noisy), Path(clean), None)
    return PairedSet([s.name for s in samples], [as_float(s.noisy()) for s in samples],
                     [as_float(s.clean()) for s in samples])
