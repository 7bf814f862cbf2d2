"""The noise-conditional one-pass student (issue 27): what it is told, that tiling and repetition do not
change its output, its training set (synthetic noise, each path's target), and its export."""

import numpy as np
import pytest
import torch

from sdap_cli.inference.adaptive import AdaptiveDenoiser, choose_path, heavy_blend_weight, lowfreq_correct, wiener_blend
from sdap_cli.inference.denoiser import make_denoiser
from sdap_cli.inference.noise import BINS, COND_CH, NoiseEstimate, measure_noise
from sdap_cli.method.student import StudentUNet
from sdap_cli.training.onepass import mix_repeats, path_target, synthetic_entries, synthetic_repeat
from sdap_cli.training.synthetic import ALL_KINDS, KINDS, SATURATION, add_noise, noisy_versions, recolour
from tests.helpers import noisy_rgb


def _cond_student(seed: int = 0) -> StudentUNet:
    torch.manual_seed(seed)
    net = StudentUNet(ch=(8, 8, 8), blocks=(1, 1, 1), cond_ch=COND_CH).eval()
    with torch.no_grad():
        net.tail.weight.normal_(0, 0.05)
    return net


def _scene(h=96, w=112, seed=0, sigma=6.0):
    rng = np.random.default_rng(seed)
    x = noisy_rgb(h, w, seed=seed).astype(np.float32) / 255
    return x, np.clip(x + rng.normal(0, sigma / 255, x.shape), 0, 1).astype(np.float32)


def test_the_condition_is_the_measured_level_function_at_each_pixel():
    _, y = _scene()
    y[0, :4] = [[0, 0, 0], [1, 1, 1], [0.01, 0.5, 0.99], [0.0625, 0.1875, 0.9375]]   # ends, bin centres
    est = measure_noise(y)
    m = est.condition(y)
    assert m.shape == (*y.shape[:2], COND_CH) and m.dtype == np.float32
    centres = (np.arange(BINS) + 0.5) * 255 / BINS
    for c in range(3):                        # the level function of channel c at the pixel's own value
        want = np.interp(y[..., c] * 255, centres, est.nlf[c]) / 255 * 10
        assert np.allclose(m[..., c], want, atol=1e-6)
    assert np.all(m[..., 3] == np.float32(est.rho1)) and np.all(m[..., 4] == np.float32(est.rho2))


def test_the_network_is_told_the_whole_images_measurement_per_tile():
    """What reaches the network for each tile is the condition of that tile's samples under the
    estimate of the whole image, and the result is the same tiled or whole, run after run."""
    _, y = _scene(200, 184)
    den = make_denoiser(_cond_student(), precision="fp32")
    seen = []
    inner = den.model.forward_hwc                  # the network's entry for a tile in its decoded layout

    def spy(x, cond):
        seen.append((x.clone(), cond.clone()))
        return inner(x, cond)

    den.model.forward_hwc = spy
    whole = den.denoise(y, tile=10_000)
    est = measure_noise(y)
    x, cond = seen[-1]
    assert np.allclose(cond.numpy(), est.condition(x.numpy()), atol=1e-6)
    del den.model.forward_hwc
    tiles = []
    tiled = den.denoise(y, tile=160, on_tile=lambda d, t: tiles.append(t))
    assert tiles[-1] > 1
    assert np.array_equal(whole, den.denoise(y, tile=10_000))          # deterministic
    assert np.abs(whole - tiled).max() < 1e-5                           # tiled == whole
    assert np.abs(whole - y).max() > 1e-3                               # the network did something


def test_auto_with_a_conditional_student_takes_one_pass_and_reports_what_it_was_told():
    x, y = _scene()
    den = make_denoiser(_cond_student(), precision="fp32", weights="s.safetensors")
    out, decision = AdaptiveDenoiser(den, den).denoise(y)
    assert decision.path == "one-pass" and decision.network["blend"] == 0.0
    told = decision.network["told"]
    assert told["rho1"] == round(decision.noise.rho1, 3) and len(told["sigma_channels"]) == 3
    assert np.array_equal(out, den.denoise(y, noise=decision.noise))
    clean = np.round(x * 255) / 255                                      # a clean image stays itself
    out, decision = AdaptiveDenoiser(den, den).denoise(np.full_like(clean, 0.5))
    assert decision.path == "clean" and decision.network is None


def test_the_one_pass_output_is_blended_below_level_6_fully_from_3_and_further_on_light_noise():
    from sdap_cli.inference.adaptive import (BETA, ONEPASS_BETA_LIGHT, ONEPASS_BLEND, ONEPASS_BLEND_LIGHT,
                                             onepass_blend_beta, onepass_blend_weight)

    def est(sigma, rho1, rho2=0.0):
        return NoiseEstimate(sigma, [sigma] * 3, np.full((3, BINS), sigma), rho1, rho2, 1000)

    for ramp, rhos in ((ONEPASS_BLEND, (0.4, 0.0)), (ONEPASS_BLEND_LIGHT, (0.1, 0.0)), (ONEPASS_BLEND_LIGHT, (0.5, 0.3))):
        a, lo, hi = ramp                                   # heavy-path noise (phone-like), white, correlated past PD-2
        got = [onepass_blend_weight(est(s, *rhos)) for s in (1.0, lo, (lo + hi) / 2, hi, 20.0)]
        assert got == [a, a, a / 2, 0.0, 0.0], (ramp, rhos, got)
    assert ONEPASS_BLEND_LIGHT[2] > ONEPASS_BLEND[2] and onepass_blend_weight(est(7.0, 0.4)) == 0.0 < onepass_blend_weight(est(7.0, 0.1))
    rng = np.random.default_rng(3)
    x = np.broadcast_to(np.linspace(0.2, 0.8, 112, dtype=np.float32)[None, :, None], (96, 112, 3))
    y = np.clip(x + rng.normal(0, 2.5 / 255, x.shape), 0, 1).astype(np.float32)    # light white noise
    den = make_denoiser(_cond_student(), precision="fp32")
    out, decision = AdaptiveDenoiser(den, den).denoise(y)
    amount = decision.network["blend"]
    assert decision.path == "one-pass" and amount == round(onepass_blend_weight(decision.noise), 4) > 0
    plain = den.denoise(y, noise=decision.noise)
    assert onepass_blend_beta(decision.noise) == ONEPASS_BETA_LIGHT < BETA      # white noise: the light path's beta
    want = wiener_blend(y, plain, decision.noise.sigma_map(plain), ONEPASS_BETA_LIGHT,
                        amount=onepass_blend_weight(decision.noise))
    assert np.abs(out - want).max() < 1e-5                             # the blend of the student's pass
    other = wiener_blend(y, plain, decision.noise.sigma_map(plain), amount=onepass_blend_weight(decision.noise))
    assert np.abs(out - other).max() > 1e-4                            # and beta matters here
    assert onepass_blend_beta(est(4.0, 0.4)) == BETA and onepass_blend_beta(est(4.0, 0.5, 0.3)) == ONEPASS_BETA_LIGHT


def test_a_student_initialised_from_an_unconditioned_one_starts_as_it():
    from sdap_cli.training.distill import _init_student  # noqa: PLC2701 - the helper under test

    plain = StudentUNet(ch=(8, 8, 8), blocks=(1, 1, 1))
    with torch.no_grad():
        plain.tail.weight.normal_(0, 0.05)
    import tempfile
    from pathlib import Path

    from sdap_cli.inference.checkpoints import save_weights

    with tempfile.TemporaryDirectory() as d:
        p = save_weights(Path(d) / "p.safetensors", plain, dtype=torch.float32)
        cond = StudentUNet(ch=(8, 8, 8), blocks=(1, 1, 1), cond_ch=COND_CH)
        _init_student(cond, p)
    y = torch.rand(1, 3, 32, 40)
    with torch.no_grad():
        assert torch.allclose(cond(y, torch.rand(1, COND_CH, 32, 40)), plain(y), atol=1e-6)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_synthetic_noise_has_its_level_and_correlation(kind):
    x = np.full((128, 128, 3), 0.5, np.float32)
    n = (add_noise(x, kind, 8.0, np.random.default_rng(1)) - x) * 255
    assert 7.0 < n.std() < 9.0, n.std()
    r1 = np.mean([np.corrcoef(n[:, :-1, c].ravel(), n[:, 1:, c].ravel())[0, 1] for c in range(3)])
    expected = {"white": 0.0, "signal": 0.0, "box": 0.67, "pd2": 0.44, "bayer": 0.5, "camera": 0.44, "phone": 0.44}[kind]
    assert abs(r1 - expected) < 0.15, (kind, r1)


def test_camera_noise_is_a_phones():
    """``camera``: stronger in the dark than in the light, in red and blue than in green, and positively
    correlated across channels (SIDD's sRGB noise), at the level asked over the whole image."""
    ramp = np.repeat(np.linspace(0.05, 0.95, 256, dtype=np.float32)[None, :, None], 256, 0).repeat(3, 2)
    stds, cross = [], []
    for seed in range(6):
        n = (add_noise(ramp, "camera", 10.0, np.random.default_rng(seed)) - ramp) * 255
        assert 9.0 < n.std() < 11.0, n.std()
        assert n[:, :64].std() > 1.5 * n[:, -64:].std()                        # the dark is noisier
        stds.append(n.reshape(-1, 3).std(0))
        c = np.corrcoef(n[:, 64:].reshape(-1, 3).T)
        cross.append([c[0, 1], c[1, 2], c[0, 2]])
    stds = np.mean(stds, 0)
    assert stds[0] > stds[1] and stds[2] > stds[1], stds                       # the gained channels
    assert 0.05 < np.mean(cross) < 0.6, cross
    from sdap_cli.training.synthetic import _srgb_slope
    slope = _srgb_slope(np.array([0.0, 1e-3, 0.0031308, 0.01, 0.5], np.float32))
    assert np.allclose(slope[:3], 12.92) and 0.5 < slope[4] < slope[3] < 12.92       # the curve's own slope


def test_phone_noise_correlates_red_with_blue_most():
    """``phone``: ``camera`` with red and blue mixed more than green (SIDD's sRGB noise: red-blue about 0.55,
    green with either 0.2-0.3), where ``camera`` correlates every pair alike; same level, same dark-heavy shape."""
    ramp = np.repeat(np.linspace(0.05, 0.95, 256, dtype=np.float32)[None, :, None], 256, 0).repeat(3, 2)
    cross = {"camera": [], "phone": []}
    for kind in cross:
        for seed in range(8):
            n = (add_noise(ramp, kind, 10.0, np.random.default_rng(seed)) - ramp) * 255
            assert 9.0 < n.std() < 11.0, n.std()
            assert n[:, :64].std() > 1.5 * n[:, -64:].std()                    # the dark is noisier
            c = np.corrcoef(n[:, 64:].reshape(-1, 3).T)
            cross[kind].append([c[0, 2], c[0, 1], c[1, 2]])
    rb, rg, gb = np.mean(cross["phone"], 0)
    assert rb > 0.35 and rb > rg + 0.12 and rb > gb + 0.12, (rb, rg, gb)     # red-blue the largest, by far
    c_rb, c_rg, c_gb = np.mean(cross["camera"], 0)
    assert rb - max(rg, gb) > c_rb - max(c_rg, c_gb) + 0.1                     # unlike camera's
    a = add_noise(ramp, "phone", 10.0, np.random.default_rng(5))
    assert np.array_equal(a, add_noise(ramp, "phone", 10.0, np.random.default_rng(5)))   # reproducible


def test_noisy_versions_are_reproducible_and_cycle_the_kinds():
    x = noisy_rgb(40, 40).astype(np.float32) / 255
    a, b = noisy_versions(x, 5, seed=3, index=2), noisy_versions(x, 5, seed=3, index=2)
    assert all(np.array_equal(p[0], q[0]) for p, q in zip(a, b))
    assert [k for _, k, _ in a] == [KINDS[(2 + v) % 5] for v in range(5)]
    assert all(1.0 <= lvl <= 12.0 for _, _, lvl in a)


def test_each_path_gets_its_target():
    x, y = _scene(sigma=6.0)
    heavy = np.clip(x + 0.001, 0, 1).astype(np.float32)
    light = np.clip(x - 0.001, 0, 1).astype(np.float32)
    est = measure_noise(y)
    t, path = path_target(y, heavy, lambda: light, est)
    assert path == choose_path(est)
    if path == "heavy":
        a = heavy_blend_weight(est)
        want = wiener_blend(y, heavy, est.sigma_map(heavy), amount=a) if a else heavy
    else:
        want = wiener_blend(y, light, est.sigma_map(light))
    want = lowfreq_correct(y, want, est.sigma_map(want), est.rho1, est.rho2)   # then checked, as denoise does
    assert np.array_equal(t, want)
    shifted = np.clip(x + np.float32([0.08, 0.0, -0.06]), 0, 1)   # a teacher that moves the colour
    t, _ = path_target(y, shifted, lambda: shifted, est)
    inner = (slice(20, -20), slice(20, -20))
    assert np.abs((t - x)[inner].mean((0, 1))).max() < 0.3 * np.abs((shifted - x)[inner].mean((0, 1))).max()
    flat = np.full((64, 64, 3), 0.5, np.float32)
    t, path = path_target(flat, heavy[:64, :64], lambda: light[:64, :64], measure_noise(flat))
    assert path == "clean" and t is flat


def test_target_blend_scales_each_paths_wiener_blend():
    """--target-blend (light, heavy): 0 gives the network's output as it is (then checked), 1 the full
    blend; where the output lost more than the noise the blend puts part of the input back, so the
    target moves away from the output as the amount grows."""
    from sdap_cli.training_config import DistillConfig
    x, y = _scene(sigma=5.0)
    out = np.full_like(x, 0.5) * 0.5 + x * 0.5                  # an output that smoothed detail away
    est = measure_noise(y)
    path = choose_path(est)
    assert path in ("heavy", "light")
    k = 0 if path == "light" else 1
    dist = []
    for a in (0.0, 0.5, 1.0):
        blend = (a, 1.0) if k == 0 else (1.0, a)
        t, _ = path_target(y, out, lambda: out, est, blend)
        amount = a if k == 0 else a * heavy_blend_weight(est)
        want = wiener_blend(y, out, est.sigma_map(out), amount=amount) if amount else out
        assert np.array_equal(t, lowfreq_correct(y, want, est.sigma_map(want), est.rho1, est.rho2))
        dist.append(float(np.abs(t - out).mean()))
    if k == 0 or heavy_blend_weight(est) > 0:
        assert dist[0] < dist[1] < dist[2]
    assert DistillConfig(data=["d"], teacher="t.safetensors").target_blend == (0.5, 0.0)
    with pytest.raises(ValueError, match="target-blend"):
        DistillConfig(data=["d"], teacher="t.safetensors", target_blend=(1.5, 0.0))


def test_a_deeper_student_starts_as_the_shallower_one(tmp_path):
    """--init of a student with fewer residual blocks (the capacity study of issue 35): the added blocks
    start as the identity, so the deeper network computes what the file computes; other widths are refused."""
    from sdap_cli.errors import CheckpointError
    from sdap_cli.inference.checkpoints import save_weights
    from sdap_cli.training.distill import _init_student
    torch.manual_seed(0)
    small = StudentUNet(ch=(8, 8, 8), blocks=(1, 1, 1), cond_ch=COND_CH)
    for p in small.parameters():
        p.data.normal_(0, 0.1)
    save_weights(tmp_path / "s.safetensors", small)
    same, deep = StudentUNet(ch=(8, 8, 8), blocks=(1, 1, 1), cond_ch=COND_CH), \
        StudentUNet(ch=(8, 8, 8), blocks=(2, 1, 3), cond_ch=COND_CH)
    _init_student(same, tmp_path / "s.safetensors")
    _init_student(deep, tmp_path / "s.safetensors")
    y, c = torch.rand(1, 3, 32, 32), torch.rand(1, COND_CH, 32, 32)
    with torch.no_grad():
        assert torch.equal(same(y, c), deep(y, c))
        assert deep.mid[2].body[2].weight.abs().sum() == 0 and deep.mid[2].body[0].weight.abs().sum() > 0
    for arch in (dict(ch=(8, 8, 4), blocks=(1, 1, 1)), dict(ch=(8, 8, 8), blocks=(1, 1, 0))):
        with pytest.raises(CheckpointError):
            _init_student(StudentUNet(cond_ch=COND_CH, **arch), tmp_path / "s.safetensors")


def test_a_wider_student_starts_as_the_narrower_one(tmp_path):
    """--init of a student with fewer channels per level (issue 35's width arms): the new channels are
    computed but read by no old channel, so the wider (and deeper) network computes what the file computes,
    and a training step moves it (the new weights are not dead)."""
    from sdap_cli.inference.checkpoints import save_weights
    from sdap_cli.training.distill import _init_student
    torch.manual_seed(0)
    small = StudentUNet(ch=(8, 8, 8), blocks=(1, 1, 1), cond_ch=COND_CH)
    for p in small.parameters():
        p.data.normal_(0, 0.1)
    save_weights(tmp_path / "s.safetensors", small)                # (stored at half precision)
    same = StudentUNet(ch=(8, 8, 8), blocks=(1, 1, 1), cond_ch=COND_CH)
    wide = StudentUNet(ch=(12, 16, 24), blocks=(1, 2, 2), cond_ch=COND_CH)
    _init_student(same, tmp_path / "s.safetensors")
    _init_student(wide, tmp_path / "s.safetensors")
    y, c = torch.rand(1, 3, 32, 32), torch.rand(1, COND_CH, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(wide(y, c), same(y, c), rtol=0, atol=1e-6)
        assert wide.head.weight[8:].abs().sum() > 0                 # new channels are computed
        assert wide.tail.weight[:, 8:].abs().sum() == 0             # and read by nothing yet
    out = wide(y, c)
    (out - y).abs().mean().backward()
    assert wide.tail.weight.grad[:, 8:].abs().sum() > 0             # ... until a step moves them


def test_recolour_permutes_the_channels_and_raises_the_saturation():
    rng = np.random.default_rng(0)
    x = (0.3 + 0.4 * rng.random((24, 24, 3))).astype(np.float32)       # nothing clips at a gain of 1.8
    cx = x - x.mean(-1, keepdims=True)
    perms = [(0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]
    seen = set()
    for seed in range(12):
        y = recolour(x, np.random.default_rng(seed))
        assert np.allclose(y.mean(-1), x.mean(-1), atol=1e-5)           # the brightness l is kept
        cy = y - y.mean(-1, keepdims=True)                              # chroma = g x the permuted chroma
        fits = [(float((cy * cx[..., p]).sum() / (cx[..., p] ** 2).sum()), p) for p in perms]
        err, g, p = min((np.abs(cy - g * cx[..., p]).max(), g, p) for g, p in fits)
        assert err < 1e-5 and SATURATION[0] - 1e-4 <= g <= SATURATION[1] + 1e-4, (err, g)
        seen.add(p)
    assert len(seen) >= 3                                               # not one fixed permutation


def test_recoloured_copies_come_with_their_noisy_versions(tmp_path):
    import cv2
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"c{i}.png"), noisy_rgb(48, 40, seed=i))
    plain = synthetic_entries([str(tmp_path)], 2, seed=0)
    more = synthetic_entries([str(tmp_path)], 2, seed=0, recolours=1)
    assert len(plain) == 2 * 3 and len(more) == 2 * 2 * 3
    assert np.array_equal(more[0], plain[0]) and np.array_equal(more[1], plain[1])   # the photo comes first
    copy = more[3]                                                      # photo 0's recoloured copy: its own target
    assert np.array_equal(copy[..., :3], copy[..., 3:6]) and not np.array_equal(copy[..., :3], plain[0][..., :3])
    assert np.array_equal(more[4][..., 3:6], copy[..., 3:6])            # its noisy versions target it


def test_synthetic_share():
    assert synthetic_repeat(600, 100) == 3 and synthetic_repeat(600, 0) == 0 and synthetic_repeat(10, 100) == 1
    for real, syn, share in ((600, 100, 1 / 3), (652, 1200, 0.45), (652, 1200, 0.2), (100, 5000, 0.5)):
        a, b = mix_repeats(real, syn, share)
        assert a >= 1 and b >= 1 and abs(b * syn / (a * real + b * syn) - share) < 0.12, (real, syn, share, a, b)
    assert mix_repeats(0, 7, 0.4) == (1, 1) and mix_repeats(7, 0, 0.4) == (1, 0)


def test_clean_photos_at_scales_and_levels(tmp_path):
    """--clean-scales lists each photo again area-averaged (its own target, with its noisy versions);
    --synthetic-levels bounds the added noise; entries are float16 and carry the maps measured on the input."""
    import cv2
    cv2.imwrite(str(tmp_path / "c.png"), noisy_rgb(64, 48, seed=1))
    e = synthetic_entries([str(tmp_path)], 3, seed=0, levels=(20.0, 20.0), scales=(1.0, 0.5))
    assert len(e) == 2 * 4 and all(x.dtype == np.float16 for x in e)
    assert e[0].shape[:2] == (64, 48) and e[4].shape[:2] == (32, 24)
    small = e[4][..., :3].astype(np.float32)
    want = cv2.resize(e[0][..., :3].astype(np.float32), (24, 32), interpolation=cv2.INTER_AREA)
    assert np.abs(small - want).max() < 2e-3 and np.array_equal(e[4][..., :3], e[4][..., 3:6])
    for noisy in e[5:]:
        assert np.array_equal(noisy[..., 3:6], e[4][..., 3:6])                # the scaled photo is their target
        resid = (noisy[..., :3].astype(np.float32) - noisy[..., 3:6].astype(np.float32)) * 255
        assert 10 < resid.std() < 30                                         # std 20 asked (kinds vary)
        est = measure_noise(noisy[..., :3].astype(np.float32))
        assert np.allclose(noisy[..., 6:].astype(np.float32), est.condition(noisy[..., :3].astype(np.float32)),
                           atol=2e-3)


def test_a_conditional_student_exports_with_its_noise_input(tmp_path):
    from sdap_cli.inference.export import (
        ConditionedPipeline,
        export_torchscript,
        pipeline,
    )

    net = _cond_student()
    pipe = pipeline(net)
    assert isinstance(pipe, ConditionedPipeline)
    _, y = _scene(37, 53)
    noise = torch.from_numpy(measure_noise(y).condition(y)).permute(2, 0, 1)[None]
    x = torch.from_numpy(y).permute(2, 0, 1)[None]
    den = make_denoiser(net, precision="fp32")
    with torch.no_grad():
        ref = pipe(x, noise)[0].permute(1, 2, 0).numpy()
    assert np.abs(ref - den.denoise(y, noise=measure_noise(y))).max() < 1e-5
    export_torchscript(tmp_path / "c.pt", net)
    out = torch.jit.load(str(tmp_path / "c.pt"))(x, noise)
    assert out.shape == x.shape and not out.requires_grad


@pytest.mark.parametrize("kind", ["cpu", "cuda", "mps"])
def test_the_default_network_is_the_student_on_every_device(kind):
    """Issue 32: the teacher's automatic paths smoothed detailed photos (Kodak24 kodim13 31.37 dB); the
    student is the default on CUDA too (only the device's type is read: no GPU needed), the teacher when a
    teacher option or --model teacher asks for it."""
    from sdap_cli.config import InferenceConfig
    from sdap_cli.inference.denoisers import choose_weights

    dev = torch.device(kind)
    assert choose_weights(None, InferenceConfig(), dev).model.role.one_pass
    assert not choose_weights(None, InferenceConfig(model="teacher"), dev).model.role.one_pass
    assert not choose_weights(None, InferenceConfig(pd=1), dev).model.role.one_pass
