"""The `sdap evaluate --figure` PNG: noisy | denoised | clean centre crops of chosen images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import images
from ..io.atomic import make_parent
from ..io.images import as_float, png_like
from .metrics import to_uint8

__all__ = ["FIGURE_CROP", "crop", "make_figure"]

FIGURE_CROP = 256


def crop(x: np.ndarray, size: int = FIGURE_CROP) -> np.ndarray:
    """The centre ``size`` x ``size`` crop of an image (uint8 or float in [0, 1]) as uint8."""
    h, w = x.shape[:2]
    y0, x0 = max((h - size) // 2, 0), max((w - size) // 2, 0)
    return to_uint8(as_float(x[y0:y0 + size, x0:x0 + size]))


def _panel(img: np.ndarray, label: str, band: int = 22) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    out = np.full((h + band, max(w, 8), 3), 24, np.uint8)
    out[band:, :w] = img
    scale = 0.42 if w >= 200 else 0.32
    cv2.putText(out, label, (4, band - 7), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _hstack(panels: list[np.ndarray], gap: int = 4) -> np.ndarray:
    h = max(p.shape[0] for p in panels)
    w = sum(p.shape[1] for p in panels) + gap * (len(panels) - 1)
    out = np.full((h, w, 3), 255, np.uint8)
    x = 0
    for p in panels:
        out[:p.shape[0], x:x + p.shape[1]] = p
        x += p.shape[1] + gap
    return out


def make_figure(entries: list[tuple[str, object, dict[str, np.ndarray]]], path: Path) -> None:
    """Write a PNG: one row per entry (title, row, {'noisy','denoised','clean': crop}), panels
    noisy | denoised | clean with their PSNR."""
    import cv2

    rows = []
    for title, row, crops in entries:
        panels = []
        if "noisy" in crops:
            panels.append(_panel(crops["noisy"], f"noisy {row.psnr_in:.2f} dB"))
        panels.append(_panel(crops["denoised"], f"denoised {row.psnr:.2f} dB"))
        panels.append(_panel(crops["clean"], "clean"))
        body = _hstack(panels)
        head = np.full((24, body.shape[1], 3), 255, np.uint8)
        gain = f" ({row.gain:+.2f} dB)" if row.gain is not None else ""
        cv2.putText(head, f"{title}: {row.name}{gain}", (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)
        rows.append(np.vstack([head, body]))
    w = max(r.shape[1] for r in rows)
    fig = np.vstack([np.pad(r, ((0, 6), (0, w - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    make_parent(path, "--figure")
    images.write_image(path, fig.astype(np.float32) / 255.0, png_like(fig), images.format_for_suffix(path.suffix)
                       if path.suffix else "png")
