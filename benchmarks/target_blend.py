"""How much of each path's Wiener blend the one-pass student's real-image targets should get (issue 32).

    python benchmarks/target_blend.py [--data ../shared/data] [--cache runs/cache] [--teacher FILE] [--light FILE]

Builds the targets of ``training/onepass.path_target`` from the teachers' outputs cached by ``sdap distill``
(``--cache``; a missing one is skipped and counted) for light-path amounts 1, 0.5, 0.25, 0 (the heavy path's
blend at 1 and 0), and prints, per amount: CC15 targets' PSNR against the CC15 means (SDAP convention) and how
many come out below their noisy input; the DND crops' targets' residual noise (``estimate_sigma``, 0-255,
max and mean, as ``onepass_table.py`` measures outputs; needs PyWavelets).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from skimage.restoration import estimate_sigma

from sdap_cli.evaluation.metrics import psnr_ssim
from sdap_cli.io.folders import find_images
from sdap_cli.io.images import read_image
from sdap_cli.io.samples import to_unit
from sdap_cli.inference.adaptive import choose_path
from sdap_cli.inference.noise import measure_noise
from sdap_cli.training.distill import file_hash
from sdap_cli.training.onepass import path_target

ROOT = Path(__file__).resolve().parents[1]
AMOUNTS = (1.0, 0.5, 0.25, 0.0)


def cached(cache: Path, f: Path, key: str) -> np.ndarray | None:
    e = cache / f"{f.stem}-{file_hash(f)[:16]}-{key}.npy"
    return np.load(e).astype(np.float32) if e.is_file() else None


def u8(a: np.ndarray) -> np.ndarray:
    return (np.clip(a, 0, 1) * 255).round().astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--cache", type=Path, default=ROOT / "runs" / "cache")
    ap.add_argument("--teacher", type=Path, default=ROOT / "training" / "teacher_96_7" / "latest.safetensors")
    ap.add_argument("--light", type=Path, default=ROOT / "weights" / "sdap_default.safetensors")
    a = ap.parse_args()
    heavy_key, light_key = f"{file_hash(a.teacher)[:12]}-e-bf16", f"{file_hash(a.light)[:12]}-pd1-none-bf16"

    def targets(f: Path, y: np.ndarray, heavy_amount: float):
        h, est = cached(a.cache, f, heavy_key), measure_noise(y)
        light = cached(a.cache, f, light_key)
        if h is None or (light is None and choose_path(est) == "light"):
            return None
        return [path_target(y, h, lambda: light, est, (am, heavy_amount))[0] for am in AMOUNTS]

    for heavy_amount in (1.0, 0.0):
        cc, ins, missing = [], [], 0
        for f in sorted((a.data / "nam_cc15_mcwnnm").rglob("*_real.png")):
            y, g = to_unit(read_image(f).rgb), read_image(Path(str(f).replace("_real", "_mean"))).rgb
            ts = targets(f, y, heavy_amount)
            if ts is None:
                missing += 1
                continue
            ins.append(psnr_ssim(u8(y), g, "sdap")[0])
            cc.append([psnr_ssim(u8(t), g, "sdap")[0] for t in ts])
        dnd = []
        for f in find_images(a.data / "dnd_patches_cbdnet") + find_images(a.data / "dnd_noac"):
            ts = targets(f, to_unit(read_image(f).rgb), heavy_amount)
            if ts is None:
                missing += 1
                continue
            dnd.append([float(np.mean(estimate_sigma(t, channel_axis=-1))) * 255 for t in ts])
        cc, dnd = np.array(cc), np.array(dnd)
        print(f"heavy blend x{heavy_amount:g} ({len(cc)} CC15, {len(dnd)} DND targets; {missing} not cached; "
              f"CC15 inputs {np.mean(ins):.2f} dB)")
        print("| light blend | CC15 targets dB (below input) | DND targets residual max / mean |")
        print("|---|---|---|")
        for k, am in enumerate(AMOUNTS):
            below = int((cc[:, k] < np.array(ins)).sum()) if len(cc) else 0
            print(f"| {am:g} | {cc[:, k].mean() if len(cc) else float('nan'):.2f} ({below}) | "
                  f"{dnd[:, k].max() if len(dnd) else float('nan'):.2f} / {dnd[:, k].mean() if len(dnd) else float('nan'):.2f} |")


if __name__ == "__main__":
    main()
