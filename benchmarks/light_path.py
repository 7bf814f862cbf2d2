"""Which network and blend should the light path run? The shipped teacher at PD-1 against a one-pass
student, each followed by the residual Wiener blend (``adaptive.wiener_blend``) at one or more beta.

    python benchmarks/light_path.py [--data ../shared/data] [--student FILE ...] [--betas 1.5] [--threads 2]

Sets: light noise added (seeded, rounded to 8 bits) to the 28 shared clean images (SIDD clean blocks,
CC15 means, SIDD crop GTs): white of std 2, 5 and 10 (0-255), and white noise through a 3x3 box (std 3
and 6 after it: correlated like camera sRGB noise); the 15 real CC15 pairs; the clean images themselves.
Every image goes through the adaptive rule (``adaptive.choose_path``) first and a row counts only the
images it sends to the light path, since only those would change. Each cell: mean PSNR (SDAP
convention), and the worst image's PSNR minus its input's. Then ms per megapixel of the network and
the blends.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from sdap_cli.evaluation.metrics import psnr_ssim
from sdap_cli.inference.adaptive import BETA, choose_path, wiener_blend
from sdap_cli.inference.checkpoints import load_weights, shipped_student_path
from sdap_cli.inference.denoiser import make_denoiser
from sdap_cli.inference.device import pick_precision
from sdap_cli.inference.noise import measure_noise
from sdap_cli.io.images import read_image

CLEAN = ("sidd_val_blocks/p1y2z3_SDAP/SIDD_clean/*.png", "nam_cc15_mcwnnm/*/*_mean.png",
         "sidd_medium_crops_yilmazdoga/GT_Images/*.png")
NOISES = [("white", 2), ("white", 5), ("white", 10), ("box3", 3), ("box3", 6)]


def add_noise(x: np.ndarray, kind: str, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` (H, W, 3) in [0, 1] plus noise of std ``sigma`` (0-255), rounded to 8 bits."""
    n = rng.normal(0, 1, x.shape)
    if kind == "box3":
        n = sum(np.roll(np.roll(n, i, 0), j, 1) for i in (-1, 0, 1) for j in (-1, 0, 1)) / 3.0
    return (np.clip(np.round(x * 255 + sigma * n), 0, 255) / 255).astype(np.float32)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return psnr_ssim(a, b)[0]


def cell(scores: list[float], inputs: list[float]) -> str:
    if not scores:
        return "-"
    finite = [s for s in scores if np.isfinite(s)]
    gains = [s - i for s, i in zip(scores, inputs) if np.isfinite(s - i)]
    worst = f"{min(gains):+.2f}" if gains else "-"
    return f"{np.mean(finite):.2f} ({worst})" if finite else "identical"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--student", action="append", type=Path, help="student weights (default: the shipped one)")
    ap.add_argument("--betas", default=str(BETA), help="comma list of the blend's beta")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    betas = [float(b) for b in a.betas.split(",")]
    prec = pick_precision("auto", torch.device("cpu"))
    nets = {"teacher PD-1": make_denoiser(load_weights(None).model, refine="none", pd=1, precision=prec)}
    for path in a.student or [shipped_student_path()]:
        nets[f"student {Path(path).stem}"] = make_denoiser(load_weights(path).model, precision=prec)
    clean = [read_image(p).rgb for pat in CLEAN for p in sorted(a.data.glob(pat))]
    cc15 = [(read_image(n).rgb, read_image(str(n).replace("_real", "_mean")).rgb)
            for n in sorted(a.data.glob("nam_cc15_mcwnnm/*/*_real.png"))]
    rng = np.random.default_rng(0)
    sets = [(f"{k} {s}", [(add_noise(x, k, s, rng), x) for x in clean]) for k, s in NOISES]
    sets += [("CC15 real", cc15), ("clean, against itself", [(x, x) for x in clean])]
    cols = [(k, b) for k in nets for b in betas]
    print(f"precision {prec}; cells: mean PSNR (worst image - its input)")
    print("| set | light / all | input | " + " | ".join(f"{k}, beta {b}" for k, b in cols) + " |")
    print("|---|---|---|" + "---|" * len(cols))
    seconds, pixels = {k: 0.0 for k in nets}, 0
    for label, pairs in sets:
        inputs, scores = [], {c: [] for c in cols}
        for y, x in pairs:
            est = measure_noise(y)
            if choose_path(est) != "light":
                continue
            inputs.append(psnr(y, x))
            pixels += y.shape[0] * y.shape[1]
            for k, den in nets.items():
                t0 = time.perf_counter()
                raw = den.denoise(y)
                var = est.sigma_map(raw)
                blended = [wiener_blend(y, raw, var, beta=b) for b in betas]
                seconds[k] += time.perf_counter() - t0          # the network and every blend
                for b, out in zip(betas, blended):
                    scores[(k, b)].append(psnr(out, x))
        finite = [i for i in inputs if np.isfinite(i)]
        shown = f"{np.mean(finite):.2f}" if finite else "-"
        print(f"| {label} | {len(inputs)} / {len(pairs)} | {shown} | "
              + " | ".join(cell(scores[c], inputs) for c in cols) + " |")
    print(f"ms per MP (network + {len(betas)} blends): " + ", ".join(f"{k} {1e9 * s / max(pixels, 1):.0f}"
                                                      for k, s in seconds.items()))


if __name__ == "__main__":
    main()
