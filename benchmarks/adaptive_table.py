"""The adaptive-denoising table: every shared paired set, noisy input vs the fixed default (--no-auto)
vs the adaptive default, plus clean images sent through `sdap denoise` and scored against themselves.

    python benchmarks/adaptive_table.py [--data ../shared/data] [--out runs/adaptive_table] [-- EXTRA FLAGS]

Runs `sdap evaluate` (SDAP convention) once per set and mode, keeps each JSON under --out, and prints a
Markdown table: mean PSNR / SSIM, the worst image, how many images score below their noisy input, and
(adaptive) the paths taken. Identical outputs score inf dB and are counted separately.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETS = {  # name: (noisy, clean) relative to --data, or a glob of clean images copied to a folder under --out
    "SIDD validation blocks (5)": ("sidd_val_blocks/p1y2z3_SDAP/SIDD_noisy", "sidd_val_blocks/p1y2z3_SDAP/SIDD_clean"),
    "SIDD crops (8)": ("sidd_medium_crops_yilmazdoga/Noisy_Images", "sidd_medium_crops_yilmazdoga/GT_Images"),
    "SIDD validation pairs of 4 other images (65)": ("sidd_val_scoredvi/val/noisy", "sidd_val_scoredvi/val/GT"),
    "CC15 (15)": ("nam_cc15_mcwnnm/Real_ccnoise_denoised_part", "nam_cc15_mcwnnm/Real_ccnoise_denoised_part"),
    "clean: SIDD clean blocks (5)": "sidd_val_blocks/p1y2z3_SDAP/SIDD_clean/*.png",
    "clean: CC15 mean images (15)": "nam_cc15_mcwnnm/*/*_mean.png",
}


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


def clean_folder(data: Path, pattern: str, folder: Path) -> Path:
    """The clean images of ``pattern``, copied under plain names (no ``_mean``) to ``folder``/in and
    ``folder``/ref: the inputs, and the references they are scored against."""
    if folder.exists():
        shutil.rmtree(folder)
    for sub in ("in", "ref"):
        (folder / sub).mkdir(parents=True)
        for p in sorted(data.glob(pattern)):
            shutil.copy(p, folder / sub / p.name.replace("_mean", ""))
    return folder
MODES = {"fixed default (--no-auto)": ["--no-auto"], "adaptive default": []}


def evaluate(noisy: Path, clean: Path, flags: list[str], out: Path) -> dict:
    cmd = [sys.executable, "-m", "sdap_cli", "evaluate", "--noisy", str(noisy), "--clean", str(clean),
           "--json", str(out), "-q", *flags]
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def stats(rows: list[dict], key: str) -> tuple[float, float, int]:
    """(mean over finite values, min, number of identical images)."""
    vals = [r[key] for r in rows if r.get(key) is not None]
    inf = sum(1 for r in rows if r.get(key) is None and r.get("error") is None)
    return (sum(vals) / len(vals) if vals else math.inf), (min(vals) if vals else math.inf), inf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "adaptive_table")
    ap.add_argument("extra", nargs="*", help="flags added to every evaluate call (after --)")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    print("| set | mode | PSNR / SSIM (mean) | worst PSNR | below input | identical | paths |")
    print("|---|---|---|---|---|---|---|")
    for name, dirs in SETS.items():
        if isinstance(dirs, str):
            folder = clean_folder(a.data, dirs, a.out / slug(name))
            noisy, clean = folder / "in", folder / "ref"
        else:
            noisy, clean = a.data / dirs[0], a.data / dirs[1]
        if not noisy.is_dir():
            print(f"| {name} | skipped: {noisy} not found | | | | | |")
            continue
        for mode, flags in MODES.items():
            d = evaluate(noisy, clean, flags + a.extra, a.out / f"{slug(name + '_' + mode)}.json")
            rows = d["images"]
            p, worst, ident = stats(rows, "psnr")
            s = sum(r["ssim"] for r in rows if r.get("ssim") is not None) / max(len(rows), 1)
            below = sum(1 for r in rows if r.get("psnr") is not None and r.get("psnr_in") is not None
                        and r["psnr"] < r["psnr_in"])
            paths = {}
            for r in rows:
                if r.get("path"):
                    paths[r["path"]] = paths.get(r["path"], 0) + 1
            if mode == list(MODES)[0] and not name.startswith("clean"):
                pi, wi, _ = stats(rows, "psnr_in")
                si = sum(r["ssim_in"] for r in rows) / len(rows)
                print(f"| {name} | noisy input | {pi:.2f} / {si:.3f} | {wi:.2f} | | | |")
            print(f"| {name} | {mode} | {p:.2f} / {s:.3f} | {worst:.2f} | {below} | {ident} | "
                  f"{', '.join(f'{k} {v}' for k, v in sorted(paths.items()))} |")


if __name__ == "__main__":
    main()
