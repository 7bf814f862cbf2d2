"""Issue 35's study: which lever moves the one-pass student on phone noise, better targets or more compute
per pixel? One row per student file (an arm), one table, and a plot of PSNR on the 65 SIDD validation pairs
against KMAC per pixel.

    python benchmarks/heavy_noise_study.py --arm "today=weights/sdap_student.safetensors" \\
        --arm "wider 2x=runs/cap_wide2/last.safetensors" [--arm ...] [--data ../shared/data] \\
        [--results runs/study.json] [--plot docs/heavy-noise-study.svg] [--no-time]

Each arm runs as the CPU default would run it as the shipped student (``onepass_table.denoiser``). Columns:

* KMAC per pixel: multiply-accumulates of the network's convolutions per input pixel, counted by hooks on a
  64x64 input (the student's pixel-unshuffle makes it exact for any 8-aligned size), and its parameters;
* 65 SIDD validation pairs, 5 SIDD blocks, CC15: mean PSNR (SDAP convention), CC15 with the images that
  come out below their input;
* DND: residual noise of the outputs of the 97 shared crops (``estimate_sigma``, 0-255), max and mean;
* 12 MP: seconds for a 12 MP photo from ``sdap benchmark -w FILE --sizes 12mp`` (a fresh process, torch at
  the default precision on this machine; the shipped student itself runs on OpenVINO by default, which
  ``--runtime`` rows of ``sdap benchmark`` time).

``--results`` keeps each arm's figures (keyed by label and the file's SHA-256), so adding an arm measures
only that arm. The plot is a hand-written SVG (no plotting dependency): one point per arm, labelled.
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
from sdap_cli.inference.noise import COND_CH
from sdap_cli.training.distill import file_hash

SETS = {
    "65 SIDD pairs": ("sidd_val_scoredvi/val/noisy", "sidd_val_scoredvi/val/GT"),
    "5 SIDD blocks": ("sidd_val_blocks/p1y2z3_SDAP/SIDD_noisy", "sidd_val_blocks/p1y2z3_SDAP/SIDD_clean"),
    "CC15": ("nam_cc15_mcwnnm/Real_ccnoise_denoised_part", "nam_cc15_mcwnnm/Real_ccnoise_denoised_part"),
}


def kmac_per_pixel(model: torch.nn.Module) -> float:
    """Convolution MACs per input pixel / 1000, counted on one 64x64 input."""
    total = 0

    def hook(m, _inp, out):
        nonlocal total
        total += out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    cond = getattr(model, "cond_ch", 0)
    with torch.no_grad():
        y = torch.rand(1, 3, 64, 64)
        model(y, torch.rand(1, COND_CH, 64, 64)) if cond else model(y)
    for h in hs:
        h.remove()
    return total / (64 * 64) / 1e3


def seconds_12mp(path: str) -> float | None:
    """Median seconds of a 12 MP photo, from ``sdap benchmark`` in a fresh process (None if it failed)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "b.json"
        r = subprocess.run([sys.executable, "-m", "sdap_cli", "benchmark", "-w", path, "--sizes", "12mp",
                            "--no-roofline", "--warmup", "1", "--json", str(out)], capture_output=True, text=True)
        if r.returncode or not out.is_file():
            print(f"  sdap benchmark failed: {r.stderr.strip().splitlines()[-1:]}", flush=True)
            return None
        rows = json.loads(out.read_text())
        rows = rows.get("rows", rows) if isinstance(rows, dict) else rows
        ms = [row.get("ms") or row.get("ms_per_image") for row in rows if isinstance(row, dict)]
        ms = [m for m in ms if m]
        return float(np.median(ms)) / 1e3 if ms else None


def measure(path: str, data: Path, time_it: bool) -> dict:
    loaded = load_weights(path)
    den = denoiser(path)
    row = {"kmac": kmac_per_pixel(loaded.model), "params": sum(p.numel() for p in loaded.model.parameters()),
           "arch": loaded.model.arch}
    for name, (noisy, clean) in SETS.items():
        row[name] = pairs_row(den, data, noisy, clean)
        print(f"  {name}: {row[name]}", flush=True)
    row["DND"] = dnd_row(den, data)
    print(f"  DND: {row['DND']}", flush=True)
    row["12 MP s"] = seconds_12mp(path) if time_it else None
    return row


def svg_plot(rows: dict[str, dict], out: Path) -> None:
    """PSNR on the 65 pairs against KMAC per pixel, one labelled point per arm (log x)."""
    pts = [(lab, r["kmac"], float(r["65 SIDD pairs"].split()[0])) for lab, r in rows.items()]
    w, h, m = 640, 400, 60
    xs, ys = np.log2([p[1] for p in pts]), [p[2] for p in pts]
    x0, x1 = np.floor(min(xs)) - 0.25, np.ceil(max(xs)) + 0.25
    y0, y1 = np.floor(min(ys) * 10 - 1) / 10, np.ceil(max(ys) * 10 + 1) / 10

    def px(lx: float) -> float:
        return m + (lx - x0) / (x1 - x0) * (w - 2 * m)

    def py(v: float) -> float:
        return h - m - (v - y0) / (y1 - y0) * (h - 2 * m)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" '
             f'font-size="12"><rect width="{w}" height="{h}" fill="white"/>',
             f'<line x1="{m}" y1="{h - m}" x2="{w - m}" y2="{h - m}" stroke="black"/>',
             f'<line x1="{m}" y1="{m}" x2="{m}" y2="{h - m}" stroke="black"/>',
             f'<text x="{w / 2}" y="{h - 15}" text-anchor="middle">KMAC per pixel (log scale)</text>',
             f'<text x="15" y="{h / 2}" transform="rotate(-90 15 {h / 2})" text-anchor="middle">'
             'PSNR dB, 65 SIDD validation pairs</text>']
    for e in range(int(x0) + 1, int(x1) + 1):
        parts.append(f'<text x="{px(e):.1f}" y="{h - m + 16}" text-anchor="middle">{2 ** e}</text>')
    for v in np.arange(y0, y1 + 1e-9, 0.1):
        parts.append(f'<text x="{m - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{v:.1f}</text>'
                     f'<line x1="{m}" y1="{py(v):.1f}" x2="{w - m}" y2="{py(v):.1f}" stroke="#ddd"/>')
    for (lab, _, v), lx in zip(pts, xs):
        parts.append(f'<circle cx="{px(lx):.1f}" cy="{py(v):.1f}" r="4" fill="#1f77b4"/>'
                     f'<text x="{px(lx) + 7:.1f}" y="{py(v) - 6:.1f}">{lab} ({v:.2f})</text>')
    parts.append("</svg>\n")
    out.write_text("\n".join(parts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arm", action="append", required=True, help="LABEL=FILE (a student .safetensors)")
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--results", type=Path, default=None, help="JSON kept between runs (one entry per arm)")
    ap.add_argument("--plot", type=Path, default=None, help="write the SVG plot here")
    ap.add_argument("--no-time", action="store_true", help="skip the 12 MP timing")
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
        svg_plot(rows, a.plot)
        print(f"plot: {a.plot}")


if __name__ == "__main__":
    main()
