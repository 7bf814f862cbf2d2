"""The figures of issue 32 (detail is not noise) for the CPU default and the teacher's auto paths, in one table.

    python benchmarks/detail_table.py [--data ../shared/data] [--student FILE|none ...] [--teacher] [--threads 2]
                                      [--sets held,trained,kodak]

Clean detailed photos (``clean_photos/``: Kodak24, McMaster18, Set14 and Urban100 subsets), split as the
one-pass training split them (``HELD_OUT``: never trained on; the rest: trained on), and Kodak24 whole (the
issue's set). For each student (as the CPU default runs it: ``onepass_table.denoiser``) and, with
``--teacher``, the shipped teacher's automatic paths (CUDA's default until issue 32; run on the CPU in fp32 as
``sdap denoise -w weights/sdap_default.safetensors`` runs them: the teacher on phone-like noise from level 8
up, the shipped student told the noise on the rest, see ``denoisers.light_path_network``):

* clean: each photo through the default, PSNR against itself (an identical output counts as 60 dB),
  mean and worst;
* white 5: noise of std 5 added (seeded per photo, rounded to 8 bits): mean input and output PSNR, the
  worst image's gain, and how many come out below their input;
* white 15 / 25 and 3x3-box-correlated 15: mean output PSNR;
* gray 15: the photo's gray copy (``synthetic.gray_copy``, read as RGB: three equal channels) with white noise
  of std 15 equal in the three channels, as a noisy gray image is read: mean output PSNR against the gray copy.

PSNR is the SDAP convention (8-bit, whole image). Each row is printed as it is measured, then the table.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from lowfreq_table import print_table  # beside this script (benchmarks/)
from onepass_table import denoiser, run

from sdap_cli.config import InferenceConfig
from sdap_cli.evaluation.metrics import psnr_ssim
from sdap_cli.inference.checkpoints import load_weights
from sdap_cli.inference.denoisers import build_denoiser
from sdap_cli.io.images import read_image
from sdap_cli.io.samples import to_unit
from sdap_cli.training.synthetic import add_noise, gray_copy

# Held out of the one-pass training (the rest of clean_photos/ was trained on): paths under clean_photos/
HELD_OUT = tuple(f"Kodak24/kodim{i:02d}.png" for i in range(17, 25)) + tuple(
    f"McMaster18/{i}.tif" for i in range(13, 19)) + ("Set14_colour_subset/barbara.png", "Urban100_subset/img_100.png")
CAP = 60.0


def photos(data: Path, which: str) -> list[np.ndarray]:
    root = data / "clean_photos"
    files = sorted(p for p in root.glob("*/*") if p.is_file())
    rel = [str(p.relative_to(root)) for p in files]
    if which == "held":
        pick = [f for f, r in zip(files, rel) if r in HELD_OUT]
    elif which == "trained":
        pick = [f for f, r in zip(files, rel) if r not in HELD_OUT]
    else:
        pick = [f for f in files if f.parent.name == "Kodak24"]
    return [to_unit(read_image(f).rgb) for f in pick]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    p = psnr_ssim(a, b, "sdap")[0]
    return CAP if not math.isfinite(p) else min(p, CAP)


def clean_row(den, xs) -> str:
    ps = [psnr(run(den, x), x) for x in xs]
    return f"{np.mean(ps):.2f} / worst {min(ps):.2f}"


def noisy(x: np.ndarray, i: int, kind: str, std: float) -> np.ndarray:
    return add_noise(x, kind, std, np.random.default_rng([11, i, int(std * 10)]))


def white5_row(den, xs) -> str:
    ins, outs = [], []
    for i, x in enumerate(xs):
        y = noisy(x, i, "white", 5)
        ins.append(psnr(y, x))
        outs.append(psnr(run(den, y), x))
    gains = np.subtract(outs, ins)
    return (f"{np.mean(ins):.2f} -> {np.mean(outs):.2f} ({np.mean(gains):+.2f}; worst {gains.min():+.2f}; "
            f"{int((gains < 0).sum())} below)")


def level_row(den, xs, kind: str, std: float) -> str:
    return f"{np.mean([psnr(run(den, noisy(x, i, kind, std)), x) for i, x in enumerate(xs)]):.2f}"


def gray_row(den, xs, std: float = 15) -> str:
    ps = []
    for i, x in enumerate(xs):
        g = gray_copy(x)
        y = np.repeat(noisy(g, i, "white", std)[..., :1], 3, axis=2)
        ps.append(psnr(run(den, y), g))
    return f"{np.mean(ps):.2f}"


def teacher_default():
    """The shipped teacher's automatic paths (``-w weights/sdap_default.safetensors``) on the CPU, fp32."""
    loaded = load_weights(str(Path(__file__).resolve().parents[1] / "weights" / "sdap_default.safetensors"))
    return build_denoiser(loaded, InferenceConfig(precision="fp32"), torch.device("cpu"), given=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--student", action="append", default=None)
    ap.add_argument("--teacher", action="store_true", help="also the shipped teacher's automatic paths")
    ap.add_argument("--sets", default="held,trained,kodak")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    students = a.student or [str(Path(__file__).resolve().parents[1] / "weights" / "sdap_student.safetensors")]
    students = [s for s in students if s != "none"]                 # --student none: the teacher's rows only
    sets = {w: photos(a.data, w) for w in a.sets.split(",")}
    names = {"held": f"held out ({len(sets.get('held', []))})", "trained": f"trained on ({len(sets.get('trained', []))})",
             "kodak": "Kodak24 (24)"}
    files = [Path(s).name for s in students]                       # a file's name, or its folder's where names repeat
    dens = [(n if files.count(n) == 1 else f"{Path(s).parent.name}/{n}", denoiser(s)) for n, s in zip(files, students)]
    if a.teacher:
        dens.append(("teacher paths (-w sdap_default)", teacher_default()))
    rows = {}
    for label, den in dens:
        rows[label] = {}
        for w, xs in sets.items():
            measures = {"clean": lambda: clean_row(den, xs), "white 5": lambda: white5_row(den, xs)}
            if not label.startswith("teacher"):
                measures |= {"white 15": lambda: level_row(den, xs, "white", 15),
                             "white 25": lambda: level_row(den, xs, "white", 25),
                             "box 15": lambda: level_row(den, xs, "box", 15), "gray 15": lambda: gray_row(den, xs)}
            for k, m in measures.items():
                rows[label][f"{names[w]}: {k}"] = m()
                print(f"{label} | {names[w]}: {k} | {rows[label][f'{names[w]}: {k}']}", flush=True)
    for r in rows.values():                       # the teacher's rows lack the noisy levels
        for k in {k for rr in rows.values() for k in rr}:
            r.setdefault(k, "-")
    print_table(rows)


if __name__ == "__main__":
    main()
