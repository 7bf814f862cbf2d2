"""How good are the distillation targets? Each target of ``sdap distill`` (training/distill.py TARGETS) of
each teacher, scored on a paired set; the teachers' mean per target (what ``--ensemble`` trains on); and
the per-pixel mean and median of all of them.

    python benchmarks/target_quality.py NOISY_DIR CLEAN_DIR -t TEACHER [-t TEACHER2 ...] \
        [--targets teacher,phase3] [--refine e] [--threads N]
    python benchmarks/target_quality.py NOISY_DIR CLEAN_DIR -t TEACHER --self-ensemble   # 1, 2, 4, 8 flips

A student trained with the sum of L1 over K targets is pulled towards their per-pixel median; one trained
on an ensemble target towards the teachers' mean. So these rows bound what each choice of targets can
teach. PSNR dB / SSIM, SDAP convention (uint8 RGB).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from sdap_cli.evaluation.evalsets import load_paired_folders
from sdap_cli.evaluation.metrics import psnr_ssim
from sdap_cli.inference.checkpoints import load_weights
from sdap_cli.inference.denoiser import Denoiser
from sdap_cli.inference.device import pick_precision
from sdap_cli.training.distill import DIHEDRAL, TARGETS, target_image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("noisy", type=Path)
    ap.add_argument("clean", type=Path)
    ap.add_argument("-t", "--teacher", type=Path, action="append", required=True)
    ap.add_argument("--targets", default="teacher")
    ap.add_argument("--refine", default="e", help="comma list (e, r3, none): each a denoiser of each teacher")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--self-ensemble", action="store_true",
                    help="score each teacher's self-ensemble of 1, 2, 4 and 8 flips and transposes (DIHEDRAL)")
    args = ap.parse_args()
    if args.self_ensemble:
        args.targets = ",".join(DIHEDRAL)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.targets.split(",")
    unknown = [n for n in names if n not in TARGETS or n == "auto"]
    if unknown:
        raise SystemExit(f"--targets: unknown {unknown}; choose from {[t for t in TARGETS if t != 'auto']}")
    precision = pick_precision("auto", torch.device("cpu"))
    dens = {}
    refines = args.refine.split(",")
    for path in args.teacher:
        lw = load_weights(path)
        for refine in refines:                                  # each (teacher, refine) is one denoiser
            key = path.stem if len(refines) == 1 else f"{path.stem} {refine}"
            dens[key] = Denoiser(lw.model, input_scale=lw.input_scale, refine=refine, precision=precision)
    rows: dict[str, list[tuple[float, float]]] = {}
    pairs = load_paired_folders(args.noisy, args.clean)          # paired by name, as sdap evaluate pairs them
    for name, y, ref in zip(pairs.names, pairs.noisy, pairs.clean):
        outs = {(t, n): target_image(d, n, y) for t, d in dens.items() for n in names}
        if args.self_ensemble:                                 # running means: the self-ensemble of n
            scored = {f"{t}: self-ensemble of {n}": np.mean([outs[t, k] for k in DIHEDRAL[:n]], 0)
                      for t in dens for n in (1, 2, 4, 8)}
        else:
            scored = {f"{t}: {n}": o for (t, n), o in outs.items()}
            if len(dens) > 1:
                scored.update({f"mean of the {len(dens)} denoisers: {n}": np.mean([outs[t, n] for t in dens], 0)
                               for n in names})
            stack = np.stack(list(outs.values()))
            if len(names) > 1:
                scored[f"mean of all {len(outs)}"] = stack.mean(0)
            if len(outs) > 2:
                scored[f"median of all {len(outs)}"] = np.median(stack, 0)
        for k, o in scored.items():
            rows.setdefault(k, []).append(psnr_ssim(o, ref))
        print(f"{name}: " + ", ".join(f"{k} {v[-1][0]:.2f}" for k, v in rows.items()), flush=True)
    print("\n| target | PSNR | SSIM |\n|---|---|---|")
    for k, v in rows.items():
        p, s = np.mean(v, axis=0)
        print(f"| {k} | {p:.2f} | {s:.3f} |")


if __name__ == "__main__":
    main()
