"""Detail is not noise (issue 32): clean, detailed photos held out of the student's training come back
through the CPU default nearly as they were, and light white noise on them comes out below its input
level. Uses ../shared/data/clean_photos (skipped without it); the photos are those of
``benchmarks/detail_table.HELD_OUT``. Measured at the shipping of today's student (weights/README.md):
clean 39.2-48.6 dB, white std 5 +1.5 to +5.3 dB on these; the bounds leave room for other CPUs' rounding."""

from pathlib import Path

import numpy as np
import pytest

from sdap_cli import denoise
from sdap_cli.evaluation.metrics import psnr_ssim
from sdap_cli.io.images import read_image
from sdap_cli.io.samples import to_unit
from sdap_cli.training.synthetic import add_noise

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "clean_photos"
HELD = ("Kodak24/kodim19.png", "Kodak24/kodim20.png", "Kodak24/kodim24.png", "McMaster18/14.tif")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not PHOTOS.is_dir(), reason="needs ../shared/data/clean_photos")]


def _photo(rel: str) -> np.ndarray:
    return to_unit(read_image(PHOTOS / rel).rgb)


def _psnr(a, b) -> float:
    p = psnr_ssim(a, b, "sdap")[0]
    return 99.0 if not np.isfinite(p) else p


@pytest.mark.parametrize("rel", HELD)
def test_a_clean_detailed_photo_comes_back_as_it_was(rel):
    x = _photo(rel)
    assert _psnr(denoise(x, device="cpu"), x) >= 38.0          # 42.6, 46.8, 42.2, 43.5 (student of 2026-12-07)


@pytest.mark.parametrize("rel", HELD)
def test_light_white_noise_on_a_detailed_photo_is_reduced(rel):
    x = _photo(rel)
    y = add_noise(x, "white", 5.0, np.random.default_rng(11))
    assert _psnr(denoise(y, device="cpu"), x) >= _psnr(y, x) + 1.0   # +3.5, +3.6, +1.5, +3.5 (2026-12-07)

