"""Plot validation PSNR against CPU hours for several `sdap train` / `sdap distill` run folders.

Usage: python scripts/training_curves.py RUN [RUN ...] --out docs/training-curves.png
A RUN written RUN@H starts at H hours (a run that continues another one's weights with --init).
Needs matplotlib (``pip install matplotlib``). Reads each RUN/train_log.csv (elapsed_s includes the time
spent validating) and RUN/config.yaml (for the label). For `sdap train` runs the curve is the PSNR with E
(``val_psnr_e``), for `sdap distill` runs the student's PSNR (``val_psnr``). A resumed run's elapsed time
restarts at the resume; such logs are stitched (each resumed segment continues from the last elapsed time
logged before it), so the time between the stop and the resume is not counted.
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
            f"lr {cfg['lr']:g} {cfg.get('schedule', 'constant')}, {cfg.get('threads') or 'all'} thread(s)")


def curve(run: Path) -> tuple[list[float], list[float]]:
    hours, psnr = [], []
    offset, last = 0.0, 0.0
    with open(run / "train_log.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            t = float(row["elapsed_s"])
            if t + offset < last:  # elapsed restarted: a resumed segment
                offset = last
            last = t + offset
            v = row.get("val_psnr_e") or row.get("val_psnr")
            if v:
                hours.append(last / 3600)
                psnr.append(float(v))
    return hours, psnr


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--out", type=Path, default=Path("docs/training-curves.png"))
    ap.add_argument("--title", default="validation PSNR (5 SIDD blocks) against training time on this CPU")
    ap.add_argument("--noisy", type=float, default=22.15, help="PSNR of the noisy input, drawn as a line")
    a = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10.5, 4.6), dpi=120)
    for spec in a.runs:
        path, _, start = spec.partition("@")
        run = Path(path)
        h, p = curve(run)
        h = [t + float(start or 0) for t in h]
        name = label(run) + (f", --init at {float(start):.2f} h" if start else "")
        ax.plot(h, p, marker="o", markersize=3, label=name)
    ax.axhline(a.noisy, color="gray", linestyle="--", linewidth=1, label="noisy input")
    ax.set_xlabel("hours (wall clock, validation included)")
    ax.set_ylabel("PSNR dB (SDAP convention)")
    ax.set_title(a.title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out)
    print(a.out)


if __name__ == "__main__":
    main()
