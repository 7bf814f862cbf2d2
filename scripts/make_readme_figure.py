"""Make docs/before_after.png from the shipped weights: two noisy sample images (noisy | the SDAP teacher,
PD-2 + E | the CPU default as `sdap denoise` runs it: measured noise, the one-pass student, its blend) and a
crop of a clean detailed photo through the same default (clean | default), which should come back as it was.

Usage: python scripts/make_readme_figure.py [--teacher FILE] [--student FILE] [--clean PHOTO] [--out docs/before_after.png]
"""

import argparse
from pathlib import Path

import cv2
import numpy as np

import torch

from sdap_cli.config import InferenceConfig
from sdap_cli.inference.checkpoints import STUDENT_WEIGHTS_NAME, default_weights_path, load_weights
from sdap_cli.inference.denoiser import make_denoiser
from sdap_cli.inference.denoisers import build_denoiser, denoise_image
from sdap_cli.io.images import read_image

REPO = Path(__file__).resolve().parents[1]


def label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.putText(out, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(out, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--teacher", default=None)
    ap.add_argument("--student", default=None)
    ap.add_argument("--clean", default=str(REPO.parent / "shared" / "data" / "clean_photos" / "Kodak24" / "kodim24.png"),
                    help="a clean detailed photo (skipped when absent)")
    ap.add_argument("--out", default=str(REPO / "docs" / "before_after.png"))
    a = ap.parse_args()
    lw = load_weights(a.teacher)
    teacher = make_denoiser(lw.model, input_scale=lw.input_scale, refine="e", precision="fp32")
    inf = InferenceConfig(device="cpu")
    default = build_denoiser(load_weights(a.student or default_weights_path(STUDENT_WEIGHTS_NAME)), inf,
                             torch.device("cpu"), given=False)
    dens = [teacher, type("Default", (), {"denoise": lambda self, x: denoise_image(default, x, inf)[0]})()]
    gap = None
    rows = []
    for name in ("sidd_val_34.png", "sidd_val_1068.png"):
        img = read_image(REPO / "samples" / name)
        to8 = lambda x: np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)[..., ::-1]  # noqa: E731
        panels = [img.rgb] + [d.denoise(img.rgb) for d in dens]
        panels = [cv2.resize(to8(x), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST) for x in panels]
        gap = np.full((panels[0].shape[0], 8, 3), 255, np.uint8)
        titles = (f"noisy {name}", "teacher (PD-2 + E)", "sdap denoise (CPU default)")
        row = [label(p, t) for p, t in zip(panels, titles)]
        rows.append(np.hstack([row[0], gap, row[1], gap, row[2]]))
    if Path(a.clean).is_file():                     # detail: a clean photo should come back as it was
        x = read_image(a.clean).rgb
        width = rows[0].shape[1]
        side = (width - 8) // 2
        y0, x0 = (x.shape[0] - side // 2) // 2, (x.shape[1] - side // 2) // 2
        cut = (slice(y0, y0 + side // 2), slice(x0, x0 + side // 2))      # the whole photo denoised, then cut
        panels = [cv2.resize(to8(p[cut]), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
                  for p in (x, dens[1].denoise(x))]
        row = np.hstack([label(panels[0], f"clean {Path(a.clean).name}"), np.full((panels[0].shape[0], 8, 3), 255,
                         np.uint8), label(panels[1], "sdap denoise: kept")])
        row = np.hstack([row, np.full((row.shape[0], width - row.shape[1], 3), 255, np.uint8)])
        rows.append(row)
    fig = np.vstack([np.vstack([r, np.full((8, r.shape[1], 3), 255, np.uint8)]) for r in rows])[:-8]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(a.out, fig)
    print(a.out, fig.shape)


if __name__ == "__main__":
    main()
