"""Make docs/before_after.png: noisy | denoised (shipped weights, PD-2 + E) for two sample images.

Usage: python scripts/make_readme_figure.py [--weights FILE] [--out docs/before_after.png]
"""

import argparse
from pathlib import Path

import cv2
import numpy as np

from sdap_cli.core.checkpoints import load_weights
from sdap_cli.core.images import read_image
from sdap_cli.core.inference import Denoiser

REPO = Path(__file__).resolve().parents[1]


def label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.putText(out, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(out, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default=None)
    ap.add_argument("--out", default=str(REPO / "docs" / "before_after.png"))
    a = ap.parse_args()
    lw = load_weights(a.weights)
    den = Denoiser(lw.model, input_scale=lw.input_scale, refine="e", precision="fp32")
    rows = []
    for name in ("sidd_val_34.png", "sidd_val_1068.png"):
        img = read_image(REPO / "samples" / name)
        out = den.denoise(img.rgb)
        to8 = lambda x: np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)[..., ::-1]  # noqa: E731
        pair = [cv2.resize(to8(x), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST) for x in (img.rgb, out)]
        rows.append(np.hstack([label(pair[0], f"noisy {name}"), np.full((pair[0].shape[0], 8, 3), 255, np.uint8),
                               label(pair[1], "sdap denoise")]))
    fig = np.vstack([np.vstack([r, np.full((8, r.shape[1], 3), 255, np.uint8)]) for r in rows])[:-8]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(a.out, fig)
    print(a.out, fig.shape)


if __name__ == "__main__":
    main()
