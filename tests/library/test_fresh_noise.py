"""Fresh synthetic noise (``sdap distill --fresh-noise``): every crop of a clean photo gets a new kind, level
and noise draw, and is told the whole photo's reading at that level, interpolated between readings made once."""

import numpy as np
import pytest

from sdap_cli.inference.noise import COND_CH, measure_noise
from sdap_cli.training.datasets import NoisyCrops
from sdap_cli.training.onepass import synthetic_entries
from sdap_cli.training.synthetic import ALL_KINDS, FRESH_GRID, KINDS, FreshNoise, add_noise, kind_weights
from tests.helpers import noisy_rgb


@pytest.fixture(scope="module")
def photo():
    """A smooth photo (a blurred random scene: it reads about 1 level), so added noise dominates its reading."""
    import cv2
    x = cv2.GaussianBlur(noisy_rgb(96, 80, seed=3).astype(np.float32), (0, 0), 3)
    return (np.rint(x) / 255).astype(np.float32)


@pytest.fixture(scope="module")
def source(photo):
    return FreshNoise(photo, seed=0, index=0, levels=(2.0, 20.0), clean_share=0.25)


def test_the_reading_is_measured_at_the_grid_and_grows_between(source, photo):
    assert np.allclose(source.grid, np.geomspace(2, 20, FRESH_GRID))
    base = measure_noise(photo)
    assert np.allclose(source.reading("white", 0.0).nlf, base.nlf)
    for kind in KINDS:
        for j, s in enumerate(source.grid):
            got, want = source.reading(kind, float(s)), source.readings[kind][j]
            assert np.allclose(got.nlf, want.nlf, atol=1e-6) and abs(got.rho1 - want.rho1) < 1e-6
        sig = [source.reading(kind, s).sigma for s in (0.0, 1.0, 3.0, 7.0, 15.0, 20.0, 40.0)]
        assert all(b >= a - 1e-9 for a, b in zip(sig, sig[1:])), (kind, sig)   # more noise never reads less
    lo, hi = source.readings["white"][1].sigma, source.readings["white"][2].sigma
    mid = float(np.sqrt((source.grid[1] ** 2 + source.grid[2] ** 2) / 2))
    assert abs(source.reading("white", mid).sigma ** 2 - (lo * lo + hi * hi) / 2) < 1e-6   # linear in variance
    box = source.reading("box", 12.0)
    assert box.rho1 > source.reading("white", 12.0).rho1 + 0.3                     # correlated noise reads so


def test_each_crop_gets_new_noise_on_its_clean_target_and_the_maps_of_its_reading(source, photo):
    crops = [source.sample(np.random.default_rng(k), 32) for k in range(40)]
    assert all(c.shape == (32, 32, 6 + COND_CH) and c.dtype == np.float32 for c in crops)
    again = source.sample(np.random.default_rng(5), 32)
    assert np.array_equal(again, crops[5])                                       # a pure function of the rng
    clean = [c for c in crops if np.array_equal(c[..., :3], c[..., 3:6])]
    noisy = [c for c in crops if not np.array_equal(c[..., :3], c[..., 3:6])]
    assert 3 <= len(clean) <= 20 and noisy                                       # about a quarter clean
    for c in clean:                                                              # told the photo's own reading
        assert np.allclose(c[..., 6:], measure_noise(photo).condition(c[..., :3]), atol=1e-6)
    for c in noisy:
        found = [(y, x) for y in range(96 - 31) for x in range(80 - 31)
                 if np.array_equal(photo[y:y + 32, x:x + 32], c[..., 3:6])]
        assert found                                                             # the target is the photo itself
        resid = (c[..., :3] - c[..., 3:6]) * 255
        assert 0.5 < resid.std() < 30 and np.allclose(np.rint(c[..., :3] * 255), c[..., :3] * 255, atol=1e-4)
        told = c[..., 6:9] * 255 / 10                                           # the maps carry 10 sigma / 255
        assert told.min() > 0.5                                                 # the reading of a noisy crop
    resids = [np.round((c[..., :3] - c[..., 3:6]) * 255, 3).tobytes() for c in noisy]
    assert len(set(resids)) == len(resids)                                      # never the same draw twice


def test_kind_weights_draw_only_the_kinds_weighed(photo):
    from typing import get_args
    from sdap_cli.training_config import DistillConfig
    key = get_args(get_args(DistillConfig.model_fields["synthetic_kinds"].annotation)[0])[0]
    assert get_args(key) == ALL_KINDS                                          # the config takes exactly these
    assert ALL_KINDS[:len(KINDS)] == KINDS                                     # old recipes draw what they drew
    assert kind_weights(None) is None
    assert kind_weights({"white": 3, "box": 1}).tolist() == [0.75, 0.0, 0.25, 0.0, 0.0, 0.0, 0.0]
    assert kind_weights({"phone": 1})[ALL_KINDS.index("phone")] == 1.0
    assert set(FreshNoise(photo, seed=0, index=0, kinds=None).readings) == set(KINDS)   # no camera unasked
    weighed = FreshNoise(photo, seed=0, index=0, kinds={"white": 1, "camera": 2})
    assert set(weighed.readings) == {"white", "camera"}                        # read only the kinds drawn
    drawn = [weighed.sample(np.random.default_rng(s), 32) for s in range(40)]
    assert any(abs(c[..., :3] - c[..., 3:6]).max() > 0 for c in drawn)
    for bad in ({"gauss": 1}, {"white": -1}, {"white": 0}):
        with pytest.raises(ValueError, match="kind"):
            kind_weights(bad)
    told_rho1 = {}
    for kind in ("white", "box"):
        src = FreshNoise(photo, seed=0, index=0, levels=(8.0, 20.0), clean_share=0.0, kinds={kind: 1.0})
        crops = [src.sample(np.random.default_rng(k), 32) for k in range(12)]
        told_rho1[kind] = [float(c[0, 0, 6 + 3]) for c in crops]                 # maps: 3 levels, rho1, rho2
    assert max(told_rho1["white"]) < 0.4 < 0.6 < min(told_rho1["box"])          # box noise reads correlated


def test_fresh_entries_replace_the_fixed_versions_and_crop_through_noisy_crops(tmp_path):
    import cv2
    cv2.imwrite(str(tmp_path / "c.png"), noisy_rgb(40, 48, seed=1))            # smaller than the patch below
    fixed = synthetic_entries([str(tmp_path)], 3, seed=0, recolours=1)
    fresh = synthetic_entries([str(tmp_path)], 3, seed=0, recolours=1, fresh=True)
    assert len(fixed) == 2 * 4 and len(fresh) == 3 and all(isinstance(f, FreshNoise) for f in fresh)
    assert all(f.clean_share == 0.25 for f in fresh) and [f.gray for f in fresh] == [False, False, True]
    assert np.allclose(fresh[0]._clean[2:-2, 2:-2], fixed[0][..., 3:6].astype(np.float32), atol=1e-3)
    data = NoisyCrops([], 64, 4, seed=1, arrays=fresh)
    a, b = data[7], data[7]
    assert a.shape == (6 + COND_CH, 64, 64) and np.array_equal(a.numpy(), b.numpy())   # resumable
    assert not np.array_equal(data[6].numpy(), a.numpy())


def test_add_noise_on_a_crop_with_margin_is_unbiased_at_its_border():
    """The crop's noise is drawn with a margin: box noise keeps its correlation up to the crop's edge."""
    x = np.full((36, 36, 3), 0.5, np.float32)
    rs = []
    for k in range(200):
        n = (add_noise(x, "box", 20.0, np.random.default_rng(k)) - 0.5)[2:-2, 2:-2]
        rs.append((n[0, :-1] * n[0, 1:]).mean() / (n[0] * n[0]).mean())
    assert abs(np.mean(rs) - 2 / 3) < 0.05


def test_a_gray_source_is_the_photos_luma_with_noise_equal_in_its_channels(photo):
    src = FreshNoise(photo, seed=0, index=0, levels=(5.0, 20.0), clean_share=0.0, gray=True)
    luma = photo @ np.array([0.299, 0.587, 0.114], np.float32)
    for k in range(6):
        c = src.sample(np.random.default_rng(k), 32)
        noisy, target = c[..., :3], c[..., 3:6]
        assert np.array_equal(noisy[..., 0], noisy[..., 1]) and np.array_equal(noisy[..., 0], noisy[..., 2])
        assert np.array_equal(target[..., 0], target[..., 2]) and not np.array_equal(noisy, target)
        assert any(np.allclose(luma[y:y + 32, x:x + 32], target[..., 0], atol=1e-6)
                   for y in range(96 - 31) for x in range(80 - 31))
    assert src.readings["white"][-1].sigma > 10                           # read on the gray noisy photo
