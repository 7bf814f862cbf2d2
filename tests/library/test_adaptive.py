"""Adaptive denoising with the shipped networks: clean images come back, light noise is removed,
tiled == whole image, deterministic; and the residual Wiener blend's properties."""

import numpy as np
import pytest

from sdap_cli.evaluation.metrics import psnr_ssim
from sdap_cli.inference.adaptive import AdaptiveDenoiser, lowfreq_correct, wiener_blend
from sdap_cli.inference.checkpoints import load_weights, shipped_student_path
from sdap_cli.inference.denoiser import make_denoiser
from sdap_cli.io import images
from tests.conftest import shared_data
from tests.library.test_noise import add_noise, smooth_scene


@pytest.fixture(scope="module")
def shipped():
    """The CPU default: the shipped (noise-conditional) student, one pass for every image not clean."""
    import torch

    from sdap_cli.config import InferenceConfig
    from sdap_cli.inference.denoisers import build_denoiser

    den = build_denoiser(load_weights(shipped_student_path()), InferenceConfig(precision="fp32"),
                         torch.device("cpu"), given=False)
    assert den.heavy.conditional
    return den


@pytest.fixture(scope="module")
def two_paths():
    """The teacher's adaptive default (CUDA, --model teacher): PD-2 + E on the heavy path, PD-1 + blend on
    the light one."""
    teacher = load_weights(None).model
    return AdaptiveDenoiser(make_denoiser(teacher, refine="e", pd=2, precision="fp32"),
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
def test_white_noise_comes_out_better_than_the_input(shipped, two_paths, sigma):
    rng = np.random.default_rng(sigma)
    sources = [smooth_scene()]
    sources.append(images.read_image(shared_data("sidd_val_blocks", "p1y2z3_SDAP", "SIDD_clean", "842.png")).rgb)
    for x in sources:
        y = add_noise(x, sigma, rng)
        for den, path in ((shipped, "one-pass"), (two_paths, "light")):
            out, d = den.denoise(y)
            assert d.path == path
            assert score(out, x) > score(y, x) + 0.5, (path, d)


def test_phone_noise_takes_the_default_path_unchanged(shipped, two_paths):
    y = images.read_image(shared_data("sidd_val_blocks", "p1y2z3_SDAP", "SIDD_noisy", "842.png")).rgb
    out, d = two_paths.denoise(y)
    assert d.path == "heavy" and d.network["lowfreq"]
    raw = two_paths.heavy.denoise(y)                 # the teacher's paths then get the low-frequency check
    assert np.allclose(out, lowfreq_correct(y, raw, d.noise.sigma_map(raw), d.noise.rho1, d.noise.rho2),
                       atol=1e-6)
    assert np.array_equal(AdaptiveDenoiser(two_paths.heavy, two_paths.light, lowfreq_k=None).denoise(y)[0], raw)
    out, d = shipped.denoise(y)                      # the student is told the measured noise, one pass
    assert d.path == "one-pass" and d.network["told"]["rho1"] == round(d.noise.rho1, 3)
    assert np.array_equal(out, shipped.heavy.denoise(y, noise=d.noise))


@pytest.mark.parametrize("blur", [False, True])
def test_tiled_equals_whole_and_deterministic(shipped, blur):
    rng = np.random.default_rng(7)
    y = add_noise(smooth_scene(300, 340), 6, rng, blur=blur)
    whole, d1 = shipped.denoise(y, tile=4096)
    tiles = []
    tiled, d2 = shipped.denoise(y, tile=200, on_tile=lambda i, n: tiles.append(n))
    again, _ = shipped.denoise(y, tile=4096)
    assert d1.path == d2.path == "one-pass" and tiles[-1] > 1
    assert np.abs(whole - tiled).max() < 1e-4
    assert np.array_equal(whole, again)


def phone_like(x, sigma, rng):
    """Noise correlated like SIDD's (white through a [0.25, 1, 0.25]^2 kernel: rho1 0.44, rho2 0.05)."""
    import cv2
    k = np.array([0.247, 1, 0.247])
    n = cv2.filter2D(rng.normal(0, 1, x.shape), -1, np.outer(k, k), borderType=cv2.BORDER_REFLECT)
    return (np.clip(np.round(x * 255 + n * sigma / n.std()), 0, 255) / 255).astype(np.float32)


def test_light_phone_noise_is_never_worse_than_the_input(shipped):
    """At sigma 3 the student of the 5 SIDD blocks' noise alone was ~4 dB below the input; told the level,
    the one-pass student must not be."""
    rng = np.random.default_rng(11)
    x = images.read_image(shared_data("sidd_val_blocks", "p1y2z3_SDAP", "SIDD_clean", "531.png")).rgb
    y = phone_like(x, 3, rng)
    out, d = shipped.denoise(y)
    assert d.path == "one-pass" and d.noise.sigma < 8
    assert score(out, x) > score(y, x)


def tiny_teacher_and_input(dtype, refine: str, pd: int, seed: int, hw: tuple[int, int]):
    """An untrained DBSNl 8/1 denoiser, a smooth scene with white noise of std 6 as ``dtype`` samples, and
    its measured noise."""
    import torch

    from sdap_cli.inference.denoiser import Denoiser
    from sdap_cli.inference.noise import measure_noise
    from sdap_cli.io.samples import from_unit
    from sdap_cli.method.dbsnl import DBSNl
    torch.manual_seed(0)
    den = Denoiser(DBSNl(base_ch=8, num_module=1), refine=refine, pd=pd)
    y = add_noise(smooth_scene(*hw).astype(np.float32), 6, np.random.default_rng(seed))
    src = y if dtype == np.float32 else from_unit(y.copy(), np.uint8)
    return den, src, measure_noise(src)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_tiled_blend_equals_the_whole_image_blend(dtype):
    """The per-tile blend (tiles grown by the box's half-width) equals blending the stitched image."""
    from sdap_cli.inference.adaptive import WINDOW, blend_step
    from sdap_cli.io.samples import to_unit
    den, src, est = tiny_teacher_and_input(dtype, "e", 2, 5, (141, 163))
    small = 2 * (den.margin + WINDOW) + 24
    for amount in (1.0, 0.4):
        stitched = den.denoise(src, tile=4096)
        whole = wiener_blend(to_unit(src), stitched, est.sigma_map(stitched), amount=amount)
        for tile in (4096, small):
            out = den.denoise(src, tile=tile, out=np.empty(src.shape, dtype), post=blend_step(est, amount),
                              post_halo=WINDOW // 2)
            assert out.dtype == dtype
            assert np.abs(to_unit(out) - whole).max() <= (1e-4 if dtype == np.float32 else 0.5 / 255 + 1e-4)


def test_lowfreq_check_removes_a_shift_noise_cannot_explain_and_keeps_noise_level_ones():
    """A colour shift well above what noise leaves in the window comes back; one within it stays put."""
    rng = np.random.default_rng(2)
    x = smooth_scene(120, 150).astype(np.float32)
    var = np.full((120, 150, 1), (6 / 255) ** 2, np.float32)
    shifted = np.clip(x + np.float32([0.06, -0.04, 0.0]), 0, 1)          # 15 and 10 levels
    y = add_noise(x, 6, rng)
    fixed = lowfreq_correct(y, shifted, var, 0.4, 0.05)
    inner = (slice(30, 90), slice(30, 120))
    assert np.abs((fixed - x)[inner].mean((0, 1))).max() < 1 / 255 < np.abs((shifted - x)[inner].mean((0, 1))).max()
    small = np.clip(x + np.float32([0.1 / 255, 0, 0]), 0, 1)            # a tenth of a level: noise explains it
    assert np.abs(lowfreq_correct(y, small, var, 0.4, 0.05) - small).max() < 1 / 255
    assert np.array_equal(lowfreq_correct(x, x, var, 0.4, 0.05), x)     # no difference, nothing to put back


def test_teacher_paths_keep_saturated_colours(two_paths):
    """The shipped teacher shifts a flat saturated purple under phone-like noise; the check brings it back."""
    rng = np.random.default_rng(4)
    x = np.zeros((128, 128, 3), np.float32)
    x[:] = np.float32([110, 90, 215]) / 255
    x[:, 64:] = np.float32([40, 200, 190]) / 255
    y = phone_like(x, 8, rng)
    out, d = two_paths.denoise(y)
    raw, _ = AdaptiveDenoiser(two_paths.heavy, two_paths.light, lowfreq_k=None).denoise(y)
    inner = [(slice(32, 96), slice(16, 48)), (slice(32, 96), slice(80, 112))]
    shift = lambda o: max(np.abs((o - x)[s].mean((0, 1))).max() for s in inner) * 255   # noqa: E731
    assert d.network["lowfreq"] and shift(out) < 2 < shift(raw), (shift(out), shift(raw))
    assert score(out, x) > score(raw, x)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_tiled_chained_steps_equal_the_whole_image(dtype):
    """The blend then the low-frequency check, per tile (tiles grown by both halos), equal both on the
    stitched image."""
    from sdap_cli.inference.adaptive import LOWFREQ_RADIUS, WINDOW, blend_step, chain_steps, lowfreq_step
    from sdap_cli.io.samples import to_unit
    den, src, est = tiny_teacher_and_input(dtype, "none", 1, 6, (150, 171))
    stitched = den.denoise(src, tile=4096)
    blended = wiener_blend(to_unit(src), stitched, est.sigma_map(stitched), amount=0.5)
    whole = lowfreq_correct(to_unit(src), blended, est.sigma_map(blended), est.rho1, est.rho2)
    assert np.abs(whole - blended).max() > 1e-3                         # the check did something here
    post, halo = chain_steps([(blend_step(est, 0.5), WINDOW // 2), (lowfreq_step(est), LOWFREQ_RADIUS)])
    assert halo == WINDOW // 2 + LOWFREQ_RADIUS
    small = 2 * (den.margin + halo) + 24
    for tile in (4096, small, 8):                       # 8: too small for the overlap, raised to the smallest
        out = den.denoise(src, tile=tile, out=np.empty(src.shape, dtype), post=post, post_halo=halo)
        assert np.abs(to_unit(out) - whole).max() <= (1e-4 if dtype == np.float32 else 0.5 / 255 + 1e-4)


@pytest.fixture(scope="module")
def teacher_auto():
    """`sdap denoise -w sdap_default.safetensors`: the teacher's automatic paths as the CLI builds them."""
    import torch

    from sdap_cli.config import InferenceConfig
    from sdap_cli.inference.denoisers import build_denoiser

    return build_denoiser(load_weights(None), InferenceConfig(precision="fp32"), torch.device("cpu"), given=True)


def test_a_teachers_light_path_is_the_shipped_students_one_pass(teacher_auto, shipped):
    """Light noise under the teacher's automatic paths runs the shipped conditional student, told the noise
    and blended as on its own one-pass path: the same output, bit for bit; phone noise stays the teacher's."""
    assert teacher_auto.light.conditional and teacher_auto.heavy.model.role.name == "teacher"
    y = add_noise(smooth_scene(), 5, np.random.default_rng(3))                     # white: the light path
    out, d = teacher_auto.denoise(y)
    ref, dr = shipped.denoise(y)
    assert d.path == "light" and dr.path == "one-pass"
    assert d.network["model"] == "student" and "lowfreq" not in d.network
    assert d.network["blend"] == dr.network["blend"] and np.array_equal(out, ref)
    y = images.read_image(shared_data("sidd_val_blocks", "p1y2z3_SDAP", "SIDD_noisy", "842.png")).rgb
    out, d = teacher_auto.denoise(y)
    assert d.path == "heavy" and d.network["model"] == "teacher" and d.network["pd"] == 2


def test_without_a_shipped_student_the_light_path_is_the_teacher_at_pd1(monkeypatch):
    import torch

    from sdap_cli.config import InferenceConfig
    from sdap_cli.inference import denoisers

    monkeypatch.setattr(denoisers, "shipped_student_path", lambda: None)
    den = denoisers.build_denoiser(load_weights(None), InferenceConfig(precision="fp32"), torch.device("cpu"),
                                   given=True)
    assert not den.light.conditional and den.light.pd == 1 and den.light.refine == "none"
    _, d = den.denoise(add_noise(smooth_scene(), 5, np.random.default_rng(3)))
    assert d.path == "light" and d.network["model"] == "teacher" and d.network["blend"] == 1.0


def test_kodim13_keeps_its_detail_under_the_teachers_paths(teacher_auto):
    """Issue 32: Kodak24's kodim13 (rocks and water), clean, reads a level of 8.45 and takes the light path;
    the teacher at PD-1 returned it at 31.4 dB, the student keeps it above 40."""
    x = images.read_image(shared_data("clean_photos", "Kodak24", "kodim13.png")).rgb
    out, d = teacher_auto.denoise(x)
    assert d.path == "light" and score(out, x) > 40, d


def test_the_teachers_heavy_path_below_level_8_runs_the_student_too(teacher_auto, shipped):
    """Phone-like noise the teacher would blend back toward the input (below SIGMA_HEAVY) goes to the student."""
    from sdap_cli.inference.adaptive import SIGMA_HEAVY

    import cv2

    x = smooth_scene()                  # white noise through [0.25, 1, 0.25]^2: rho1 ~0.44, rho2 ~0.05, as phones
    n = cv2.sepFilter2D(np.random.default_rng(5).normal(0, 1, x.shape).astype(np.float32), -1,
                        np.float32([0.25, 1, 0.25]), np.float32([0.25, 1, 0.25]))
    y = (np.clip(np.round(x * 255 + 5 * n / n.std()), 0, 255) / 255).astype(np.float32)
    out, d = teacher_auto.denoise(y)
    assert d.path == "heavy" and d.noise.sigma < SIGMA_HEAVY and d.network["model"] == "student", d
    assert np.array_equal(out, shipped.denoise(y)[0])
