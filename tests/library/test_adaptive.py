"""Adaptive denoising with the shipped networks: clean images come back, light noise is removed,
tiled == whole image, deterministic; and the residual Wiener blend's properties."""

import numpy as np
import pytest

from sdap_cli.evaluation.metrics import psnr_ssim
from sdap_cli.inference.adaptive import AdaptiveDenoiser, wiener_blend
from sdap_cli.inference.checkpoints import load_weights, shipped_student_path
from sdap_cli.inference.denoiser import make_denoiser
from sdap_cli.io import images
from tests.conftest import shared_data
from tests.library.test_noise import add_noise, smooth_scene


@pytest.fixture(scope="module")
def shipped():
    student = load_weights(shipped_student_path()).model
    teacher = load_weights(None).model
    return AdaptiveDenoiser(make_denoiser(student, precision="fp32"),
                            make_denoiser(teacher, refine="none", pd=1, precision="fp32"))


def score(out, clean):
    return psnr_ssim(out, clean)[0]


def test_blend_lies_between_input_and_output_and_follows_the_level():
    rng = np.random.default_rng(0)
    y = rng.random((32, 40, 3), dtype=np.float32)
    x_hat = rng.random((32, 40, 3), dtype=np.float32)
    for v in (0.0, 1e-3, 1.0):
        out = wiener_blend(y, x_hat, np.full((32, 40, 1), v, np.float32))
        lo, hi = np.minimum(y, x_hat), np.maximum(y, x_hat)
        assert np.all(out >= lo - 1e-6) and np.all(out <= hi + 1e-6)
    assert np.array_equal(wiener_blend(y, x_hat, np.zeros((32, 40, 1), np.float32)), y)
    assert np.allclose(wiener_blend(y, x_hat, np.ones((32, 40, 1), np.float32)), x_hat, atol=1e-6)


def test_clean_images_come_back_nearly_unchanged(shipped):
    x = smooth_scene().astype(np.float32)
    out, d = shipped.denoise(x)
    assert d.path == "clean" and np.array_equal(out, x)
    for name in ("531.png", "842.png"):
        x = images.read_image(shared_data("sidd_val_blocks", "p1y2z3_SDAP", "SIDD_clean", name)).rgb
        out, d = shipped.denoise(x)
        assert score(out, x) > 42, (name, d)


@pytest.mark.parametrize("sigma", [2, 5, 10])
def test_white_noise_comes_out_better_than_the_input(shipped, sigma):
    rng = np.random.default_rng(sigma)
    sources = [smooth_scene()]
    sources.append(images.read_image(shared_data("sidd_val_blocks", "p1y2z3_SDAP", "SIDD_clean", "842.png")).rgb)
    for x in sources:
        y = add_noise(x, sigma, rng)
        out, d = shipped.denoise(y)
        assert d.path == "light"
        assert score(out, x) > score(y, x) + 0.5, d


def test_phone_noise_takes_the_default_path_unchanged(shipped):
    y = images.read_image(shared_data("sidd_val_blocks", "p1y2z3_SDAP", "SIDD_noisy", "842.png")).rgb
    out, d = shipped.denoise(y)
    assert d.path == "heavy"
    assert np.array_equal(out, shipped.heavy.denoise(y))


@pytest.mark.parametrize("blur", [False, True])
def test_tiled_equals_whole_and_deterministic(shipped, blur):
    rng = np.random.default_rng(7)
    y = add_noise(smooth_scene(150, 170), 6, rng, blur=blur)
    whole, d1 = shipped.denoise(y, tile=4096)
    tiled, d2 = shipped.denoise(y, tile=96)
    again, _ = shipped.denoise(y, tile=4096)
    assert d1.path == d2.path == "light"
    assert np.abs(whole - tiled).max() < 1e-4
    assert np.array_equal(whole, again)


def phone_like(x, sigma, rng):
    """Noise correlated like SIDD's (white through a [0.25, 1, 0.25]^2 kernel: rho1 0.44, rho2 0.05)."""
    import cv2
    k = np.array([0.247, 1, 0.247])
    n = cv2.filter2D(rng.normal(0, 1, x.shape), -1, np.outer(k, k), borderType=cv2.BORDER_REFLECT)
    return (np.clip(np.round(x * 255 + n * sigma / n.std()), 0, 255) / 255).astype(np.float32)


def test_light_phone_noise_is_never_worse_than_the_input(shipped):
    """At sigma 3 the plain student is ~4 dB below the input; the heavy path's blend must recover it."""
    rng = np.random.default_rng(11)
    x = images.read_image(shared_data("sidd_val_blocks", "p1y2z3_SDAP", "SIDD_clean", "531.png")).rgb
    y = phone_like(x, 3, rng)
    out, d = shipped.denoise(y)
    assert d.path == "heavy" and d.noise.sigma < 8
    assert score(shipped.heavy.denoise(y), x) < score(y, x)     # the fixed default loses
    assert score(out, x) > score(y, x)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_tiled_blend_equals_the_whole_image_blend(dtype):
    """The per-tile blend (tiles grown by the box's half-width) equals blending the stitched image."""
    import torch

    from sdap_cli.inference.adaptive import WINDOW, blend_step
    from sdap_cli.inference.denoiser import Denoiser
    from sdap_cli.inference.noise import measure_noise
    from sdap_cli.io.samples import from_unit, to_unit
    from sdap_cli.method.dbsnl import DBSNl
    torch.manual_seed(0)
    den = Denoiser(DBSNl(base_ch=8, num_module=1), refine="e", pd=2)
    rng = np.random.default_rng(5)
    y = add_noise(smooth_scene(141, 163).astype(np.float32), 6, rng)
    src = y if dtype == np.float32 else from_unit(y.copy(), np.uint8)
    est = measure_noise(src)
    small = 2 * (den.margin + WINDOW) + 24
    for amount in (1.0, 0.4):
        stitched = den.denoise(src, tile=4096)
        whole = wiener_blend(to_unit(src), stitched, est.sigma_map(stitched), amount=amount)
        for tile in (4096, small):
            out = den.denoise(src, tile=tile, out=np.empty(src.shape, dtype), post=blend_step(est, amount),
                              post_halo=WINDOW // 2)
            assert out.dtype == dtype
            assert np.abs(to_unit(out) - whole).max() <= (1e-4 if dtype == np.float32 else 0.5 / 255 + 1e-4)
