"""Where a network's time goes, layer by layer, against this machine's convolution roofline, in one run.

Usage:
    python benchmarks/layer_rates.py --model full --precision fp32 --size 512      # the paper's 128/9, PD-2 + E
    python benchmarks/layer_rates.py --model student --precision bf16 --size 1632x1224

Each convolution is timed by forward hooks around the module (plain layers: ``fused`` off and the student's
NCHW ``forward``, so every convolution is a module call; the ReLUs, adds, shuffles between them are
"other"; the fused, decoded-layout path `sdap denoise` takes is faster than this), over one whole denoise
(``Denoiser.denoise``: PD, tiling, refinement as `sdap denoise` runs them) after a warm-up. Layers of one
shape are summed. Each row: share of the time, MACs, GMAC/s and that rate over the roofline
(``inference.roofline``) measured first in the same process. The last lines: the whole pass's rate and the
time it would take if every convolution ran at the roofline.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sdap_cli.inference.checkpoints import load_weights, shipped_student_path  # noqa: E402
from sdap_cli.inference.denoiser import make_denoiser  # noqa: E402
from sdap_cli.inference.memory import reuse_freed_memory  # noqa: E402
from sdap_cli.inference.roofline import roofline  # noqa: E402
from sdap_cli.method.dbsnl import DBSNl  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["full", "default", "student"], default="full")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--size", default="512", help="N or WxH")
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    reuse_freed_memory()
    if a.threads:
        torch.set_num_threads(a.threads)
    w, h = (int(v) for v in (a.size.lower().split("x") if "x" in a.size else (a.size, a.size)))
    if a.model == "full":
        torch.manual_seed(0)
        net = DBSNl()
    else:
        net = load_weights(shipped_student_path() if a.model == "student" else None).model
    den = make_denoiser(net, precision=a.precision)
    net.fused, den.hwc = False, False                       # every convolution a module call, for the hooks
    best, _ = roofline(torch.device("cpu"), [a.precision])
    roof = best[a.precision].gmac_per_s
    img = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
    den.denoise(img)                                        # warm-up: oneDNN builds its kernels
    spent: dict[str, float] = defaultdict(float)
    macs: dict[str, float] = defaultdict(float)
    started: dict[int, float] = {}

    def pre(m, inp):
        started[id(m)] = time.perf_counter()

    def post(m, inp, out):
        key = (f"{m.in_channels}->{m.out_channels} {m.kernel_size[0]}x{m.kernel_size[1]}"
               f"{' d' + str(m.dilation[0]) if m.dilation[0] > 1 else ''}"
               f"{' s' + str(m.stride[0]) if m.stride[0] > 1 else ''} at {out.shape[-2]}x{out.shape[-1]}")
        spent[key] += time.perf_counter() - started.pop(id(m))
        macs[key] += out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]

    hooks = [f(m) for m in net.modules() if isinstance(m, torch.nn.Conv2d)
             for f in (lambda m: m.register_forward_pre_hook(pre), lambda m: m.register_forward_hook(post))]
    t0 = time.perf_counter()
    den.denoise(img)
    total = time.perf_counter() - t0
    for hk in hooks:
        hk.remove()
    conv_t = sum(spent.values())
    print(f"{a.model} {a.precision} {w}x{h}, {torch.get_num_threads()} threads; roofline {roof:.0f} GMAC/s "
          f"({best[a.precision].channels} channels at {best[a.precision].side}^2)")
    print(f"{'convolution':>34} {'time %':>7} {'ms':>8} {'GMAC':>8} {'GMAC/s':>7} {'of roof':>7}")
    for key in sorted(spent, key=spent.get, reverse=True):
        r = macs[key] / spent[key] / 1e9
        print(f"{key:>34} {100 * spent[key] / total:7.1f} {1000 * spent[key]:8.0f} {macs[key] / 1e9:8.1f} "
              f"{r:7.0f} {r / roof:7.2f}")
    all_macs = sum(macs.values())
    print(f"{'other (ReLU, adds, PD, tiles, I/O)':>34} {100 * (total - conv_t) / total:7.1f} "
          f"{1000 * (total - conv_t):8.0f}")
    print(f"whole denoise {total:.2f} s, {all_macs / total / 1e9:.0f} GMAC/s = {all_macs / total / 1e9 / roof:.2f} "
          f"of the roofline; every convolution at the roofline: {all_macs / roof / 1e9:.2f} s")


if __name__ == "__main__":
    main()
