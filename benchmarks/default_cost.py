"""The CPU default's cost per photo for several student files, as ratios to the first, in one run (issue 35's
and issue 32's budget: a new default within 1.3x today's time on a 12 MP photo).

    python benchmarks/default_cost.py FILE [FILE ...] [--size 3000x4000] [--runs 3] [--runtime openvino]
                                      [--threads 2]

Each file runs as ``sdap denoise`` runs the shipped student on the CPU: its graph on ``--runtime`` (OpenVINO,
bf16 where the CPU has it; ``onnxruntime``; or ``torch``, bf16), the noise measured on the whole photo, the
tiles, the maps; no blend (a mid-grey photo with light texture: the one-pass path). One warm-up on a small
photo, then ``--runs`` timed runs of the whole size; the first file is timed again last, so the drift of the
machine during the run shows. Prints one row per file: seconds (mean and each run), KMAC per pixel, ratio to
the first file's mean over both its timings. Graphs are cached in ``$SDAP_CACHE_DIR`` (set it to keep the
user's cache clean).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from sdap_cli.config import InferenceConfig
from sdap_cli.inference.checkpoints import load_weights
from sdap_cli.inference.denoisers import build_denoiser
from sdap_cli.inference.runtime import RuntimeDenoiser, open_graph


def network(path: str, runtime: str, threads: int):
    """The student of ``path`` as the CPU default runs it on ``runtime``."""
    if runtime == "torch":
        return build_denoiser(load_weights(path), InferenceConfig(auto=False, threads=threads), torch.device("cpu"),
                              given=True)
    sess, info = open_graph(Path(path), threads, runtime, "auto")
    return RuntimeDenoiser(sess, info, path, 1.0, runtime)


def seconds(den, image: np.ndarray, runs: int) -> list[float]:
    den.denoise(image[: min(512, image.shape[0]), : min(512, image.shape[1])])
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        den.denoise(image)
        out.append(time.perf_counter() - t)
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--size", default="3000x4000", help="HxW of the photo (12 MP by default)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--runtime", default="openvino", choices=("openvino", "onnxruntime", "torch"))
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    h, w = (int(v) for v in a.size.lower().split("x"))
    rng = np.random.default_rng(0)
    image = np.clip(0.5 + 0.05 * rng.standard_normal((h, w, 3)), 0, 1).astype(np.float32)
    order = list(a.files) + [a.files[0]]
    times: dict[str, list[float]] = {}
    for f in order:
        times.setdefault(f, []).extend(seconds(network(f, a.runtime, a.threads), image, a.runs))
    base = float(np.mean(times[a.files[0]]))
    rows = []
    print(f"| file | KMAC/px | s per {h}x{w} ({a.runtime}) | runs | ratio |")
    print("|---|---|---|---|---|")
    for f in a.files:
        kmac = load_weights(f).model.macs_per_pixel() / 1e3
        mean = float(np.mean(times[f]))
        rows.append({"file": f, "kmac": kmac, "seconds": mean, "runs": times[f], "ratio": mean / base})
        print(f"| {f} | {kmac:.1f} | {mean:.3f} | {', '.join(f'{t:.3f}' for t in times[f])} | {mean / base:.2f}x |")
    return rows


if __name__ == "__main__":
    main()
