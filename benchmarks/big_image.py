"""Write a large PNG for the memory measurement of `sdap denoise` (issue: any size).

    python benchmarks/big_image.py OUT.png [--side 20000] [--kind noisy|smooth]

``noisy`` tiles a real noisy SIDD crop from ../shared/data (the heavy path runs on every tile);
``smooth`` is a gradient that compresses to a few MB, like the 1.1 MB 20000x20000 PNG of the report.
Then measure, for example:

    /usr/bin/time -v sdap denoise OUT.png -o out/ -q 2>&1 | grep -E "Maximum resident|Elapsed"
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

CROP = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sidd_medium_crops_yilmazdoga" / \
    "Noisy_Images" / "NOISY_0.png"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--side", type=int, default=20000)
    ap.add_argument("--kind", choices=("noisy", "smooth"), default="noisy")
    a = ap.parse_args()
    n = a.side
    if a.kind == "noisy":
        crop = cv2.imread(str(CROP), cv2.IMREAD_COLOR)
        reps = -(-n // crop.shape[0]), -(-n // crop.shape[1])
        img = np.tile(crop, (reps[0], reps[1], 1))[:n, :n]
    else:
        ramp = np.linspace(0, 255, n, dtype=np.float32)
        img = np.empty((n, n, 3), np.uint8)
        for c in range(3):
            img[..., c] = ((ramp[:, None] * (c + 1) / 3 + ramp[None, :] * (3 - c) / 3) / 2).astype(np.uint8)
    cv2.imwrite(str(a.out), img, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    print(f"{a.out}: {n}x{n}, {a.out.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
