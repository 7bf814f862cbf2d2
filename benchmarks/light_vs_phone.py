"""Issue 27's cost figure: a 3 MP light-noise photo against a 3 MP phone-noise photo, whole `sdap denoise`
processes with the defaults.

    python benchmarks/light_vs_phone.py [--data ../shared/data] [--out runs/light_vs_phone]

Writes ``light3mp.png`` (random 256 x 256 pieces of the 15 CC15 noisy images: light DSLR noise) and
``phone3mp.png`` (the same of the 8 SIDD crops: phone noise), both 2048 x 1536 (``whole_process.mosaic``),
under ``--out``, then prints the command that times them side by side (``farm-bench``, the tool library's
whole-process timer; pairs A B A B, so its ratio holds while the machine's speed drifts).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import cv2
from whole_process import mosaic  # beside this script (benchmarks/)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "runs" / "light_vs_phone")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    cc15 = sorted((a.data / "nam_cc15_mcwnnm" / "Real_ccnoise_denoised_part").glob("*_real.png"))
    sidd = sorted((a.data / "sidd_medium_crops_yilmazdoga" / "Noisy_Images").glob("*.png"))
    light, phone = a.out / "light3mp.png", a.out / "phone3mp.png"
    cv2.imwrite(str(light), mosaic(1536, 2048, 0, cc15))
    cv2.imwrite(str(phone), mosaic(1536, 2048, 0, sidd))
    out = a.out / "denoised"
    cmd = lambda f: f"sdap denoise {shlex.quote(str(f))} -o {shlex.quote(str(out))} --overwrite -q"  # noqa: E731
    print(f"farm-bench -n 5 --timeout 300 --vs '{cmd(phone)}' -- {cmd(light)}")


if __name__ == "__main__":
    main()
