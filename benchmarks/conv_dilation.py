"""Throughput of one 128->128 3x3 convolution, the op that holds ~73 % of DBSNl's MACs, on this machine.

Usage:
    python benchmarks/conv_dilation.py [--side 192] [--threads 2] [--runs 5]

Times dilation 1, 2 and 3 (DBSNl's branches use 2 and 3) and the space-to-batch form of a dilated conv
(the d x d phases stacked in the batch, then a dilation-1 conv), in fp32 and bf16 autocast, channels_last,
and prints GMAC/s. It answers two questions for docs/performance.md: does dilation cost oneDNN anything
(no: all four are within a few percent), and how close to the FMA peak a single conv already runs.
"""

from __future__ import annotations

import argparse
import time

import torch


def _time(fn, runs: int) -> float:
    fn()
    fn()
    t0 = time.perf_counter()
    for _ in range(runs):
        fn()
    return (time.perf_counter() - t0) / runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=192)
    ap.add_argument("--channels", type=int, default=128)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    c, s = a.channels, a.side
    x = torch.randn(1, c, s, s).contiguous(memory_format=torch.channels_last)
    macs = c * c * 9 * s * s
    print(f"threads {torch.get_num_threads()}, torch {torch.__version__}, {c}->{c} 3x3 on {s}x{s}")
    for bf16 in (False, True):
        for d in (1, 2, 3):
            for s2b in ((False, True) if d > 1 else (False,)):
                conv = torch.nn.Conv2d(c, c, 3, padding=1 if s2b else d, dilation=1 if s2b else d)
                conv = conv.to(memory_format=torch.channels_last)
                inp = x
                if s2b:         # (1, C, H, W) -> (d*d, C, H/d, W/d): each phase is a dilation-1 problem
                    h = s // d * d
                    inp = (x[..., :h, :h].reshape(1, c, h // d, d, h // d, d).permute(0, 3, 5, 1, 2, 4)
                           .reshape(d * d, c, h // d, h // d).contiguous(memory_format=torch.channels_last))
                with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    t = _time(lambda: conv(inp), a.runs)
                name = f"dilation {d}" + (" as space-to-batch" if s2b else "")
                print(f"{'bf16' if bf16 else 'fp32'}  {name:28s} {t * 1e3:7.1f} ms  {macs / t / 1e9:6.1f} GMAC/s")


if __name__ == "__main__":
    main()
