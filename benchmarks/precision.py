"""How much of a 16-bit image's precision each shipped network keeps at bf16, against fp32.

For a 16-bit version of an image (8-bit values x 257 plus a uniform dither of +-64 codes, seed 0), each
network denoises it at fp32 and at bf16; printed: the distinct output values of each, and the mean and
largest difference between them in 16-bit codes (257 codes = one 8-bit level).

    python benchmarks/precision.py [IMAGE.png]      (default: samples/sidd_val_34.png)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from sdap_cli.inference.checkpoints import STUDENT_WEIGHTS_NAME, default_weights_path, load_weights
from sdap_cli.inference.denoiser import make_denoiser
from sdap_cli.io.images import read_image

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"student": (STUDENT_WEIGHTS_NAME, {}), "teacher PD-2 + E": (None, dict(refine="e", pd=2)),
            "teacher PD-1 (light path)": (None, dict(refine="none", pd=1))}


def main(path: str) -> None:
    y8 = read_image(path).colour.astype(np.float32)          # 8-bit samples, 0-255
    rng = np.random.default_rng(0)
    y16 = np.clip(y8 * 257 + rng.uniform(-64, 64, y8.shape), 0, 65535).astype(np.uint16)
    print(f"{path}: {y16.shape[1]}x{y16.shape[0]}, {len(np.unique(y16))} distinct input values")
    print(f"{'network':28s} {'fp32 distinct':>14s} {'bf16 distinct':>14s} {'mean |diff|':>12s} {'max |diff|':>11s}")
    for name, (weights, kw) in SETTINGS.items():
        file = default_weights_path(weights) if weights else default_weights_path()
        outs = {p: make_denoiser(load_weights(file).model, precision=p, **kw).denoise(y16, out=np.empty_like(y16))
                for p in ("fp32", "bf16")}
        diff = np.abs(outs["fp32"].astype(np.int64) - outs["bf16"].astype(np.int64))
        print(f"{name:28s} {len(np.unique(outs['fp32'])):14d} {len(np.unique(outs['bf16'])):14d} "
              f"{diff.mean():12.1f} {diff.max():11d}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "samples" / "sidd_val_34.png"))
