"""Plot validation PSNR against CPU hours for several `sdap train` / `sdap distill` run folders.

Usage: python scripts/training_curves.py RUN [RUN ...] --out docs/training-curves.png [--threads-note TEXT]
Needs matplotlib (``pip install matplotlib``). Reads each RUN/train_log.csv (elapsed_s includes the time
spent validating) and RUN/config.yaml (for the label). For `sdap train` runs the curve is the PSNR with E
(``val_psnr_e``), for `sdap distill` runs the student's PSNR (``val_psnr``). A resumed run's elapsed time
restarts at the resume; this script does not stitch such logs, so use it on uninterrupted runs.
"""

import argparse
import csv
from pathlib import Path

import yaml


def label(run: Path) -> str:
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    if "student" in cfg:
        s = cfg["student"]
        return (f"student {tuple(s['ch'])}/{tuple(s['blocks'])} distilled, "
                f"batch {cfg['batch']}, patch {cfg['patch']}, {cfg.get('threads') or 'all'} thread(s)")
    m = cfg["model"]
    return (f"DBSNl {m['base_ch']}/{m['num_module']}, batch {cfg['batch']}, patch {cfg['patch']}, "
            f"lr {cfg['lr']:g}, {cfg.get('threads') or 'all'} thread(s)")


def curve(run: Path) -> tuple[list[float], list[float]]:
    hours, psnr = [], []
    with open(run / "train_log.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            v = row.get("val_psnr_e") or row.get("val_psnr")
            if v:
                hours.append(float(row["elapsed_s"]) / 3600)
                psnr.append(float(v))
    return hours, psnr


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, default=Path("docs/training-curves.png"))
    ap.add_argument("--title", default="validation PSNR (5 SIDD blocks) against training time on this CPU")
    ap.add_argument("--noisy", type=float, default=22.15, help="PSNR of the noisy input, drawn as a line")
    a = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=120)
    for run in a.runs:
        h, p = curve(run)
        ax.plot(h, p, marker="o", markersize=3, label=label(run))
    ax.axhline(a.noisy, color="gray", linestyle="--", linewidth=1, label="noisy input")
    ax.set_xlabel("hours (wall clock, validation included)")
    ax.set_ylabel("PSNR dB (SDAP convention)")
    ax.set_title(a.title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0.2, 0.58))
    fig.tight_layout()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out)
    print(a.out)


if __name__ == "__main__":
    main()
