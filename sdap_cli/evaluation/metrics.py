"""PSNR and SSIM under named conventions (what each paper's numbers mean).

* ``sdap``: uint8 RGB (rounded), PSNR over the whole array with data range 255; SSIM with a Gaussian
  window (sigma 1.5), no sample covariance, averaged over the 3 channels (SDAP ``utils/utils.py``).
* ``apbsn``: float clipped to [0, 255], PSNR data range 255; SSIM with skimage's defaults (7x7 uniform
  window, sample covariance), channel average (AP-BSN).
* ``y``: as ``sdap`` but on the BT.601 luma channel Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255
  computed on [0, 1] RGB (what the SIDD benchmark site reports for SSIM).

Inputs are ``(H, W, 3)`` arrays: float in [0, 1] or uint8.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

Convention = Literal["sdap", "apbsn", "y"]
CONVENTIONS: tuple[str, ...] = ("sdap", "apbsn", "y")


def to_uint8(x: np.ndarray) -> np.ndarray:
    """[0, 1] float -> uint8 by rounding (uint8 passes through)."""
    if x.dtype == np.uint8:
        return x
    return np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)


def _to_255(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64) if x.dtype == np.uint8 else np.clip(x.astype(np.float64) * 255, 0, 255)


def rgb_to_y(x255: np.ndarray) -> np.ndarray:
    """BT.601 luma on [0, 255] RGB, in [16, 235]."""
    r, g, b = x255[..., 0], x255[..., 1], x255[..., 2]
    return 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def psnr_ssim(pred: np.ndarray, ref: np.ndarray, convention: Convention = "sdap") -> tuple[float, float]:
    """PSNR (dB) and SSIM of ``pred`` against ``ref`` under a named convention.

    Example:
        >>> a = np.zeros((16, 16, 3), np.uint8); b = a.copy(); b[0, 0, 0] = 255
        >>> round(psnr_ssim(b, a)[0], 2), psnr_ssim(a, a)[0]
        (28.85, inf)
    """
    if pred.shape != ref.shape:
        raise ValueError(f"shape mismatch: {pred.shape} vs {ref.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):     # identical images: PSNR inf, no warning
        if convention == "sdap":
            p, r = to_uint8(pred), to_uint8(ref)
            psnr = peak_signal_noise_ratio(r, p, data_range=255)
            ssim = structural_similarity(r, p, data_range=255, gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False, channel_axis=2)
        elif convention == "apbsn":
            p, r = _to_255(pred), _to_255(ref)
            psnr = peak_signal_noise_ratio(r, p, data_range=255)
            ssim = structural_similarity(r, p, data_range=255, channel_axis=2)
        elif convention == "y":
            p = rgb_to_y(to_uint8(pred).astype(np.float64))
            r = rgb_to_y(to_uint8(ref).astype(np.float64))
            psnr = peak_signal_noise_ratio(r, p, data_range=255)
            ssim = structural_similarity(r, p, data_range=255, gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False)
        else:
            raise ValueError(f"unknown metric convention {convention!r}; choose from {CONVENTIONS}")
    return float(psnr), float(ssim)
