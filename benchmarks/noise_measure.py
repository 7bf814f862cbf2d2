"""Measured noise (``sdap_cli.inference.noise.measure_noise``) beside the truth (noisy - clean) on the paired
sets in ../shared/data, plus synthetic noise on their clean images.

    python benchmarks/noise_measure.py [--data ../shared/data] [--synthetic]

Truth: sigma = std of noisy - clean over all pixels and channels (0-255); rho_k = correlation of that
difference with itself shifted by k pixels (mean of both directions and the channels).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from light_path import add_noise  # noqa: E402          benchmarks/ is the script's folder, on sys.path

from sdap_cli.inference.noise import measure_noise  # noqa: E402
from sdap_cli.io import images  # noqa: E402

SETS = {  # name: (glob of the noisy files under --data, (old, new): the clean file's path from the noisy's)
    "sidd-blocks": ("sidd_val_blocks/p1y2z3_SDAP/SIDD_noisy/*.png", ("SIDD_noisy", "SIDD_clean")),
    "sidd-crops": ("sidd_medium_crops_yilmazdoga/Noisy_Images/NOISY_*.png", ("Noisy_Images/NOISY_", "GT_Images/GT_")),
    "cc15": ("nam_cc15_mcwnnm/*/*_real.png", ("_real.png", "_mean.png")),
}


def rho(n: np.ndarray, k: int) -> float:
    """Correlation of n (H, W, C) with itself k pixels away, mean of both directions and channels."""
    out = []
    for c in range(n.shape[2]):
        for a, b in ((n[:, :-k, c], n[:, k:, c]), (n[:-k, :, c], n[k:, :, c])):
            a, b = a - a.mean(), b - b.mean()
            out.append(float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum())))
    return float(np.mean(out))


def row(name: str, est, truth: np.ndarray | None, seconds: float) -> str:
    t = (f"{truth.std():6.2f} {rho(truth, 1):5.2f} {rho(truth, 2):5.2f}" if truth is not None
         else f"{'':6s} {'':5s} {'':5s}")
    return (f"{name:34s} {t} | {est.sigma:6.2f} {est.rho1:5.2f} {est.rho2:5.2f} | "
            f"{seconds * 1e3 / max(est.pixels / 1e6, 1e-9):6.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--synthetic", action="store_true", help="also white (sigma 2/5/10) and 3x3-blurred noise")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'image':34s} {'truth: sigma rho1 rho2':22s} | {'measured: sigma rho1 rho2':26s} | ms/MP measured")
    for name, (pattern, (old, new)) in SETS.items():
        pairs = [(str(n), str(n).replace(old, new)) for n in sorted(Path(args.data).glob(pattern))]
        if not pairs:
            print(f"{name}: no files match {Path(args.data) / pattern}, skipped")
            continue
        errs = []
        for n, c in pairs:
            y = images.read_image(n).rgb
            x = images.read_image(c).rgb
            t0 = time.perf_counter()
            est = measure_noise(y)
            dt = time.perf_counter() - t0
            truth = (y.astype(np.float64) - x) * 255
            errs.append(est.sigma / truth.std() - 1)
            print(row(f"{name}/{Path(n).name}", est, truth, dt))
            if args.synthetic:
                for s in (2, 5, 10):
                    yn = add_noise(x, "white", s, rng)
                    print(row(f"  clean + white {s}", measure_noise(yn), (yn - x) * 255, 0))
                yb = add_noise(x, "box3", 8, rng)
                print(row("  clean + blurred 8", measure_noise(yb), (yb - x) * 255, 0))
                print(row("  clean", measure_noise(x), None, 0))
        print(f"{name}: sigma error mean {np.mean(errs) * 100:+.1f} %, range {min(errs) * 100:+.1f} .. "
              f"{max(errs) * 100:+.1f} %\n")


if __name__ == "__main__":
    main()
