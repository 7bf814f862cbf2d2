"""Make docs/before_after.png: noisy | teacher (PD-2 + E) | student, shipped weights, two sample images.

Usage: python scripts/make_readme_figure.py [--teacher FILE] [--student FILE] [--out docs/before_after.png]
"""

import argparse
from pathlib import Path

import cv2
import numpy as np

from sdap_cli.inference.checkpoints import STUDENT_WEIGHTS_NAME, default_weights_path, load_weights
from sdap_cli.inference.denoiser import make_denoiser
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
    ap.add_argument("--out", default=str(REPO / "docs" / "before_after.png"))
    a = ap.parse_args()
    dens = []
    for path in (a.teacher, a.student or default_weights_path(STUDENT_WEIGHTS_NAME)):
        lw = load_weights(path)
        dens.append(make_denoiser(lw.model, input_scale=lw.input_scale, refine="e", precision="fp32"))
    gap = None
    rows = []
    for name in ("sidd_val_34.png", "sidd_val_1068.png"):
        img = read_image(REPO / "samples" / name)
        to8 = lambda x: np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)[..., ::-1]  # noqa: E731
        panels = [img.rgb] + [d.denoise(img.rgb) for d in dens]
        panels = [cv2.resize(to8(x), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST) for x in panels]
        gap = np.full((panels[0].shape[0], 8, 3), 255, np.uint8)
        titles = (f"noisy {name}", "teacher (PD-2 + E)", "student (CPU default)")
        row = [label(p, t) for p, t in zip(panels, titles)]
        rows.append(np.hstack([row[0], gap, row[1], gap, row[2]]))
    fig = np.vstack([np.vstack([r, np.full((8, r.shape[1], 3), 255, np.uint8)]) for r in rows])[:-8]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(a.out, fig)
    print(a.out, fig.shape)


if __name__ == "__main__":
    main()
