"""Benchmark files: the SIDD ``.mat`` blocks, the SIDD Kaggle CSV and the DND sRGB submission bundle.

* SIDD (https://abdokamel.github.io/sidd/): ``ValidationNoisyBlocksSrgb.mat`` /
  ``ValidationGtBlocksSrgb.mat`` and ``BenchmarkNoisyBlocksSrgb.mat`` hold ``(40, 32, 256, 256, 3)``
  uint8 arrays (40 images x 32 blocks) in MATLAB v5 files.
* The SIDD benchmark is now scored on Kaggle from a CSV with columns ``ID,BLOCK``: one row per block,
  ``BLOCK`` the base64 of the block's raw uint8 bytes (C order, ``(256, 256, 3)``).
* DND (https://noise.visinf.tu-darmstadt.de/): ``info.mat`` and ``images_srgb/%04d.mat`` (MATLAB v7.3,
  i.e. HDF5; read with h5py); the submission is one ``%04d.mat`` per image with a cell ``Idenoised``
  of its 20 denoised float32 blocks, ``israw = False`` and ``eval_version = '1.0'`` (the layout of
  DND's ``bundle_submissions_srgb``).

This module has no CLI dependencies; errors are :class:`~sdap_cli.errors.InputError` /
:class:`~sdap_cli.errors.OutputError` with one-line messages.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import InputError, OutputError, first_line
from ..io.atomic import atomic_write

__all__ = ["SIDD_URL", "DND_URL", "SIDD_FILES", "load_sidd_blocks", "write_sidd_kaggle_csv",
           "read_sidd_kaggle_csv", "write_dnd_bundle", "read_dnd_bundle", "load_dnd", "DndSet"]

SIDD_URL = "https://abdokamel.github.io/sidd/"
DND_URL = "https://noise.visinf.tu-darmstadt.de/"
SIDD_FILES = {
    "ValidationNoisyBlocksSrgb": "SIDD validation, noisy sRGB blocks",
    "ValidationGtBlocksSrgb": "SIDD validation, ground-truth sRGB blocks",
    "BenchmarkNoisyBlocksSrgb": "SIDD benchmark, noisy sRGB blocks",
}


def load_sidd_blocks(path: str | os.PathLike, key: str) -> np.ndarray:
    """The ``(images, blocks, H, W, 3)`` uint8 array ``key`` of a SIDD ``.mat`` file.

    A file with a single variable of another name is accepted too.

    Raises:
        InputError: the file is missing (the message names it and where to get it), unreadable, or
            holds no 5-D block array.
    """
    from scipy.io import loadmat

    p = Path(path)
    if not p.is_file():
        what = SIDD_FILES.get(key, "SIDD blocks")
        raise InputError(f"{p}: not found; this needs {p.name} ({what}), downloadable from the SIDD "
                         f"website {SIDD_URL} (sRGB blocks .mat); pass the folder holding it with --data-dir")
    try:
        m = loadmat(p)
    except Exception as e:                                          # noqa: BLE001
        raise InputError(f"{p}: not a readable MATLAB v5 file ({type(e).__name__}: "
                         f"{first_line(e, 120)})") from None
    arr = m.get(key)
    if arr is None:
        keys = [k for k in m if not k.startswith("__")]
        if len(keys) != 1:
            raise InputError(f"{p}: no variable {key!r} inside (found {', '.join(keys) or 'none'})")
        arr = m[keys[0]]
    arr = np.asarray(arr)
    if arr.ndim != 5 or arr.shape[-1] != 3:
        raise InputError(f"{p}: expected blocks of shape (images, blocks, H, W, 3), got {arr.shape}")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.max(initial=0) <= 1.0:
            arr = np.rint(np.clip(arr, 0, 1) * 255)
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return arr


def _atomic_write(path: Path, write) -> None:
    """``atomic.atomic_write`` in text mode, with the folder check and the one-line OutputError."""
    if not path.parent.is_dir():
        raise OutputError(f"{path}: cannot write (folder {path.parent} does not exist)")
    try:
        atomic_write(path, write, text=True)
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror or e})") from None


def write_sidd_kaggle_csv(blocks: np.ndarray, path: str | os.PathLike) -> int:
    """Write the SIDD benchmark (Kaggle) submission CSV; returns the number of rows.

    Args:
        blocks: uint8 ``(N_img, N_blk, H, W, 3)``, e.g. ``(40, 32, 256, 256, 3)`` denoised blocks in the
            order of ``BenchmarkNoisyBlocksSrgb.mat``.
        path: the ``.csv`` to write (atomically).

    The header is ``ID,BLOCK``; row ``ID = i * N_blk + j`` (0-based, image-major) holds block ``(i, j)``
    as base64 of its raw uint8 bytes in C order. The 0-based, image-major ID follows the public
    Kaggle sample submissions and the scripts that produce accepted submissions (e.g. TM-BSN's
    ``benchmark_sidd.py``: ``ID = np.arange(1280)`` over blocks in that order); it is an assumption
    here, not checked against the Kaggle scorer.
    """
    blocks = np.asarray(blocks)
    if blocks.ndim != 5 or blocks.shape[-1] != 3:
        raise ValueError(f"expected (images, blocks, H, W, 3), got {blocks.shape}")
    if blocks.dtype != np.uint8:
        raise ValueError(f"expected uint8 blocks, got {blocks.dtype}")
    n_img, n_blk = blocks.shape[:2]

    def write(fh) -> None:
        fh.write("ID,BLOCK\n")
        for i in range(n_img):
            for j in range(n_blk):
                b64 = base64.b64encode(np.ascontiguousarray(blocks[i, j]).tobytes()).decode("ascii")
                fh.write(f"{i * n_blk + j},{b64}\n")

    _atomic_write(Path(path), write)
    return n_img * n_blk


def read_sidd_kaggle_csv(path: str | os.PathLike, shape: tuple[int, ...]) -> np.ndarray:
    """Read a Kaggle CSV written by :func:`write_sidd_kaggle_csv` back into a uint8 array of ``shape``
    ``(N_img, N_blk, H, W, 3)``. Rows may come in any order; every ID must appear once."""
    n_img, n_blk, *block = shape
    out = np.zeros(shape, np.uint8)
    seen = np.zeros(n_img * n_blk, bool)
    with open(path, encoding="ascii") as fh:
        header = fh.readline().strip()
        if header != "ID,BLOCK":
            raise InputError(f"{path}: header {header!r}, expected 'ID,BLOCK'")
        for line_no, line in enumerate(fh, start=2):
            if not line.strip():
                continue
            ident, _, b64 = line.strip().partition(",")
            k = int(ident)
            if not 0 <= k < n_img * n_blk or seen[k]:
                raise InputError(f"{path}:{line_no}: ID {k} out of range or repeated")
            arr = np.frombuffer(base64.b64decode(b64), np.uint8)
            if arr.size != int(np.prod(block)):
                raise InputError(f"{path}:{line_no}: block has {arr.size} bytes, expected {int(np.prod(block))}")
            out[k // n_blk, k % n_blk] = arr.reshape(block)
            seen[k] = True
    if not seen.all():
        raise InputError(f"{path}: {int((~seen).sum())} of {seen.size} blocks missing")
    return out


def write_dnd_bundle(denoised: dict[tuple[int, int], np.ndarray], folder: str | os.PathLike) -> list[Path]:
    """Write the DND sRGB submission: one ``%04d.mat`` per image in ``folder`` (created).

    Args:
        denoised: ``{(image_idx, block_idx): block}``, both indices **0-based**; blocks are
            ``(H, W, 3)`` float in [0, 1] (stored as float32). Image ``i`` becomes ``%04d.mat % (i + 1)``;
            every image must have blocks ``0 .. B-1`` (B = 20 for DND), all images the same B.
        folder: the bundle folder to submit.

    Each file holds ``Idenoised`` (a 1 x B cell of the blocks, as ``bundle_submissions_srgb`` in the
    DND kit builds from ``np.zeros((20,), dtype=object)``), ``israw = False`` and
    ``eval_version = '1.0'``. Returns the written paths.
    """
    from scipy.io import savemat

    if not denoised:
        raise ValueError("no denoised blocks")
    by_image: dict[int, dict[int, np.ndarray]] = {}
    for (i, b), arr in denoised.items():
        by_image.setdefault(int(i), {})[int(b)] = arr
    counts = {len(v) for v in by_image.values()}
    if len(counts) != 1:
        raise ValueError(f"images have different numbers of blocks: {sorted(counts)}")
    n_blk = counts.pop()
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{folder}: cannot create the submission folder ({e.strerror or e})") from None
    paths = []
    for i in sorted(by_image):
        blocks = by_image[i]
        if sorted(blocks) != list(range(n_blk)):
            raise ValueError(f"image {i}: blocks {sorted(blocks)} are not 0..{n_blk - 1}")
        cell = np.empty((n_blk,), dtype=object)
        for b in range(n_blk):
            arr = np.asarray(blocks[b], dtype=np.float32)
            if arr.ndim != 3 or arr.shape[2] != 3:
                raise ValueError(f"image {i} block {b}: expected (H, W, 3), got {arr.shape}")
            cell[b] = arr
        path = folder / ("%04d.mat" % (i + 1))
        try:
            savemat(path, {"Idenoised": cell, "israw": False, "eval_version": "1.0"})
        except OSError as e:
            raise OutputError(f"{path}: cannot write ({e.strerror or e})") from None
        paths.append(path)
    return paths


def read_dnd_bundle(folder: str | os.PathLike) -> dict[tuple[int, int], np.ndarray]:
    """Read a bundle written by :func:`write_dnd_bundle` back (0-based keys), checking its fields."""
    from scipy.io import loadmat

    out: dict[tuple[int, int], np.ndarray] = {}
    for path in sorted(Path(folder).glob("[0-9][0-9][0-9][0-9].mat")):
        m = loadmat(path)
        if bool(np.asarray(m["israw"]).ravel()[0]) or str(np.asarray(m["eval_version"]).ravel()[0]) != "1.0":
            raise InputError(f"{path}: israw/eval_version are not those of an sRGB submission")
        cell = m["Idenoised"].ravel()
        for b, arr in enumerate(cell):
            out[(int(path.stem) - 1, b)] = np.asarray(arr)
    return out


class DndSet:
    """The DND sRGB benchmark input: 50 images x 20 bounding-box blocks, float32 ``(H, W, 3)`` in [0, 1].

    Read as the DND kit's ``denoise_srgb`` does (h5py; MATLAB arrays are transposed; box k of image i
    is row k of ``info.boundingboxes{i}``, 1-based inclusive: rows ``b[0]-1 : b[2]``, columns
    ``b[1]-1 : b[3]``). Not verified against the real files here (they are not available offline);
    written from the kit's reference code.
    """

    def __init__(self, data_dir: str | os.PathLike) -> None:
        self.root = Path(data_dir)
        try:
            import h5py
        except ImportError:
            raise InputError("--dataset dnd needs h5py (pip install h5py) and the DND folder with info.mat "
                             f"and images_srgb/ (from {DND_URL})") from None
        self.h5py = h5py
        info = self.root / "info.mat"
        if not info.is_file() or not (self.root / "images_srgb").is_dir():
            raise InputError(f"{self.root}: expected info.mat and images_srgb/ of the DND benchmark "
                             f"(download it from {DND_URL}) and pass that folder with --data-dir")
        try:
            with h5py.File(info, "r") as f:
                grp = f["info"]
                refs = grp["boundingboxes"]
                self.boxes = [np.array(grp[refs[0][i]]).T for i in range(refs.shape[1])]
        except (OSError, KeyError) as e:
            raise InputError(f"{info}: not the DND info.mat ({type(e).__name__}: {e})") from None

    @property
    def n_images(self) -> int:
        return len(self.boxes)

    def blocks_per_image(self, i: int) -> int:
        return int(self.boxes[i].shape[0])

    def iter_blocks(self, limit: int | None = None) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield ``(image_idx, block_idx, block)`` (0-based), one image file open at a time."""
        n = 0
        for i, boxes in enumerate(self.boxes):
            path = self.root / "images_srgb" / ("%04d.mat" % (i + 1))
            if not path.is_file():
                raise InputError(f"{path}: missing from the DND folder")
            with self.h5py.File(path, "r") as f:
                noisy = np.float32(np.array(f["InoisySRGB"]).T)
            for k in range(boxes.shape[0]):
                if limit is not None and n >= limit:
                    return
                r0, c0, r1, c1 = (int(v) for v in boxes[k, :4])
                yield i, k, np.ascontiguousarray(noisy[r0 - 1:r1, c0 - 1:c1, :])
                n += 1


def load_dnd(data_dir: str | os.PathLike) -> DndSet:
    """Open the DND sRGB benchmark folder (``info.mat`` + ``images_srgb/``); needs h5py."""
    return DndSet(data_dir)
