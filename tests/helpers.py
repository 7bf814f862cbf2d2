"""Small fixtures shared by the CLI tests: tiny weight files and images."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import torch

from sdap_cli.inference.checkpoints import save_weights
from sdap_cli.method.dbsnl import DBSNl


@contextmanager
def loaded_script(path: Path, name: str):
    """Import the script at ``path`` as module ``name`` for the duration of the block (its folder on
    ``sys.path`` meanwhile, for the modules it imports from beside it)."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.modules.pop(name, None)
        sys.path.remove(str(path.parent))


def tiny_weights(path: Path, base_ch: int = 8, num_module: int = 1) -> Path:
    torch.manual_seed(0)
    net = DBSNl(base_ch=base_ch, num_module=num_module)
    with torch.no_grad():
        net.tail[-1].bias.fill_(0.5)
    return save_weights(path, net, training={"note": "test fixture"})


def write_png(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = arr[..., ::-1]
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., [2, 1, 0, 3]]
    assert cv2.imwrite(str(path), np.ascontiguousarray(arr))
    return path


def noisy_rgb(h: int, w: int, dtype=np.uint8, seed: int = 0, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    top = 255 if dtype == np.uint8 else 65535
    yy, xx = np.mgrid[0:h, 0:w]
    base = (0.5 + 0.3 * np.sin(xx / 5.0) * np.cos(yy / 7.0))[..., None].repeat(channels, 2)
    return np.clip((base + rng.normal(0, 0.08, base.shape)) * top, 0, top).astype(dtype).squeeze()


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tiny_student(path: Path, seed: int = 0) -> Path:
    """A random StudentUNet (8, 8, 8) / (1, 1, 1) weights file whose output differs from its input."""
    from sdap_cli.method.student import StudentUNet

    torch.manual_seed(seed)
    net = StudentUNet(ch=(8, 8, 8), blocks=(1, 1, 1))
    with torch.no_grad():
        net.tail.weight.normal_(0, 0.05)
    return save_weights(path, net, training={"note": "test fixture"})


def assert_partitions_cells(subs, y, p: int) -> None:
    """RSG's property: the p*p sub-images ``subs`` (p*p, B, C, H/p, W/p) of ``y`` (B, C, H, W) hold, at
    each cell (i, j), exactly the p*p pixels of the cell y[:, :, p i : p i + p, p j : p j + p]."""
    b, c, H, W = y.shape
    assert subs.shape == (p * p, b, c, H // p, W // p)
    cells = y.reshape(b, c, H // p, p, W // p, p).permute(0, 1, 2, 4, 3, 5).reshape(b, c, H // p, W // p, p * p)
    got = subs.permute(1, 2, 3, 4, 0)
    assert (got.sort(-1).values == cells.sort(-1).values).all()
