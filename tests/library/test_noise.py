"""The noise measurement: level and correlation against known synthetic noise and the real pairs."""

import numpy as np
import pytest

from sdap_cli.inference.adaptive import RHO1_WHITE, RHO2_PD2, choose_path
from sdap_cli.inference.noise import measure_noise
from sdap_cli.io import images
from tests.conftest import shared_data


def smooth_scene(h=256, w=256):
    """A clean synthetic photo: smooth shading, a few soft-edged discs, colour."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([0.3 + 0.4 * xx, 0.25 + 0.5 * yy * xx, 0.6 - 0.3 * yy], -1)
    for cy, cx, r, v in ((0.3, 0.3, 0.12, 0.3), (0.7, 0.6, 0.2, -0.2), (0.5, 0.85, 0.08, 0.25)):
        d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
        img += v / (1 + np.exp((d - r) * 60))[..., None]
    return np.clip(img, 0, 1)


def add_noise(x, sigma, rng, blur=False):
    n = rng.normal(0, 1, x.shape)
    if blur:                                    # white noise through a 3x3 box: correlated 2 pixels out
        n = sum(np.roll(np.roll(n, i, 0), j, 1) for i in (-1, 0, 1) for j in (-1, 0, 1))
        n /= n.std()
    return (np.clip(np.round(x * 255 + sigma * n), 0, 255) / 255).astype(np.float32)


def clean_images():
    yield "scene", smooth_scene()
    for name in ("531.png", "842.png"):     # SIDD clean blocks with flat regions
        p = shared_data("sidd_val_blocks", "p1y2z3_SDAP", "SIDD_clean", name)
        yield name, images.read_image(p).rgb


@pytest.mark.parametrize("sigma", [2, 5, 10])
def test_white_noise_is_measured_white_within_20_percent(sigma):
    rng = np.random.default_rng(sigma)
    for name, x in clean_images():
        est = measure_noise(add_noise(x, sigma, rng))
        assert abs(est.sigma / sigma - 1) < 0.2, (name, est)
        assert est.rho1 < RHO1_WHITE, (name, est)
        assert choose_path(est) == "light"


def test_blurred_noise_is_measured_correlated():
    rng = np.random.default_rng(1)
    for name, x in clean_images():
        est = measure_noise(add_noise(x, 8, rng, blur=True))
        assert est.rho1 > 0.45 and est.rho2 >= RHO2_PD2, (name, est)   # truth: 2/3 and 1/3


def test_sidd_blocks_are_measured_correlated_and_take_the_pd2_path():
    folder = shared_data("sidd_val_blocks", "p1y2z3_SDAP", "SIDD_noisy")
    for p in sorted(folder.glob("*.png")):
        est = measure_noise(images.read_image(p).rgb)
        assert est.rho1 > 0.3 and est.rho2 < RHO2_PD2, (p.name, est)
        assert est.sigma > 8
        assert choose_path(est) == "heavy"


def test_level_follows_brightness():
    """Signal-dependent noise (std 2 in the shadows, 10 in the highlights) is read as such."""
    rng = np.random.default_rng(3)
    x = np.repeat(np.linspace(0.05, 0.95, 256)[None, :, None], 256, 0).repeat(3, 2)
    y = (np.clip(np.round(x * 255 + rng.normal(0, 1, x.shape) * (2 + 8 * x)), 0, 255) / 255).astype(np.float32)
    est = measure_noise(y)
    assert est.nlf.shape == (3, 8)
    assert np.all(est.nlf[:, -1] > 2.5 * est.nlf[:, 0])
    var = est.sigma_map(np.array([[[0.1] * 3, [0.9] * 3]], np.float32))
    assert var[0, 1, 0] > 4 * var[0, 0, 0]


def test_clean_and_flat_images_read_no_noise():
    assert measure_noise(np.full((64, 64, 3), 0.5, np.float32)).sigma == 0
    assert measure_noise(smooth_scene().astype(np.float32)).sigma < 0.6
    tiny = measure_noise(np.random.default_rng(0).random((5, 7, 3), dtype=np.float32))
    assert tiny.pixels == 0 and tiny.sigma == 0


def test_deterministic_and_sampled_on_large_images():
    rng = np.random.default_rng(4)
    x = np.tile(smooth_scene(), (6, 6, 1))[:1400, :1300]
    y = add_noise(x, 5, rng)
    a, b = measure_noise(y), measure_noise(y)
    assert a.sigma == b.sigma and a.rho1 == b.rho1
    assert a.pixels < y.shape[0] * y.shape[1] and a.pixels <= 1 << 20
    assert abs(a.sigma / 5 - 1) < 0.2


@pytest.mark.parametrize("angle", [0, 45, 90, 135])
def test_oriented_texture_is_not_read_as_noise(angle):
    """Issue 32: stripes (a fence, brick courses, a shirt) along any of the four directions read as the
    noise added to them, not as their own contrast (the level takes the least direction per block); an
    average of the horizontal and vertical second differences, the reading before, takes them for heavy
    noise."""
    yy, xx = np.mgrid[0:256, 0:256].astype(np.float32)
    t = np.deg2rad(angle)
    u = xx * np.cos(t) + yy * np.sin(t)
    img = np.repeat((0.5 + 0.1 * np.sign(np.sin(2 * np.pi * u / 7)) + 0.1 * np.sin(2 * np.pi * u / 3.3))[..., None],
                    3, 2)
    rng = np.random.default_rng(angle)
    for s in (0.0, 2.0, 8.0):
        y = (np.clip(np.rint((img + rng.normal(0, s / 255, img.shape)) * 255), 0, 255) / 255).astype(np.float32)
        read = measure_noise(y).sigma
        assert abs(read - s) <= 0.15 * s + 0.05, (angle, s, read)
    hv = np.mean([(img[4:-4, 4:-4, 0] - 0.5 * (img[4:-4, :-8, 0] + img[4:-4, 8:, 0])) ** 2,
                  (img[4:-4, 4:-4, 0] - 0.5 * (img[:-8, 4:-4, 0] + img[8:, 4:-4, 0])) ** 2], axis=0)
    assert np.sqrt(hv.mean() / 1.5) * 255 > 10                        # what the h/v reading takes it for
