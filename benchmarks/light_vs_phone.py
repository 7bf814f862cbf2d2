"""Issue 27's cost figure: a 3 MP light-noise photo against a 3 MP phone-noise photo, whole `sdap denoise`
processes with the defaults.

    python benchmarks/light_vs_phone.py [--data ../shared/data] [--out runs/light_vs_phone]

Writes ``light3mp.png`` (the 12 CC15 noisy images, 512 x 512, tiled 4 x 3: light DSLR noise, 2048 x 1536)
and ``phone3mp.png`` (48 SIDD validation training blocks, 256 x 256, tiled 8 x 6: phone noise, 2048 x 1536)
under ``--out``, then prints the command that times them side by side (``farm-bench``, the tool library's
whole-process timer; pairs A B A B, so its ratio holds while the machine's speed drifts).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import cv2
import numpy as np

from sdap_cli.io.folders import find_images


def mosaic(files: list[Path], rows: int, cols: int) -> np.ndarray:
    tiles = [cv2.imread(str(f), cv2.IMREAD_COLOR) for f in files[:rows * cols]]
    side = min(min(t.shape[:2]) for t in tiles)
    tiles = [t[:side, :side] for t in tiles]
    return np.concatenate([np.concatenate(tiles[r * cols:(r + 1) * cols], 1) for r in range(rows)], 0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "runs" / "light_vs_phone")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    cc15 = sorted((a.data / "nam_cc15_mcwnnm" / "Real_ccnoise_denoised_part").glob("*_real.png"))[:12]
    sidd = find_images(a.data / "sidd_val_scoredvi" / "train_noisy")[::10][:48]
    light, phone = a.out / "light3mp.png", a.out / "phone3mp.png"
    cv2.imwrite(str(light), mosaic(cc15, 3, 4))
    cv2.imwrite(str(phone), mosaic(sidd, 6, 8))
    out = a.out / "denoised"
    cmd = lambda f: f"sdap denoise {shlex.quote(str(f))} -o {shlex.quote(str(out))} --overwrite -q"  # noqa: E731
    print(f"farm-bench -n 5 --timeout 300 --vs '{cmd(phone)}' -- {cmd(light)}")


if __name__ == "__main__":
    main()
