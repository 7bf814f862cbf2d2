"""The CPU default's quality on each runtime (issue 34): the same images through `sdap denoise`'s default with
``--runtime torch`` (bf16: the default before), ``onnxruntime`` (fp32) and ``openvino`` (bf16 here), in one run.

Usage:
    python benchmarks/runtime_quality.py [--data ../shared/data] [--runtimes torch,onnxruntime,openvino]

Rows (PSNR dB, 8-bit outputs, mean over the images): the 5 SIDD validation blocks, the 15 CC15 pairs (both real
noise against references), the 24 Kodak photos clean through the default (scored against themselves: the detail
it keeps) and with white noise of std 2 and 5 added (seeded, 8-bit; output minus input PSNR), and the largest
difference of each runtime's outputs from torch's (8-bit levels). Prints one table.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import cv2
import numpy as np

from sdap_cli.api import Denoiser

REPO = Path(__file__).resolve().parents[1]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255 ** 2 / mse)


def rgb(p: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)


def sets(data: Path) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """(noisy, clean) 8-bit pairs per row."""
    blocks = data / "sidd_val_blocks" / "p1y2z3_SDAP"
    cc = data / "nam_cc15_mcwnnm" / "Real_ccnoise_denoised_part"
    kodak = sorted((data / "clean_photos" / "Kodak24").glob("*.png"))
    out = {"SIDD blocks": [(rgb(n), rgb(blocks / "SIDD_clean" / n.name))
                           for n in sorted((blocks / "SIDD_noisy").glob("*.png"))],
           "CC15": [(rgb(n), rgb(Path(str(n).replace("_real", "_mean")))) for n in sorted(cc.glob("*_real.png"))],
           "Kodak24 clean": [(c, c) for c in map(rgb, kodak)]}
    for s in (2, 5):
        rng = np.random.default_rng(s)
        out[f"Kodak24 white {s}"] = [(np.clip(np.round(c + rng.normal(0, s, c.shape)), 0, 255).astype(np.uint8), c)
                                     for c in map(rgb, kodak)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--runtimes", default="torch,onnxruntime,openvino")
    a = ap.parse_args()
    data = sets(a.data)
    names = a.runtimes.split(",")
    rows, outputs = {}, {}
    for rt in names:
        den = Denoiser(runtime=rt)
        label = f"{den.runtime} {den.precision}"
        for name, pairs in data.items():
            outs = [den(n) for n, _ in pairs]
            outputs[(rt, name)] = outs
            gain = "white" in name
            vals = [psnr(o, c) - (psnr(n, c) if gain else 0) for o, (n, c) in zip(outs, pairs)]
            finite = [v for v in vals if math.isfinite(v)]
            rows.setdefault(name, {})[label] = f"{np.mean(finite):.3f}" + \
                (f" ({len(vals) - len(finite)} identical)" if len(finite) < len(vals) else "")
        print(f"{label}: done", flush=True)
    labels = list(next(iter(rows.values())))
    print("| set | " + " | ".join(labels) + " |\n|---|" + "---|" * len(labels))
    for name, r in rows.items():
        print(f"| {name}{' (gain over input)' if 'white' in name else ''} | " + " | ".join(r[l] for l in labels) + " |")
    if names[0] == "torch":
        for rt in names[1:]:
            d = max(int(np.abs(o.astype(int) - t).max()) for name in data
                    for o, t in zip(outputs[(rt, name)], outputs[("torch", name)]))
            print(f"largest difference {rt} - torch: {d} levels")


if __name__ == "__main__":
    main()
