"""Detail is not noise (issue 32): clean, detailed photos held out of the student's training come back
through the CPU default nearly as they were, and light white noise on them comes out below its input
level, and a noisy gray photo (one channel) is denoised. Uses ../shared/data/clean_photos (skipped without it);
the photos are those of ``benchmarks/detail_table.HELD_OUT``. Measured at the shipping of today's student
(weights/README.md, 2026-12-07, fresh noise): clean 49.3-55.4 dB, white std 5 +3.0 to +4.2 dB, the gray copy
with white noise of std 15 +4.9 to +9.7 dB on these; the bounds leave room for other CPUs' rounding."""

from pathlib import Path

import numpy as np
import pytest

from sdap_cli import denoise
from sdap_cli.evaluation.metrics import psnr_ssim
from sdap_cli.io.images import read_image
from sdap_cli.io.samples import to_unit
from sdap_cli.training.synthetic import add_noise, gray_copy

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
    assert _psnr(denoise(x, device="cpu"), x) >= 45.0          # 52.9, 55.4, 51.1, 49.3 (student of 2026-12-07)


@pytest.mark.parametrize("rel", HELD)
def test_light_white_noise_on_a_detailed_photo_is_reduced(rel):
    x = _photo(rel)
    y = add_noise(x, "white", 5.0, np.random.default_rng(11))
    assert _psnr(denoise(y, device="cpu"), x) >= _psnr(y, x) + 2.0   # +3.0, +4.2, +3.3, +4.1 (2026-12-07)


@pytest.mark.parametrize("rel", HELD)
def test_a_noisy_gray_photo_is_denoised(rel):
    """A gray image (one channel) with white noise: the student, trained on gray copies with noise equal in
    the channels, removes it (one that never saw such noise left much of it: 28.25 dB against 31.09 on the
    16 held-out gray copies, benchmarks/detail_table.py)."""
    g = gray_copy(_photo(rel))[..., :1]
    y = add_noise(g, "white", 15.0, np.random.default_rng(11))
    assert _psnr(denoise(y, device="cpu"), g) >= _psnr(y, g) + 4.0   # +5.5, +6.7, +4.9, +9.7 (2026-12-07)

