"""How strongly does the noise-conditional student smooth at the level it is told? (issue 32)

    python benchmarks/told_level.py [--data ../shared/data] [--student FILE] [--stds 15,25] \
        [--factors 0.7,1,1.3] [--photos Kodak24/kodim17.png,...] [--threads 2]

White Gaussian noise of each std S (``onepass_table.white_noisy``: seeded per photo, rounded to 8 bits) on clean detailed photos (by default
the 8 Kodak24 photos the one-pass training holds out). The student runs once on the whole photo (cropped to a
multiple of 8) with the maps ``sdap denoise`` tells it (``measure_noise(y).condition(y)``), and once per
factor f with the maps of a flat level f x S and no correlation (the truth at f = 1). Mean output PSNR (SDAP
convention) per row. A student that is best told less than the truth smooths more than the noise asks for.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch
from onepass_table import white_noisy  # beside this script (benchmarks/)

from sdap_cli.evaluation.metrics import psnr_ssim
from sdap_cli.inference.checkpoints import load_weights
from sdap_cli.inference.noise import measure_noise
from sdap_cli.io.images import read_image

HELD_OUT_KODAK = tuple(f"Kodak24/kodim{i:02d}.png" for i in range(17, 25))


def run(net: torch.nn.Module, y: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """The student's output for ``y`` told ``maps`` (both ``(H, W, C)``, H and W multiples of 8), in [0, 1]."""
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float()  # noqa: E731
    with torch.no_grad():
        return np.clip(net(t(y), t(maps))[0].permute(1, 2, 0).numpy(), 0, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--student", default=str(Path(__file__).resolve().parents[1] / "weights" / "sdap_student.safetensors"))
    ap.add_argument("--stds", default="15,25")
    ap.add_argument("--factors", default="0.7,1,1.3")
    ap.add_argument("--photos", default=",".join(HELD_OUT_KODAK))
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    net = load_weights(a.student).model.eval()
    factors = [float(f) for f in a.factors.split(",")]
    rows: dict[str, list[float]] = {}
    for i, name in enumerate(a.photos.split(",")):
        x = read_image(a.data / "clean_photos" / name).rgb
        x = x[:x.shape[0] // 8 * 8, :x.shape[1] // 8 * 8]
        for s in (float(v) for v in a.stds.split(",")):
            y = white_noisy(x, s, i)
            est = measure_noise(y)
            rows.setdefault(f"white {s:g}: input", []).append(psnr_ssim(y, x, "sdap")[0])
            rows.setdefault(f"white {s:g}: told the reading", []).append(
                psnr_ssim(run(net, y, est.condition(y)), x, "sdap")[0])
            rows.setdefault(f"white {s:g}: the reading (level)", []).append(est.sigma)
            for f in factors:
                told = dataclasses.replace(est, nlf=np.full_like(est.nlf, f * s), rho1=0.0, rho2=0.0)
                rows.setdefault(f"white {s:g}: told {f:g} x S", []).append(
                    psnr_ssim(run(net, y, told.condition(y)), x, "sdap")[0])
        print(f"{name}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in rows.items()), flush=True)
    print(f"\n| {Path(a.student).name}, {len(a.photos.split(','))} photos | mean |\n|---|---|")
    for k, v in rows.items():
        print(f"| {k} | {np.mean(v):.2f} |")


if __name__ == "__main__":
    main()
