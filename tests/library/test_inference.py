import numpy as np
import pytest
import torch

from sdap_cli.inference.denoiser import Denoiser
from sdap_cli.inference.tiling import required_margin, tile_boxes
from sdap_cli.method.dbsnl import DBSNl
from sdap_cli.method.refine import r3_mask


@pytest.mark.parametrize("refine", ["none", "e", "r3"])
@pytest.mark.parametrize("hw", [(61, 83), (64, 64), (33, 100)])
def test_tiled_equals_whole_image(tiny_model, refine, hw, device):
    d = Denoiser(tiny_model, refine=refine, device=device, r3_t=2)
    img = np.random.default_rng(0).random((*hw, 3), dtype=np.float32)
    whole = d.denoise(img, tile=4096)
    tiles = []
    tiled = d.denoise(img, tile=2 * d.margin + 8, on_tile=lambda done, total: tiles.append(total))
    assert tiles and tiles[0] > 1                 # really tiled
    assert whole.shape == img.shape and whole.dtype == np.float32
    assert np.abs(whole - tiled).max() < 1e-4


def test_odd_sizes_keep_shape_and_range(tiny_model):
    d = Denoiser(tiny_model, refine="e")
    for hw in [(1, 1), (2, 3), (15, 10), (31, 37)]:
        out = d.denoise(np.random.default_rng(1).random((*hw, 3), dtype=np.float32))
        assert out.shape == (*hw, 3)
        assert out.min() >= 0 and out.max() <= 1


def test_refinements_differ_and_e_is_a_second_pass(tiny_model):
    img = np.random.default_rng(2).random((32, 32, 3), dtype=np.float32)
    outs = {r: Denoiser(tiny_model, refine=r).denoise(img) for r in ("none", "e", "r3")}
    assert not np.allclose(outs["none"], outs["e"])
    assert not np.allclose(outs["e"], outs["r3"])
    # E = f(PD pass) on the unclamped PD output; on this input nothing is clipped
    d = Denoiser(tiny_model, refine="none")
    x = torch.from_numpy(img).permute(2, 0, 1)[None]
    with torch.inference_mode():
        ref = tiny_model(d.denoise_tensor(x)).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    assert np.abs(ref - outs["e"]).max() < 1e-5


def test_r3_mask_is_tile_invariant_and_has_rate_p():
    m = r3_mask((3, 64, 80), 0, 0, t=1, p=0.16, seed=5, device=torch.device("cpu"))
    part = r3_mask((3, 20, 30), 10, 40, t=1, p=0.16, seed=5, device=torch.device("cpu"))
    assert torch.equal(m[:, 10:30, 40:70], part)
    assert abs(m.float().mean().item() - 0.16) < 0.01
    other = r3_mask((3, 64, 80), 0, 0, t=2, p=0.16, seed=5, device=torch.device("cpu"))
    assert not torch.equal(m, other)


def test_input_scale_is_applied(tiny_model):
    img = np.random.default_rng(3).random((16, 16, 3), dtype=np.float32)
    a = Denoiser(tiny_model, refine="none", input_scale=1.0).denoise(img)
    b = Denoiser(tiny_model, refine="none", input_scale=255.0).denoise(img)
    assert not np.allclose(a, b)


def test_tile_boxes_cover_and_align():
    boxes = tile_boxes(250, 130, 100, 20, 2)
    cover = np.zeros((250, 130), int)
    for (ty0, ty1, tx0, tx1), (cy0, cy1, cx0, cx1) in boxes:
        cover[cy0:cy1, cx0:cx1] += 1
        assert ty0 % 2 == 0 and tx0 % 2 == 0
        assert ty1 - ty0 <= 100 and tx1 - tx0 <= 100
        # the tile holds the core and its margin, clipped to the image
        assert ty0 <= max(cy0 - 20, 0) and ty1 >= min(cy1 + 20, 250)
        assert tx0 <= max(cx0 - 20, 0) and tx1 >= min(cx1 + 20, 130)
        assert 0 <= ty0 and ty1 <= 250 and 0 <= tx0 and tx1 <= 130
    assert (cover == 1).all()
    # one tile shape for the whole image (compiled graphs and cuDNN autotuning are per shape), and no
    # more tiles than the fewest that fit: the border tiles do not waste a tile's worth of work
    assert len({(t[1] - t[0], t[3] - t[2]) for t, _ in boxes}) == 1
    assert len(boxes) == 5 * 3                                       # ceil(250 / 60) x ceil(130 / 60)
    (ty0, ty1, tx0, tx1), _ = boxes[0]
    # equal cores (250 = 5 x 50, 130 <= 3 x 44) plus both margins, not the full 100 x 100 tile
    assert (ty1 - ty0, tx1 - tx0) == (50 + 40, 44 + 40)


def test_margin_covers_the_default_receptive_field():
    assert required_margin(9, 2, "none") >= 58
    assert required_margin(9, 2, "e") >= 87
    assert required_margin(9, 2, "none") >= 64 or required_margin(9, 2, "e") >= 64


def test_oom_retries_with_half_tile(tiny_model, monkeypatch):
    d = Denoiser(tiny_model, refine="none")
    img = np.random.default_rng(4).random((96, 96, 3), dtype=np.float32)
    expected = d.denoise(img, tile=4096)
    calls = []
    real = Denoiser._denoise_tiled

    def flaky(self, y, out, tile, margin, post, on_tile, noise=None):
        calls.append(tile)
        if tile > 64:
            out[:] = -1         # a half-written output is overwritten by the retry
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, y, out, tile, margin, post, on_tile, noise)

    monkeypatch.setattr(Denoiser, "_denoise_tiled", flaky)
    out = d.denoise(img, tile=256)
    assert calls[0] == 256 and calls[-1] <= 64
    assert np.abs(out - expected).max() < 1e-4


def test_non_oom_errors_propagate(tiny_model, monkeypatch):
    d = Denoiser(tiny_model, refine="none")

    def broken(self, *a):
        raise RuntimeError("something else")

    monkeypatch.setattr(Denoiser, "_denoise_tiled", broken)
    with pytest.raises(RuntimeError, match="something else"):
        d.denoise(np.zeros((8, 8, 3), np.float32))


def test_bf16_stays_close_to_fp32(tiny_model):
    img = np.random.default_rng(5).random((32, 32, 3), dtype=np.float32)
    a = Denoiser(tiny_model, refine="e", precision="fp32").denoise(img)
    b = Denoiser(DBSNl(**tiny_model.arch).eval().requires_grad_(False), refine="e")
    b.model.load_state_dict(tiny_model.state_dict())
    b = Denoiser(b.model, refine="e", precision="bf16").denoise(img)
    assert np.abs(a - b).mean() < 0.01


def test_auto_tile_is_bounded_aligned_and_scales_with_width():
    from sdap_cli.inference.tiling import auto_tile

    cpu = torch.device("cpu")
    full_fp32 = Denoiser(DBSNl(), refine="e").bytes_per_pixel
    full = auto_tile(cpu, full_fp32, 88, 2)
    assert 256 <= full <= 2048 and full % 2 == 0
    assert full * full * full_fp32 <= (1 << 30) * 1.01            # activations within the 1 GiB CPU budget
    assert Denoiser(DBSNl(), precision="bf16").bytes_per_pixel == full_fp32 / 2
    assert auto_tile(cpu, full_fp32 / 2, 88, 2) >= full            # half the bytes per pixel
    assert auto_tile(cpu, Denoiser(DBSNl(base_ch=32)).bytes_per_pixel, 88, 2) >= full


@pytest.mark.slow
def test_compiled_denoiser_matches_eager_on_tiles(tiny_model, device):
    """--compile (inductor; frozen weights on CPU, CUDA graphs on CUDA) gives the eager result, whole and
    tiled (one tile shape for all tiles), and leaves the module itself uncompiled."""
    den = Denoiser(tiny_model, refine="e", device=device, compile=True)
    assert den.network is not den.model
    side = 2 * den.margin + 16
    img = np.random.default_rng(5).random((side + 30, side + 12, 3), dtype=np.float32)
    eager = Denoiser(tiny_model, refine="e", device=device).denoise(img)
    tiles = []
    tiled = den.denoise(img, tile=side, on_tile=lambda done, total: tiles.append(total))
    assert tiles[-1] > 1
    np.testing.assert_allclose(tiled, eager, atol=1e-5)
    np.testing.assert_allclose(den.denoise(img), eager, atol=1e-5)


def test_strength_blends_output_with_input_and_tiles_exactly(tiny_model):
    """strength s gives y + s (x_hat - y): 0 is the input, 1 the network, 0.5 the midpoint, and the
    blend is per pixel, so tiled == whole still holds."""
    img = np.random.default_rng(6).random((40, 34, 3), dtype=np.float32)
    full = Denoiser(tiny_model, refine="none").denoise(img)
    assert not np.allclose(full, img, atol=1e-3)
    np.testing.assert_allclose(Denoiser(tiny_model, refine="none", strength=0.0).denoise(img), img, atol=1e-6)
    half = Denoiser(tiny_model, refine="none", strength=0.5)
    np.testing.assert_allclose(half.denoise(img), (full + img) / 2, atol=1e-6)
    tile = 2 * half.margin + 8
    np.testing.assert_allclose(half.denoise(img, tile=tile), half.denoise(img), atol=1e-6)
    with pytest.raises(ValueError, match="strength"):
        Denoiser(tiny_model, strength=1.5)


def test_tile_shape_is_the_shape_denoise_feeds_the_network(tiny_model):
    den = Denoiser(tiny_model, refine="none")
    seen = set()
    real = den.denoise_tensor
    den.denoise_tensor = lambda t, origin=(0, 0), cond=None: (seen.add(tuple(t.shape[-2:])), real(t, origin, cond))[1]
    img = np.random.default_rng(7).random((75, 61, 3), dtype=np.float32)
    tile = 2 * den.margin + 10
    den.denoise(img, tile=tile)
    assert seen == {den.tile_shape(75, 61, tile)}
