"""Why the student is StudentUNet (32, 64, 128) / (1, 1, 2): CPU speed of candidate widths and depths.

Usage: python benchmarks/student_candidates.py [--size 1024] [--threads N] [--precision bf16] [--json F]

For each candidate: parameters, analytic KMAC per pixel (``StudentUNet.macs_per_pixel``), ms per
megapixel of one forward on a size x size frame (channels_last, inference_mode, best of 3 after a
warm-up) and the achieved GMAC/s; and, in the same run, the shipped teacher (DBSNl, PD-2 + E: two
passes) for the speed ratio. Untrained networks: this measures cost, not quality.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from sdap_cli.inference.checkpoints import load_weights
from sdap_cli.inference.denoiser import Denoiser
from sdap_cli.method.dbsnl import macs_per_pixel
from sdap_cli.method.student import StudentUNet

CANDIDATES = {
    "narrow (24,48,96)/(1,1,2)": ((24, 48, 96), (1, 1, 2)),
    "shipped (32,64,128)/(1,1,2)": ((32, 64, 128), (1, 1, 2)),
    "first distilled (32,64,128)/(1,2,3)": ((32, 64, 128), (1, 2, 3)),
    "deeper (32,64,128)/(2,2,2)": ((32, 64, 128), (2, 2, 2)),
    "wide (48,96,192)/(1,1,2)": ((48, 96, 192), (1, 1, 2)),
    "wide top (64,96,128)/(1,1,2)": ((64, 96, 128), (1, 1, 2)),
}


def best_time(fn, runs: int = 3) -> float:
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dtype = torch.bfloat16 if a.precision == "bf16" else torch.float32
    mp = a.size * a.size / 1e6
    x = torch.rand(1, 3, a.size, a.size).to(dtype).contiguous(memory_format=torch.channels_last)
    rows = []
    for name, (ch, blocks) in CANDIDATES.items():
        net = StudentUNet(ch=ch, blocks=blocks).eval()
        kmac = net.macs_per_pixel() / 1e3
        params = sum(p.numel() for p in net.parameters()) / 1e6
        net = net.to(dtype).to(memory_format=torch.channels_last)
        with torch.inference_mode():
            t = best_time(lambda: net(x))
        rows.append({"name": name, "params_m": params, "kmac_per_px": kmac, "ms_per_mp": t * 1e3 / mp,
                     "gmac_per_s": kmac * 1e3 * a.size * a.size / t / 1e9})
    teacher = load_weights(None).model
    den = Denoiser(teacher, refine="e", precision=a.precision)
    img = np.random.default_rng(0).random((a.size, a.size, 3), dtype=np.float32)
    t = best_time(lambda: den.denoise(img, tile=4096), runs=1)
    kmac = 2 * macs_per_pixel(teacher) / 1e3
    rows.append({"name": f"teacher DBSNl {teacher.base_ch}/{teacher.num_module}, PD-2 + E",
                 "params_m": sum(p.numel() for p in teacher.parameters()) / 1e6, "kmac_per_px": kmac,
                 "ms_per_mp": t * 1e3 / mp, "gmac_per_s": kmac * 1e3 * a.size * a.size / t / 1e9})
    tms = rows[-1]["ms_per_mp"]
    print(f"{a.size}x{a.size}, {a.precision}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"{'candidate':36s} {'params M':>8s} {'KMAC/px':>8s} {'ms/MP':>8s} {'GMAC/s':>7s} {'x teacher':>9s}")
    for r in rows:
        r["speed_vs_teacher"] = tms / r["ms_per_mp"]
        print(f"{r['name']:36s} {r['params_m']:8.2f} {r['kmac_per_px']:8.1f} {r['ms_per_mp']:8.0f} "
              f"{r['gmac_per_s']:7.0f} {r['speed_vs_teacher']:9.1f}")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
