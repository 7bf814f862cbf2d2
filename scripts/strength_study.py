"""Offline study of the denoising strength on saved outputs: fixed S, the per-image oracle, and two
automatic noise-level estimates (weights/README.md, "Light noise: --strength").

Usage:
    python scripts/strength_study.py NOISY_DIR CLEAN_DIR DENOISED_DIR

DENOISED_DIR holds `sdap evaluate --save DIR` outputs (strength 1), named as the noisy files. Pairs are
matched by name as in `sdap evaluate` (same name, NOISY_x/GT_x, x_real/x_mean; one folder may hold both). The blend is
z = x_hat + k (y - x_hat), k = 1 - S; the automatic gain is k = clip(1 - sigma_n^2 / var(y - x_hat), 0, 1)
per channel, with sigma_n from (a) the MAD of the finest diagonal Haar band of y, or (b) the median
residual variance in the 20 % flattest 8x8 blocks of x_hat. PSNR on uint8, data range 255.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sdap_cli.io import images  # noqa: E402
from sdap_cli.io.folders import pair_key  # noqa: E402


def _rgb(path: Path) -> np.ndarray:
    return images.read_image(path).rgb.astype(np.float64) * 255


def _psnr(z: np.ndarray, x: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((np.clip(np.round(z), 0, 255) - x) ** 2)))


def sigma_haar(y: np.ndarray) -> np.ndarray:
    h, w = y.shape[0] // 2 * 2, y.shape[1] // 2 * 2
    hh = (y[0:h:2, 0:w:2] - y[0:h:2, 1:w:2] - y[1:h:2, 0:w:2] + y[1:h:2, 1:w:2]) / 2
    return np.median(np.abs(hh - np.median(hh, axis=(0, 1))), axis=(0, 1)) / 0.6745


def sigma_flat(y: np.ndarray, f: np.ndarray, win: int = 8, q: float = 0.2) -> np.ndarray:
    h, w = y.shape[0] // win * win, y.shape[1] // win * win

    def blocks(a):
        return a[:h, :w].reshape(h // win, win, w // win, win, 3).transpose(0, 2, 1, 3, 4).reshape(-1, win * win, 3)

    rb, fb = blocks(y - f), blocks(f)
    flat = np.argsort(fb.var(1).mean(-1))[:max(1, int(q * len(fb)))]
    return np.sqrt(np.median(rb[flat].var(1), 0))


def main() -> None:
    noisy, clean, den = (Path(a) for a in sys.argv[1:4])
    triples = []
    for out in sorted(p for p in den.iterdir() if images.is_image_path(p)):
        partners = [c for c in sorted(clean.iterdir()) if images.is_image_path(c)
                    and pair_key(c.name) == pair_key(out.name) and (c.name != out.name or clean != noisy)]
        triples.append((_rgb(noisy / out.name), _rgb(partners[0]), _rgb(out)))
    print(f"{len(triples)} images")
    for s in (1.0, 0.7, 0.6, 0.5, 0.4):
        print(f"S {s:.1f}: {np.mean([_psnr(f + (1 - s) * (y - f), x) for y, x, f in triples]):.2f} dB")
    oracle = [max(_psnr(f + k * (y - f), x) for k in np.linspace(0, 1, 21)) for y, x, f in triples]
    print(f"oracle k per image: {np.mean(oracle):.2f} dB")
    for name, est in (("haar MAD", lambda y, f: sigma_haar(y)), ("flat blocks", sigma_flat)):
        ps = []
        for y, x, f in triples:
            k = np.clip(1 - est(y, f) ** 2 / np.maximum((y - f).reshape(-1, 3).var(0), 1e-9), 0, 1)
            ps.append(_psnr(f + k * (y - f), x))
        worst = min(p - _psnr(f, x) for p, (y, x, f) in zip(ps, triples))
        print(f"auto ({name}): {np.mean(ps):.2f} dB, worst image {worst:+.2f} dB")


if __name__ == "__main__":
    main()
