"""What `--auto` costs per megapixel on this machine, as ratios to the fixed default in one run.

    python benchmarks/adaptive_cost.py [--size 2048x1536] [--threads 2] [--precision auto]

On a generated photo-like image (smooth shading, edges, white noise of std 5): the noise measurement,
the heavy path's network (the shipped student on CPU), the light path's network (the shipped teacher at
PD-1, no refinement), the Wiener blend and the teacher paths' low-frequency check, each timed after a warm-up,
best of --runs.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from student_candidates import best_time as best  # benchmarks/ is the script's folder, on sys.path

from sdap_cli.inference.adaptive import lowfreq_correct, wiener_blend
from sdap_cli.inference.checkpoints import load_weights, shipped_student_path
from sdap_cli.inference.denoiser import make_denoiser
from sdap_cli.inference.device import pick_precision
from sdap_cli.inference.noise import measure_noise


def photo(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w)
    img = np.stack([0.3 + 0.4 * xx, 0.25 + 0.5 * yy * xx, 0.6 - 0.3 * yy], -1)
    img += 0.2 * (np.sin(xx * 90) * np.cos(yy * 70) > 0.6)[..., None]
    rng = np.random.default_rng(0)
    return np.clip(img + rng.normal(0, 5 / 255, img.shape), 0, 1).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="2048x1536")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--runs", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    w, h = (int(v) for v in a.size.split("x"))
    y = photo(h, w)
    mp = h * w / 1e6
    prec = pick_precision(a.precision, torch.device("cpu"))
    heavy = make_denoiser(load_weights(shipped_student_path()).model, precision=prec)
    light = make_denoiser(load_weights(None).model, refine="none", pd=1, precision=prec)
    est = measure_noise(y)
    x_hat = light.denoise(y)
    rows = {
        "noise measurement": best(lambda: measure_noise(y), a.runs),
        "heavy path network (student)": best(lambda: heavy.denoise(y), a.runs),
        "light path network (teacher PD-1)": best(lambda: light.denoise(y), a.runs),
        "Wiener blend": best(lambda: wiener_blend(y, x_hat, est.sigma_map(x_hat)), a.runs),
        "low-frequency check": best(lambda: lowfreq_correct(y, x_hat, est.sigma_map(x_hat), est.rho1, est.rho2),
                                    a.runs),
    }
    base = rows["heavy path network (student)"]
    print(f"{w}x{h} ({mp:.1f} MP), {a.threads} threads, {prec}, torch {torch.__version__}")
    print(f"{'step':36s} {'s':>8s} {'s/MP':>8s} {'x student':>10s}")
    for k, v in rows.items():
        print(f"{k:36s} {v:8.2f} {v / mp:8.3f} {v / base:10.2f}")
    light_total = (rows["noise measurement"] + rows["light path network (teacher PD-1)"] + rows["Wiener blend"]
                   + rows["low-frequency check"])
    heavy_total = rows["noise measurement"] + base
    print(f"{'auto, heavy image (total)':36s} {heavy_total:8.2f} {heavy_total / mp:8.3f} {heavy_total / base:10.2f}")
    print(f"{'auto, light image (total)':36s} {light_total:8.2f} {light_total / mp:8.3f} {light_total / base:10.2f}")


if __name__ == "__main__":
    main()
