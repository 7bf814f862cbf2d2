"""The baseline a user has without us: OpenCV fastNlMeansDenoisingColored with h tuned on the pairs.

Usage: python benchmarks/nlm_baseline.py NOISY_DIR CLEAN_DIR [--h 4,6,...] [--json out.json]
For each h (h = hColor, template 7, search 21) the mean PSNR/SSIM (SDAP convention) over the pairs;
prints the best h. Pairs are matched as in `sdap evaluate` (sdap_cli.evaluation.evalsets.load_paired_folders).
"""

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from sdap_cli.evaluation.evalsets import load_paired_folders
from sdap_cli.evaluation.metrics import psnr_ssim, to_uint8


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("noisy", type=Path)
    ap.add_argument("clean", type=Path)
    ap.add_argument("--h", default="3,5,7,9,11,13,15,18,21")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    pairs = load_paired_folders(a.noisy, a.clean)
    rows = []
    for h in (float(v) for v in a.h.split(",")):
        ps, ss = [], []
        for n, c in zip(pairs.noisy, pairs.clean):
            bgr = cv2.cvtColor(to_uint8(n), cv2.COLOR_RGB2BGR)
            out = cv2.cvtColor(cv2.fastNlMeansDenoisingColored(bgr, None, h, h, 7, 21), cv2.COLOR_BGR2RGB)
            p, s = psnr_ssim(out, c, "sdap")
            ps.append(p)
            ss.append(s)
        rows.append({"h": h, "psnr": float(np.mean(ps)), "ssim": float(np.mean(ss)), "per_image": ps})
        print(f"h {h:5.1f}: PSNR {np.mean(ps):.2f} dB, SSIM {np.mean(ss):.4f}")
    best = max(rows, key=lambda r: r["psnr"])
    print(f"best h {best['h']:g}: {best['psnr']:.2f} dB / {best['ssim']:.4f} over {len(pairs.names)} pairs")
    if a.json:
        a.json.write_text(json.dumps({"pairs": pairs.names, "rows": rows, "best": best}, indent=2))


if __name__ == "__main__":
    main()
