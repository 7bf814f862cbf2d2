"""Folders of images: the one pairing rule (noisy <-> clean <-> denoised by name), ground-truth names,
the noisy/clean sub-folder layouts, and the search for noisy training images.

Used by `sdap evaluate` (``evaluation.evalsets``), validation during training (the same reader) and
the training data (``training.datasets``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import InputError
from .images import is_image_path

__all__ = ["is_ground_truth", "pair_key", "PAIRED_SUBFOLDERS", "paired_subfolders", "index_folder",
           "find_images", "find_noisy_images"]

_GT_NAME = re.compile(r"(^gt_|_gt[._]|_mean\.|clean)", re.IGNORECASE)
PAIRED_SUBFOLDERS = (("sidd_noisy", "sidd_clean"), ("noisy", "clean"), ("noisy_images", "gt_images"),
                     ("noisy", "gt"), ("input", "target"))
"""noisy/clean sub-folder names (lower case) of a validation or evaluation folder, in the order tried."""


def is_ground_truth(name: str) -> bool:
    """Whether a file name is a clean reference by the usual dataset naming: SIDD ``GT_*``, Nam/CC
    ``*_mean.*``, names containing ``clean`` or ``_gt``.

        >>> is_ground_truth("GT_SRGB_010.PNG"), is_ground_truth("a_mean.png"), is_ground_truth("NOISY_1.png")
        (True, True, False)
    """
    return bool(_GT_NAME.search(name))


def pair_key(name: str) -> str:
    """The pairing key of a file name: the stem without the usual noisy/clean tags (the prefixes
    ``NOISY_``, ``GT_``, ``noisy_``, ``clean_``, ``gt_``; the suffixes ``_real``, ``_mean``, ``_noisy``,
    ``_clean``, ``_gt``, ``_noise``) and without a ``_denoised`` suffix (outputs); all-digit keys compare
    as numbers (``0034`` = ``34``).

        >>> [pair_key(n) for n in ("NOISY_SRGB_010.PNG", "GT_SRGB_010.PNG", "a_real.png", "a_mean.JPG",
        ...                        "0034.png", "34_denoised.png")]
        ['SRGB_010', 'SRGB_010', 'a', 'a', '34', '34']
    """
    stem = re.sub(r"_denoised$", "", Path(name).stem, flags=re.IGNORECASE)
    for a in ("NOISY_", "GT_", "noisy_", "clean_", "gt_"):
        stem = stem.replace(a, "")
    key = re.sub(r"(_real|_mean|_noisy|_clean|_gt|_noise)$", "", stem, flags=re.IGNORECASE)
    return str(int(key)) if key.isdigit() else key


def paired_subfolders(root: Path) -> tuple[Path, Path] | None:
    """The (noisy, clean) sub-folders of ``root`` by :data:`PAIRED_SUBFOLDERS` (any case), or None."""
    subs = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    for n, c in PAIRED_SUBFOLDERS:
        if n in subs and c in subs:
            return subs[n], subs[c]
    return None


def index_folder(folder: Path, role: str, gt: bool | None = None) -> dict[str, Path]:
    """Images of ``folder`` by :func:`pair_key` (the first of each key in name order); ``gt`` True/False
    keeps only / drops ground-truth names, for noisy and clean files in one folder. ``role`` names the
    folder in errors (an option such as 'clean')."""
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder (--{role})")
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if gt is not None and is_ground_truth(p.name) != gt:
            continue
        if p.is_file() and is_image_path(p) and not p.name.startswith("."):
            out.setdefault(pair_key(p.name), p)
    if not out:
        raise InputError(f"{folder}: no images in this folder (--{role})")
    return out


def _search(root: Path) -> list[Path]:
    """Images under the folder ``root`` (recursive, sorted), hidden files and folders left out."""
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    return sorted(p for p in root.rglob("*") if p.is_file() and is_image_path(p)
                  and not any(s.startswith(".") for s in p.relative_to(root).parts))


def find_images(root: str | os.PathLike) -> list[Path]:
    """Every image under ``root`` (a file, or a folder searched recursively; sorted), hidden ones excluded."""
    root = Path(root)
    if root.is_file():
        return [root]
    files = _search(root)
    if not files:
        raise InputError(f"{root}: no images found (searched recursively)")
    return files


def find_noisy_images(root: str | os.PathLike) -> list[Path]:
    """Noisy images under ``root`` (a file, or a folder searched recursively; sorted), ground-truth
    files and hidden ones excluded."""
    root = Path(root)
    if root.is_file():
        return [root]
    files = [p for p in _search(root) if not is_ground_truth(p.name)]
    if not files:
        raise InputError(f"{root}: no noisy training images found (searched recursively)")
    return files
