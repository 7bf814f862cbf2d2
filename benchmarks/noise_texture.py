"""Does texture fool the noise reading? ``measure_noise`` on clean detailed photos with known noise added,
and on real noisy photos against their truth (issue 32).

    python benchmarks/noise_texture.py [--data ../shared/data] [--levels 0,2,5,10,15,25] [--kinds white,signal,box]

Clean photos: every image under ``clean_photos/`` (Kodak24, McMaster18, Set14 and Urban100 subsets), with
noise of each kind and std S added (``training.synthetic.add_noise``, seeded per photo and S; S = 0 is the
photo itself, whose own film grain counts as error): per set and S the median and 90th percentile of
|read - S| and the largest reading above S (0-255 levels). Real pairs (the 65 SIDD validation pairs, the
5 SIDD blocks, the 8 SIDD crops, CC15): read / truth - 1, truth = std of noisy - clean.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sdap_cli.inference.noise import measure_noise
from sdap_cli.io import images
from sdap_cli.io.samples import to_unit
from sdap_cli.training.synthetic import add_noise

PAIRS = {  # name: (glob under --data, (old, new) to get the clean file's path)
    "sidd-val-65": ("sidd_val_scoredvi/val/noisy/*.png", ("/noisy/", "/GT/")),
    "sidd-blocks": ("sidd_val_blocks/p1y2z3_SDAP/SIDD_noisy/*.png", ("SIDD_noisy", "SIDD_clean")),
    "sidd-crops": ("sidd_medium_crops_yilmazdoga/Noisy_Images/NOISY_*.png", ("Noisy_Images/NOISY_", "GT_Images/GT_")),
    "cc15": ("nam_cc15_mcwnnm/*/*_real.png", ("_real.png", "_mean.png")),
}


def clean_table(data: Path, levels: list[float], kinds: list[str]) -> list[str]:
    lines = [f"{'set':22s} {'kind':6s} {'S':>4s} | {'median |read-S|':>15s} {'p90':>6s} {'max over':>8s}"]
    for folder in sorted(p for p in (data / "clean_photos").iterdir() if p.is_dir()):
        photos = [to_unit(images.read_image(f).rgb) for f in sorted(folder.iterdir())]
        for kind in kinds:
            for s in levels:
                if s == 0 and kind != kinds[0]:
                    continue
                err = []
                for i, x in enumerate(photos):
                    y = x if s == 0 else add_noise(x, kind, s, np.random.default_rng([i, int(s * 10)]))
                    err.append(measure_noise(y).sigma - s)
                err = np.asarray(err)
                lines.append(f"{folder.name:22s} {kind if s else '-':6s} {s:4g} | {np.median(np.abs(err)):15.2f} "
                             f"{np.percentile(np.abs(err), 90):6.2f} {err.max():+8.2f}")
    return lines


def pairs_table(data: Path) -> list[str]:
    lines = [f"{'real set':22s} {'n':>3s} | read / truth - 1: {'median':>7s} {'min':>6s} {'max':>6s}"]
    for name, (pattern, (old, new)) in PAIRS.items():
        rel = []
        for n in sorted(data.glob(pattern)):
            y = to_unit(images.read_image(n).rgb)
            x = to_unit(images.read_image(str(n).replace(old, new)).rgb)
            rel.append(measure_noise(y).sigma / (255 * float(np.std(y.astype(np.float64) - x))) - 1)
        if rel:
            lines.append(f"{name:22s} {len(rel):3d} | {'':17s} {np.median(rel) * 100:+6.0f}% {min(rel) * 100:+5.0f}% "
                         f"{max(rel) * 100:+5.0f}%")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--levels", default="0,2,5,10,15,25")
    ap.add_argument("--kinds", default="white,signal,box")
    args = ap.parse_args()
    if not (args.data / "clean_photos").is_dir():
        raise SystemExit(f"no clean_photos folder under {args.data}")
    levels = [float(v) for v in args.levels.split(",")]
    print("\n".join(clean_table(args.data, levels, args.kinds.split(","))))
    print()
    print("\n".join(pairs_table(args.data)))


if __name__ == "__main__":
    main()
