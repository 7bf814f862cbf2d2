"""Plot megapixels per second by image size and mode from `sdap benchmark --json` files.

Usage: python benchmarks/plot_performance.py BENCH.json [MORE.json ...] --out docs/performance.png
Needs matplotlib (``pip install matplotlib``; not a dependency of sdap). One line per (network, refine,
precision) setting, MP/s on a log axis against the image size in megapixels.
"""

import argparse
import json
from collections import defaultdict
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("json", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, default=Path("docs/performance.png"))
    ap.add_argument("--title", default="sdap denoise throughput")
    a = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = defaultdict(list)
    env = None
    for f in a.json:
        data = json.loads(f.read_text())
        env = env or data["env"]
        for r in data["rows"]:
            if r["error"]:
                continue
            model = {"default": "teacher", "full": "paper DBSNl"}.get(r["model"], r["model"])
            refine = {"e": "PD-2 + E", "none": "PD-2", "r3": "PD-2 + R3"}.get(r["refine"], "")
            name = "student" if r["refine"] == "student" else f"{model} {refine}"
            series[f"{name}, {r['precision']}"].append((r["height"] * r["width"] / 1e6, r["mpix_per_s"]))
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for label, pts in sorted(series.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    from matplotlib.ticker import FuncFormatter

    ticks = [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]
    for axis in (ax.xaxis, ax.yaxis):
        lo, hi = axis.get_view_interval()
        axis.set_ticks([t for t in ticks if lo <= t <= hi])
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_xlabel("image size (megapixels)")
    ax.set_ylabel("megapixels per second")
    ax.set_title(f"{a.title}\n{env['cpu']}, {env['threads']} threads, torch {env['torch']}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out)
    print(a.out)


if __name__ == "__main__":
    main()
