"""Issue 35's study: which lever moves the one-pass student on phone noise, better targets or more compute
per pixel? One row per student file (an arm), one table, and a plot of PSNR on the 65 SIDD validation pairs
against KMAC per pixel.

    python benchmarks/heavy_noise_study.py --arm "today=weights/sdap_student.safetensors" \\
        --arm "wider 2x=runs/cap_wide2/last.safetensors" [--arm ...] [--data ../shared/data] \\
        [--results runs/study.json] [--plot docs/heavy-noise-study.png] [--no-time] [--retime]

Each arm runs as the CPU default would run it as the shipped student (``onepass_table.denoiser``). Columns:

* KMAC per pixel: the network's own analytic count (``macs_per_pixel``, what ``sdap benchmark`` counts), and
  its parameters;
* 65 SIDD validation pairs, 5 SIDD blocks, CC15: mean PSNR (SDAP convention), CC15 with the images that
  come out below their input;
* DND: residual noise of the outputs of the 97 shared crops (``estimate_sigma``, 0-255), max and mean;
* 12 MP: seconds for a 12 MP photo, the mean of 3 runs of ``sdap benchmark -w FILE --sizes 12mp --runs 3``
  (a fresh process per arm, torch at
  the default precision on this machine; the shipped student itself runs on OpenVINO by default, which
  ``--runtime`` rows of ``sdap benchmark`` time).

``--results`` keeps each arm's figures (keyed by label and the file's SHA-256), so adding an arm measures
only that arm. The plot is drawn with Pillow (no plotting dependency): one point per arm, labelled.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from onepass_table import denoiser, dnd_row, pairs_row  # beside this script (benchmarks/)

from sdap_cli.inference.checkpoints import load_weights
from sdap_cli.training.distill import file_hash

SETS = {
    "65 SIDD pairs": ("sidd_val_scoredvi/val/noisy", "sidd_val_scoredvi/val/GT"),
    "5 SIDD blocks": ("sidd_val_blocks/p1y2z3_SDAP/SIDD_noisy", "sidd_val_blocks/p1y2z3_SDAP/SIDD_clean"),
    "CC15": ("nam_cc15_mcwnnm/Real_ccnoise_denoised_part", "nam_cc15_mcwnnm/Real_ccnoise_denoised_part"),
}


def seconds_12mp(path: str) -> float | None:
    """Mean seconds of 3 runs on a 12 MP photo, from ``sdap benchmark`` in a fresh process (None if it failed)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "b.json"
        r = subprocess.run([sys.executable, "-m", "sdap_cli", "benchmark", "-w", path, "--sizes", "12mp",
                            "--no-roofline", "--warmup", "1", "--runs", "3", "--json", str(out)],
                           capture_output=True, text=True)
        if r.returncode or not out.is_file():
            print(f"  sdap benchmark failed: {r.stderr.strip().splitlines()[-1:]}", flush=True)
            return None
        return json.loads(out.read_text())["rows"][0]["ms"] / 1e3       # one size, one precision: one row


def measure(path: str, data: Path, time_it: bool) -> dict:
    loaded = load_weights(path)
    den = denoiser(path)
    row = {"kmac": loaded.model.macs_per_pixel() / 1e3, "params": sum(p.numel() for p in loaded.model.parameters()),
           "arch": loaded.model.arch}
    for name, (noisy, clean) in SETS.items():
        row[name] = pairs_row(den, data, noisy, clean)
        print(f"  {name}: {row[name]}", flush=True)
    row["DND"] = dnd_row(den, data)
    print(f"  DND: {row['DND']}", flush=True)
    row["12 MP s"] = seconds_12mp(path) if time_it else None
    return row


def plot(rows: dict[str, dict], out: Path) -> None:
    """PSNR on the 65 pairs against KMAC per pixel (log x), one numbered point per arm, drawn with Pillow, and a
    legend of the numbers on the right."""
    from PIL import Image, ImageDraw, ImageFont

    pts = [(lab, r["kmac"], float(r["65 SIDD pairs"].split()[0])) for lab, r in rows.items()]
    w, h, m, right = 1100, 460, 70, 500
    font = ImageFont.load_default(size=13)
    xs, ys = np.log2([p[1] for p in pts]), [p[2] for p in pts]
    x0, x1 = np.floor(min(xs)) - 0.3, np.ceil(max(xs)) + 0.3
    y0, y1 = np.floor(min(ys) * 20 - 1) / 20, np.ceil(max(ys) * 20 + 1) / 20

    def px(lx: float) -> float:
        return m + (lx - x0) / (x1 - x0) * (w - m - right)

    def py(v: float) -> float:
        return h - m - (v - y0) / (y1 - y0) * (h - 2 * m)

    im = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(im)
    for v in np.arange(y0, y1 + 1e-9, 0.05):
        d.line([(m, py(v)), (w - right, py(v))], fill="#e4e4e4")
        d.text((m - 8, py(v)), f"{v:.2f}", fill="black", anchor="rm", font=font)
    for e in range(int(np.ceil(x0)), int(np.floor(x1)) + 1):
        d.text((px(e), h - m + 8), f"{2 ** e}", fill="black", anchor="mt", font=font)
    d.line([(m, h - m), (w - right, h - m)], fill="black")
    d.line([(m, m), (m, h - m)], fill="black")
    d.text(((m + w - right) / 2, h - 25), "KMAC per pixel (log scale)", fill="black", anchor="mm", font=font)
    d.text((m, 25), "PSNR dB on the 65 SIDD validation pairs, each arm from the shipped student (issue 35)",
           fill="black", anchor="lm", font=font)
    legend = m                                                # numbered points, a legend on the right
    for i, ((lab, k, v), lx) in enumerate(zip(pts, xs), 1):
        x, y = px(lx), py(v)
        d.ellipse([x - 4, y - 4, x + 4, y + 4], fill="#1f77b4")
        d.text((x + 6 + 9 * (i % 2), y - 9 + 18 * (i % 2)), str(i), fill="#1f4f84", anchor="mm", font=font)
        d.text((w - right + 20, legend), f"{i}  {lab}: {v:.2f} dB, {k:.0f} KMAC", fill="black", anchor="lm",
               font=font)
        legend += 20
    im.save(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arm", action="append", required=True, help="LABEL=FILE (a student .safetensors)")
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--results", type=Path, default=None, help="JSON kept between runs (one entry per arm)")
    ap.add_argument("--plot", type=Path, default=None, help="write the plot here (PNG)")
    ap.add_argument("--no-time", action="store_true", help="skip the 12 MP timing")
    ap.add_argument("--retime", action="store_true", help="time every arm again (one quiet sitting)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    kept = json.loads(a.results.read_text()) if a.results and a.results.is_file() else {}
    rows = {}
    for arm in a.arm:
        label, _, path = arm.partition("=")
        key = f"{label}|{file_hash(path)}"
        if key not in kept or (kept[key].get("12 MP s") is None and not a.no_time):
            print(f"{label}: {path}", flush=True)
            kept[key] = measure(path, a.data, not a.no_time)
        elif a.retime:
            kept[key]["12 MP s"] = seconds_12mp(path)
            print(f"{label}: 12 MP {kept[key]['12 MP s']} s", flush=True)
        if a.results:
            a.results.write_text(json.dumps(kept, indent=1))
        rows[label] = kept[key]
    print("\n| arm | channels | blocks | KMAC / pixel | parameters | 65 SIDD pairs | 5 SIDD blocks | CC15 | DND "
          "residual | 12 MP s |\n|---|---|---|---|---|---|---|---|---|---|")
    for label, r in rows.items():
        t = f"{r['12 MP s']:.2f}" if r.get("12 MP s") else "-"
        print(f"| {label} | {','.join(map(str, r['arch']['ch']))} | {','.join(map(str, r['arch']['blocks']))} | "
              f"{r['kmac']:.1f} | {r['params']:,} | {r['65 SIDD pairs']} | {r['5 SIDD blocks']} | {r['CC15']} | "
              f"{r['DND']} | {t} |")
    if a.plot:
        plot(rows, a.plot)
        print(f"plot: {a.plot}")


if __name__ == "__main__":
    main()
