"""Make docs/adaptive.png: noisy | fixed default (--no-auto) | adaptive default | clean, on one light-noise
photo (CC15, Nikon D800 ISO 1600) and one phone crop (SIDD validation block), shipped weights, CPU.

Usage: python scripts/make_adaptive_figure.py [--data ../shared/data] [--out docs/adaptive.png]
Each label gives the whole image's PSNR (SDAP convention); the panels show a 128x128 crop at 2x.
"""

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from sdap_cli.config import InferenceConfig
from sdap_cli.evaluation.metrics import psnr_ssim, to_uint8
from sdap_cli.inference.denoisers import build_denoiser, choose_weights, denoise_image
from sdap_cli.io.images import read_image

REPO = Path(__file__).resolve().parents[1]
CASES = [  # noisy, clean (under --data); the crop is the clean image's most detailed 128x128 window
    ("nam_cc15_mcwnnm/Real_ccnoise_denoised_part/d800_iso1600_2_real.png",
     "nam_cc15_mcwnnm/Real_ccnoise_denoised_part/d800_iso1600_2_mean.png"),
    ("sidd_val_blocks/p1y2z3_SDAP/SIDD_noisy/1068.png", "sidd_val_blocks/p1y2z3_SDAP/SIDD_clean/1068.png"),
]


def detailed_window(clean: np.ndarray, side: int = 128) -> tuple[int, int]:
    """Top-left corner of the side x side window (on a 32-pixel grid) with the most Laplacian energy."""
    lap = np.abs(cv2.Laplacian(clean.mean(-1).astype(np.float32), cv2.CV_32F))
    h, w = lap.shape
    corners = [(y, x) for y in range(0, h - side + 1, 32) for x in range(0, w - side + 1, 32)]
    return max(corners, key=lambda c: lap[c[0]:c[0] + side, c[1]:c[1] + side].sum())


def label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    cv2.rectangle(out, (0, 0), (tw + 10, th + 12), (0, 0, 0), -1)
    cv2.putText(out, text, (5, th + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", default=str(REPO / "docs" / "adaptive.png"))
    a = ap.parse_args()
    cpu = torch.device("cpu")
    fixed_cfg, auto_cfg = InferenceConfig(auto=False, precision="fp32"), InferenceConfig(precision="fp32")
    fixed = build_denoiser(choose_weights(None, fixed_cfg, cpu), fixed_cfg, cpu, given=False)
    auto = build_denoiser(choose_weights(None, auto_cfg, cpu), auto_cfg, cpu, given=False)
    rows = []
    for noisy_p, clean_p in CASES:
        y, x = read_image(a.data / noisy_p).rgb, read_image(a.data / clean_p).rgb
        cy, cx = detailed_window(x)
        fixed_out, _, _ = denoise_image(fixed, y, InferenceConfig())
        auto_out, decision, _ = denoise_image(auto, y, InferenceConfig())
        outs = [fixed_out, auto_out]
        titles = [f"noisy {psnr_ssim(y, x)[0]:.2f} dB", f"fixed default {psnr_ssim(outs[0], x)[0]:.2f}",
                  f"adaptive ({decision['path']}) {psnr_ssim(outs[1], x)[0]:.2f}", "clean"]
        panels = []
        for img, t in zip([y, *outs, x], titles):
            crop = to_uint8(img)[cy:cy + 128, cx:cx + 128, ::-1]
            panels.append(label(cv2.resize(crop, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST), t))
        gap = np.full((panels[0].shape[0], 6, 3), 255, np.uint8)
        rows.append(np.hstack([p for q in panels for p in (q, gap)][:-1]))
    fig = np.vstack([rows[0], np.full((6, rows[0].shape[1], 3), 255, np.uint8), rows[1]])
    cv2.imwrite(a.out, fig)
    print(a.out, fig.shape)


if __name__ == "__main__":
    main()
