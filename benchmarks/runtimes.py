"""The CPU default's network on each runtime, in one run (issue 34): torch bf16 and fp32, ONNX Runtime fp32,
OpenVINO f32 and bf16.

Usage:
    python benchmarks/runtimes.py [--quick] [--threads N] [--runs 3] [--json out.json]

Each runtime runs in a process of its own (so its import and first call are a fresh process's), on the
shipped student's graph as `sdap denoise` runs it: the same tiles (``tiling.run_tiles``), the noise measured
and told to the network (what ``sdap benchmark`` times), no blend. Per runtime:

* ``import``: seconds to import the runtime's package in a fresh interpreter that has numpy already (median
  of 3; torch for the torch rows, ``onnxruntime``, ``openvino``);
* ``setup``: building the network (torch: loading the weights; the others: opening the cached graph and
  compiling it); ``first``: the first 1 MP image, which pays each runtime's one-time work per shape;
* per size (1 MP = 1024x1024; 12 MP = 4000x3000, tiled as sdap tiles it): the best of ``--runs`` (one run
  at 12 MP, after one tile of its shape), GMAC/s of the network's analytic count over the image's pixels
  (tile overlap not credited, as ``sdap benchmark``) and the fraction of this machine's 3x3 convolution
  roofline in that precision (``inference.roofline``, measured first, in its own process);
* ``max diff``: the largest difference from torch fp32 on the 1 MP image (float samples).

OpenVINO rows need ``pip install '.[openvino]'`` (skipped with a note without it). ``--quick``: 512x512
and 1 MP, the best of 2 runs. Prints one table (and writes ``--json``). Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RUNTIMES = ["torch-bf16", "torch-fp32", "onnxruntime-fp32", "openvino-f32", "openvino-bf16"]
SIZES = {"512": (512, 512), "1mp": (1024, 1024), "12mp": (3000, 4000)}
PACKAGE = {"torch": "torch", "onnxruntime": "onnxruntime", "openvino": "openvino"}


def image(h: int, w: int) -> np.ndarray:
    """A float32 photo-like image with noise of std 10 (8-bit units), deterministic."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w)
    clean = np.stack([0.3 + 0.4 * xx, 0.5 + 0.2 * np.sin(9 * yy), 0.6 - 0.3 * xx * yy], -1)
    return np.clip(clean + rng.normal(0, 10 / 255, clean.shape).astype(np.float32), 0, 1)


def make_denoiser(runtime: str, threads: int):
    """(denoise(image) -> float32 image, the network's MACs per pixel) for ``runtime``."""
    from sdap_cli.inference.checkpoints import shipped_student_path
    from sdap_cli.inference.runtime import RuntimeDenoiser, cache_path, graph_key, open_graph

    name, precision = runtime.split("-")
    weights = shipped_student_path()
    if name == "torch":
        import torch

        from sdap_cli.inference.checkpoints import load_weights
        from sdap_cli.inference.denoiser import make_denoiser as make

        torch.set_num_threads(threads)
        model = load_weights(weights).model
        den = make(model, precision=precision)
        return den.denoise, model.macs_per_pixel()
    sess, info = open_graph(weights, threads)           # builds the cached graph if needed (torch, once)
    den = RuntimeDenoiser(sess, info)
    if name == "openvino":
        import openvino as ov

        core = ov.Core()
        compiled = core.compile_model(core.read_model(str(cache_path(weights, graph_key(weights)))), "CPU",
                                      {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": threads,
                                       "PERFORMANCE_HINT": "LATENCY"})
        request = compiled.create_infer_request()

        class Session:              # the three inputs by position, as ONNX Runtime takes them by name
            def run(self, _, feeds):
                return [request.infer([feeds["tile"], feeds["table"], feeds["rho"]])[0].copy()]
        den.session = Session()
    return den.denoise, float(info["macs_per_pixel"])


def child(runtime: str, sizes: list[str], runs: int, threads: int, save: Path) -> dict:
    """One runtime in this process: setup, first call, best times per size; its 1 MP output saved to ``save``."""
    t0 = time.perf_counter()
    denoise, macs = make_denoiser(runtime, threads)
    out = {"runtime": runtime, "setup_s": time.perf_counter() - t0, "macs_per_pixel": macs, "sizes": {}}
    one = image(*SIZES["1mp"])
    t0 = time.perf_counter()
    first = denoise(one)
    out["first_s"] = time.perf_counter() - t0
    np.save(save, first)
    for size in sizes:
        h, w = SIZES[size]
        img = one if size == "1mp" else image(h, w)
        if h * w >= 4_000_000:
            denoise(img[:2048, :2048])                  # warm up on one tile's shape
        times = []
        for _ in range(1 if h * w >= 4_000_000 else runs):
            t0 = time.perf_counter()
            denoise(img)
            times.append(time.perf_counter() - t0)
        t = min(times)
        out["sizes"][size] = {"s": t, "gmac_per_s": h * w * macs / t / 1e9}
    return out


def import_seconds(package: str) -> float | None:
    """Median of 3 fresh interpreters (numpy imported first, as sdap has it) timing ``import package``."""
    code = f"import numpy, time; t = time.perf_counter(); import {package}; print(time.perf_counter() - t)"
    got = []
    for _ in range(3):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if r.returncode:
            return None
        got.append(float(r.stdout))
    return statistics.median(got)


def roofline(threads: int) -> dict:
    code = ("import json, torch; torch.set_num_threads(%d)\nfrom sdap_cli.inference.roofline import roofline\n"
            "best, _ = roofline(torch.device('cpu'), ['bf16', 'fp32'])\n"
            "print(json.dumps({p: r.gmac_per_s for p, r in best.items()}))" % threads)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def table(rows: list[dict], roof: dict, sizes: list[str]) -> str:
    head = ["runtime", "import s", "setup s", "first 1 MP s"] + \
        [f"{s} {k}" for s in sizes for k in ("s", "GMAC/s", "roof")] + ["max diff vs torch fp32"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['runtime']} | {r['skipped']} |" + " |" * (len(head) - 2))
            continue
        prec = "bf16" if r["runtime"].endswith("bf16") else "fp32"
        cells = [r["runtime"], f"{r['import_s']:.2f}" if r.get("import_s") is not None else "-",
                 f"{r['setup_s']:.2f}", f"{r['first_s']:.2f}"]
        for s in sizes:
            v = r["sizes"][s]
            cells += [f"{v['s']:.3f}", f"{v['gmac_per_s']:.0f}", f"{v['gmac_per_s'] / roof[prec]:.2f}"]
        cells.append(f"{r['max_diff']:.1e}" if r.get("max_diff") is not None else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="512x512 and 1 MP, the best of 2 runs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--runtimes", default=",".join(RUNTIMES))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--save", type=Path, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    sizes = ["512", "1mp"] if a.quick else ["1mp", "12mp"]
    runs = 2 if a.quick else a.runs             # the best of 2: a shape's first call builds its kernels
    if a.child:
        print(json.dumps(child(a.child, sizes, runs, a.threads, a.save)))
        return
    subprocess.run([sys.executable, "-c", "from sdap_cli.inference.runtime import open_graph\n"
                    "from sdap_cli.inference.checkpoints import shipped_student_path\n"
                    "open_graph(shipped_student_path())"], check=True)     # the cached graph, built once here
    roof = roofline(a.threads)
    print(f"roofline (3x3 convolution, torch, {a.threads} threads): bf16 {roof['bf16']:.0f}, "
          f"fp32 {roof['fp32']:.0f} GMAC/s", flush=True)
    rows, work = [], Path(tempfile.mkdtemp(prefix="sdap-runtimes-"))
    for rt in a.runtimes.split(","):
        package = PACKAGE[rt.split("-")[0]]
        if import_seconds(package) is None:
            rows.append({"runtime": rt, "skipped": f"skipped: {package} is not installed"})
            continue
        cmd = [sys.executable, __file__, "--child", rt, "--threads", str(a.threads), "--runs", str(runs),
               "--save", str(work / f"{rt}.npy")]
        r = subprocess.run(cmd + (["--quick"] if a.quick else []), capture_output=True, text=True)
        if r.returncode:
            rows.append({"runtime": rt, "skipped": f"failed: {r.stderr.strip().splitlines()[-1][:80]}"})
            continue
        row = json.loads(r.stdout.strip().splitlines()[-1])
        row["import_s"] = import_seconds(package)
        rows.append(row)
        print(f"{rt}: done", flush=True)
    ref = work / "torch-fp32.npy"
    for row in rows:
        mine = work / f"{row['runtime']}.npy"
        if "skipped" not in row and ref.exists() and mine.exists():
            row["max_diff"] = float(np.abs(np.load(mine) - np.load(ref)).max())
    print(table(rows, roof, sizes))
    if a.json:
        a.json.write_text(json.dumps({"roofline": roof, "threads": a.threads, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
