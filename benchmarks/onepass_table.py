"""The figures of issue 27 for the CPU default (`sdap denoise` with --auto), for one or more student files.

    python benchmarks/onepass_table.py [--data ../shared/data] [--student FILE ...] [--threads 2]

Each student runs as the CPU default would with it as the shipped student: a noise-conditional one in one
pass for every image that is not clean, an unconditioned one on the heavy path with the shipped teacher's
light path beside it. Rows (SDAP convention; PSNR dB):

* SIDD blocks (5), SIDD validation pairs of 4 other images (65), CC15 (15): mean PSNR, and the images
  that come out below their noisy input;
* clean photos sent through and scored against themselves (the 5 SIDD clean blocks and the 3 CC15 d600
  means are held out of the one-pass training; the 12 other CC15 means and 8 SIDD crop GTs were its
  clean photos): mean and worst (identical outputs, inf dB, are counted apart);
* the same for the 65 references of the SIDD validation pairs (held out too; SIDD's references keep
  some of the phone's grain: 49 of the 65 read a level above 2, 25 above 3);
* white noise of std 2 and 5 (seeded, rounded to 8 bits) on those clean photos: mean output PSNR minus
  mean input PSNR, and the worst image's output minus its input;
* colour: the 24-colour chart of ``lowfreq_table.py`` under phone-like noise of std 8 and 20: gain over the
  input and the largest shift of a square's mean colour (levels);
* DND (the 33 + 64 shared crops, no references): the residual noise of the output, the wavelet-MAD
  estimate ``skimage.restoration.estimate_sigma`` (mean over channels, 0-255; it needs PyWavelets,
  ``pip install PyWavelets``), max and mean.

An unconditioned student runs as the previous default did: its light path without the low-frequency check.

Each row is printed as it is measured (``student | set | figure``), then the table.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from lowfreq_table import chart, max_shift, noisy, print_table  # beside this script (benchmarks/)
from skimage.restoration import estimate_sigma

from sdap_cli.config import InferenceConfig
from sdap_cli.evaluation.evalsets import load_paired_folders
from sdap_cli.evaluation.metrics import psnr_ssim
from sdap_cli.inference.checkpoints import LoadedWeights, load_weights
from sdap_cli.inference.denoisers import build_denoiser, denoise_image
from sdap_cli.io.folders import find_images
from sdap_cli.io.images import read_image

HELD_OUT_CLEAN = ("sidd_val_blocks/p1y2z3_SDAP/SIDD_clean", "nam_cc15_mcwnnm/Real_ccnoise_denoised_part/d600*_mean.png")
SIDD_REFERENCES = "sidd_val_scoredvi/val/GT"
TRAINED_CLEAN = ("sidd_medium_crops_yilmazdoga/GT_Images", "nam_cc15_mcwnnm/Real_ccnoise_denoised_part/[5d][dm8]*_mean.png")


def denoiser(path: str):
    loaded = load_weights(path)
    den = build_denoiser(LoadedWeights(loaded.model, loaded.input_scale, loaded.source, loaded.path,
                                       loaded.metadata), InferenceConfig(), torch.device("cpu"), given=False)
    if not den.heavy.conditional:
        den.lowfreq_k = None
    return den


def run(den, y: np.ndarray) -> np.ndarray:
    out, _, _ = denoise_image(den, y, InferenceConfig())
    return out


def pairs_row(den, data: Path, noisy: str, clean: str) -> str:
    s = load_paired_folders(data / noisy, data / clean)
    res = [(psnr_ssim(run(den, y), x, "sdap")[0], psnr_ssim(y, x, "sdap")[0]) for y, x in zip(s.noisy, s.clean)]
    return f"{np.mean([r[0] for r in res]):.2f} ({sum(r[0] < r[1] for r in res)} below input)"


def clean_images(data: Path, patterns) -> list[np.ndarray]:
    files = []
    for p in patterns:
        files += sorted(data.glob(p)) if "*" in p else find_images(data / p)
    return [read_image(f).rgb for f in files]


def clean_row(den, xs: list[np.ndarray]) -> str:
    ps = [psnr_ssim(run(den, x), x, "sdap")[0] for x in xs]
    finite = [p for p in ps if math.isfinite(p)]
    return f"{np.mean(finite):.2f} / worst {min(finite):.2f} ({len(ps) - len(finite)} identical)"


def white_noisy(x: np.ndarray, std: float, i: int) -> np.ndarray:
    """``x`` in [0, 1] with white Gaussian noise of ``std`` (0-255 scale), seeded by photo number ``i`` and
    ``std``, rounded to 8 bits: float32 in [0, 1]."""
    rng = np.random.default_rng([7, i, int(std * 10)])
    return (np.clip(np.rint((x + rng.normal(0, std / 255, x.shape)) * 255), 0, 255) / 255).astype(np.float32)


def white_row(den, xs: list[np.ndarray], std: float) -> str:
    gains, ins, outs = [], [], []
    for i, x in enumerate(xs):
        y = white_noisy(x, std, i)
        p_in, p_out = psnr_ssim(y, x, "sdap")[0], psnr_ssim(run(den, y), x, "sdap")[0]
        ins.append(p_in)
        outs.append(p_out)
        gains.append(p_out - p_in)
    return f"{np.mean(outs) - np.mean(ins):+.2f} (input {np.mean(ins):.2f}; worst {min(gains):+.2f})"


def chart_row(den, std: float) -> str:
    x = chart()
    y = noisy(x, std, np.random.default_rng(int(std)), phone=True)
    out = run(den, y)
    return f"{psnr_ssim(out, x, 'sdap')[0] - psnr_ssim(y, x, 'sdap')[0]:+.2f} (shift {max_shift(out, x):.1f})"


def dnd_row(den, data: Path) -> str:
    files = find_images(data / "dnd_patches_cbdnet") + find_images(data / "dnd_noac")
    s = [float(np.mean(estimate_sigma(run(den, read_image(f).rgb), channel_axis=-1))) * 255 for f in files]
    return f"max {max(s):.2f}, mean {np.mean(s):.2f} ({len(s)} crops)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--student", action="append", default=None)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    students = a.student or [str(Path(__file__).resolve().parents[1] / "weights" / "sdap_student.safetensors")]
    held, trained = clean_images(a.data, HELD_OUT_CLEAN), clean_images(a.data, TRAINED_CLEAN)
    refs = clean_images(a.data, (SIDD_REFERENCES,))
    rows = {}
    for s in students:
        den = denoiser(s)
        measures = {
            "DND residual noise": lambda: dnd_row(den, a.data),
            "SIDD blocks (5)": lambda: pairs_row(den, a.data, "sidd_val_blocks/p1y2z3_SDAP/SIDD_noisy",
                                                 "sidd_val_blocks/p1y2z3_SDAP/SIDD_clean"),
            "SIDD val pairs (65)": lambda: pairs_row(den, a.data, "sidd_val_scoredvi/val/noisy",
                                                     "sidd_val_scoredvi/val/GT"),
            "CC15 (15)": lambda: pairs_row(den, a.data, "nam_cc15_mcwnnm/Real_ccnoise_denoised_part",
                                           "nam_cc15_mcwnnm/Real_ccnoise_denoised_part"),
            "clean, held out (8)": lambda: clean_row(den, held),
            "clean, trained on (20)": lambda: clean_row(den, trained),
            "white 2, held out": lambda: white_row(den, held, 2),
            "white 2, trained on": lambda: white_row(den, trained, 2),
            "white 5, held out": lambda: white_row(den, held, 5),
            "white 5, trained on": lambda: white_row(den, trained, 5),
            "clean SIDD references, held out (65)": lambda: clean_row(den, refs),
            "white 2, SIDD references": lambda: white_row(den, refs, 2),
            "white 5, SIDD references": lambda: white_row(den, refs, 5),
            "colour chart, phone 8": lambda: chart_row(den, 8),
            "colour chart, phone 20": lambda: chart_row(den, 20),
        }
        rows[Path(s).name] = {}
        for k, measure in measures.items():
            rows[Path(s).name][k] = measure()
            print(f"{Path(s).name} | {k} | {rows[Path(s).name][k]}", flush=True)
    print_table(rows)


if __name__ == "__main__":
    main()
