"""The low-frequency check of the teacher's paths (``inference.adaptive.lowfreq_correct``), for several k.

    python benchmarks/lowfreq_table.py [--data ../shared/data] [--k none,1,4,16] [--teacher FILE] [--threads 2]

Runs the teacher's adaptive default (the CUDA default: PD-2 + E on the heavy path, PD-1 + the Wiener blend
on the light one; here on the CPU, fp32; ``--teacher``: another teacher's weights than the shipped one) with
the check off (none) and at each k, and prints per set (SDAP convention, PSNR dB):

* SIDD blocks (5) and the SIDD validation pairs of 4 other images (65): mean PSNR and the worst image;
* CC15 (15): mean gain over the noisy input, worst image's gain;
* clean SIDD blocks (the 5 and the 65 references) sent through and scored against themselves: mean, worst;
* white noise of std 5 on those 70 references: mean gain over the input, worst;
* a chart of 24 flat colours (8 hues at 3 saturation/brightness levels, 64 px squares) under white noise
  of std 5 and phone-like noise (white through a [0.25, 1, 0.25]^2 kernel) of std 8 and 20: gain over the
  input, and the largest shift of a square's mean colour (levels, the central 32 px, the worst channel).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import cv2
import numpy as np
import torch

from sdap_cli.evaluation.evalsets import load_paired_folders
from sdap_cli.evaluation.metrics import psnr_ssim
from sdap_cli.inference.adaptive import AdaptiveDenoiser
from sdap_cli.inference.checkpoints import load_weights
from sdap_cli.inference.denoiser import make_denoiser
from sdap_cli.io.folders import find_images
from sdap_cli.io.images import read_image

P = 64


def chart() -> np.ndarray:
    """24 flat colours: hues 0-161 (OpenCV's 0-180 scale) in steps of 23 at (saturation, value) 0.9/0.85,
    0.6/0.7 and 0.9/0.45."""
    x = np.zeros((3 * P, 8 * P, 3), np.float32)
    for r, (s, v) in enumerate(((0.9, 0.85), (0.6, 0.7), (0.9, 0.45))):
        for q, h in enumerate(range(0, 180, 23)):
            hsv = np.uint8([[[h, int(s * 255), int(v * 255)]]])
            x[r * P:(r + 1) * P, q * P:(q + 1) * P] = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0] / 255.0
    return x


def noisy(x: np.ndarray, std: float, rng, phone: bool = False) -> np.ndarray:
    n = rng.normal(0, 1, x.shape).astype(np.float32)
    if phone:
        k = np.outer([0.25, 1, 0.25], [0.25, 1, 0.25]).astype(np.float32)
        n = cv2.filter2D(n, -1, k / np.sqrt((k ** 2).sum()), borderType=cv2.BORDER_REFLECT)
    return (np.clip(np.rint((x + n * std / 255) * 255), 0, 255) / 255).astype(np.float32)


def max_shift(out: np.ndarray, x: np.ndarray) -> float:
    worst = 0.0
    for r in range(x.shape[0] // P):
        for q in range(x.shape[1] // P):
            sl = (slice(r * P + 16, r * P + 48), slice(q * P + 16, q * P + 48))
            worst = max(worst, float(np.abs(out[sl].mean((0, 1)) - x[sl].mean((0, 1))).max()) * 255)
    return worst


def print_table(rows: dict[str, dict[str, str]]) -> None:
    """A Markdown table: a row per measured set, a column per ``rows`` key (a setting or a weights file)."""
    cols = list(rows)
    print("| set | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols))
    for name in rows[cols[0]]:
        print(f"| {name} | " + " | ".join(rows[c][name] for c in cols) + " |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--k", default="none,1,4,16")
    ap.add_argument("--teacher", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    teacher = load_weights(a.teacher).model
    heavy = make_denoiser(teacher, refine="e", pd=2, precision="fp32")
    light = make_denoiser(teacher, refine="none", pd=1, precision="fp32")
    ks = [None if k == "none" else float(k) for k in a.k.split(",")]
    ps = lambda out, x: psnr_ssim(out, x, "sdap")[0]                      # noqa: E731
    blocks = load_paired_folders(a.data / "sidd_val_blocks/p1y2z3_SDAP/SIDD_noisy",
                                 a.data / "sidd_val_blocks/p1y2z3_SDAP/SIDD_clean")
    val = load_paired_folders(a.data / "sidd_val_scoredvi/val/noisy", a.data / "sidd_val_scoredvi/val/GT")
    cc = sorted((a.data / "nam_cc15_mcwnnm/Real_ccnoise_denoised_part").glob("*_real.png"))
    cc15 = [(read_image(f).rgb, read_image(str(f).replace("_real", "_mean")).rgb) for f in cc]
    clean = list(blocks.clean) + [read_image(f).rgb for f in find_images(a.data / "sidd_val_scoredvi/val/GT")]
    rng = np.random.default_rng(3)
    white = [(noisy(x, 5, rng), x) for x in clean]
    cx = chart()
    charts = {"white 5": noisy(cx, 5, rng), "phone 8": noisy(cx, 8, rng, True), "phone 20": noisy(cx, 20, rng, True)}
    rows: dict[str, dict[str, str]] = {}
    for k in ks:
        den = AdaptiveDenoiser(heavy, light, lowfreq_k=k)
        run = lambda y: den.denoise(y)[0]                                   # noqa: E731
        col = "off" if k is None else f"k {k:g}"
        res = {}
        for name, s in (("SIDD blocks (5)", blocks), ("SIDD val pairs (65)", val)):
            p = [ps(run(y), x) for y, x in zip(s.noisy, s.clean)]
            res[name] = f"{np.mean(p):.2f} (worst {min(p):.2f})"
        g = [ps(run(y), x) - ps(y, x) for y, x in cc15]
        res["CC15 gain (15)"] = f"{np.mean(g):+.2f} (worst {min(g):+.2f})"
        p = [ps(run(x), x) for x in clean]
        fin = [v for v in p if math.isfinite(v)]
        res["clean SIDD (70)"] = f"{np.mean(fin):.2f} (worst {min(fin):.2f})"
        g = [ps(run(y), x) - ps(y, x) for y, x in white]
        res["white 5 on them"] = f"{np.mean(g):+.2f} (worst {min(g):+.2f})"
        for name, y in charts.items():
            out = run(y)
            res[f"chart, {name}"] = f"{ps(out, cx) - ps(y, cx):+.2f} (shift {max_shift(out, cx):.1f})"
        rows[col] = res
        for name, v in res.items():
            print(f"{col} | {name} | {v}", flush=True)
    print_table(rows)


if __name__ == "__main__":
    main()
