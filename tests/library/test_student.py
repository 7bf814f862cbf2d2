"""The distilled student network: shape, exact tiling, receptive field bound, MAC count, weights."""

import numpy as np
import pytest
import torch

from sdap_cli.inference.checkpoints import load_weights, save_weights
from sdap_cli.inference.denoiser import Denoiser, StudentDenoiser, make_denoiser
from sdap_cli.method.dbsnl import DBSNl
from sdap_cli.method.student import StudentUNet


def _random_student(blocks=(1, 1, 1)) -> StudentUNet:
    torch.manual_seed(0)
    net = StudentUNet(ch=(8, 8, 8), blocks=blocks)
    with torch.no_grad():
        net.tail.weight.normal_(0, 0.05)
    return net.eval()


def test_starts_as_the_identity():
    net = StudentUNet(ch=(8, 8, 8), blocks=(1, 1, 1))
    y = torch.rand(2, 3, 16, 24)
    assert torch.equal(net(y), y)


@pytest.mark.parametrize("blocks", [(1, 1, 1), (1, 2, 3), (2, 1, 2)])
def test_receptive_radius_is_the_exact_dependence(blocks):
    """The tile margin is the radius rounded up to 8: it must bound the reach of every output pixel, and
    (being exact) some pixel of an 8-pixel cell reaches that far."""
    net = _random_student(blocks).double()
    r = net.receptive_radius
    n = (2 * r + 48) // 8 * 8                         # the output pixel sits in the middle, far from edges
    reaches = []
    for off in range(8):
        y = torch.rand(1, 3, n, n, dtype=torch.float64, requires_grad=True)
        c = n // 2 // 8 * 8 + off
        net(y)[0, :, c, c].sum().backward()
        g = y.grad[0].abs().sum(0)
        ys, xs = torch.nonzero(g, as_tuple=True)
        reaches.append(int(max((ys - c).abs().max(), (xs - c).abs().max())))
    assert max(reaches) == r


def test_tiled_equals_whole_image_on_odd_sizes():
    net = _random_student()
    img = np.random.default_rng(0).random((203, 150, 3), dtype=np.float32)
    den = StudentDenoiser(net, precision="fp32")
    whole = den.denoise(img, tile=4096)
    tiles = []
    tiled = den.denoise(img, tile=den.margin * 2 + 24, on_tile=lambda d, t: tiles.append(t))
    assert tiles[-1] > 4
    assert whole.shape == img.shape
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_compiled_student_matches_eager_on_tiles():
    net = _random_student()
    img = np.random.default_rng(1).random((90, 70, 3), dtype=np.float32)
    eager = StudentDenoiser(net, precision="fp32").denoise(img)
    den = StudentDenoiser(net, precision="fp32", compile=True, strength=0.75)
    tiled = den.denoise(img, tile=den.margin * 2 + 24)
    np.testing.assert_allclose(tiled, img + 0.75 * (eager - img), atol=1e-5)


def test_macs_per_pixel_matches_a_hand_count():
    # level 1 (4 px per feature): head 12*8*9 + enc1 2*8*8*9 + dec1 2*8*8*9 + tail 8*12*9 = 4032 -> 1008
    # level 2 (16): down1 8*8*4 + enc2 1152 + dec2 1152 = 2560 -> 160; up1 1x1 8->32 = 256 -> 16
    # level 3 (64): down2 256 + mid 1152 = 1408 -> 22; up2 1x1 8->32 = 256 -> 4
    assert StudentUNet(ch=(8, 8, 8), blocks=(1, 1, 1)).macs_per_pixel() == pytest.approx(1210)
    half = StudentUNet(ch=(8, 8, 8), blocks=(1, 1, 1)).to(torch.bfloat16)       # as a bf16 Denoiser holds it
    assert half.macs_per_pixel() == pytest.approx(1210)


def test_weights_round_trip_and_factory(tmp_path):
    net = _random_student()
    path = save_weights(tmp_path / "s.safetensors", net, dtype=torch.float32)
    lw = load_weights(path)
    assert isinstance(lw.model, StudentUNet) and lw.model.arch == net.arch
    assert lw.metadata["network"] == "student"
    y = torch.rand(1, 3, 32, 40)
    with torch.no_grad():
        assert torch.equal(lw.model(y), net(y))
    assert isinstance(make_denoiser(lw.model), StudentDenoiser)
    assert type(make_denoiser(DBSNl(base_ch=8, num_module=1))) is Denoiser
    with pytest.raises(ValueError, match="one pass"):
        StudentDenoiser(net, refine="e")


def test_student_file_with_wrong_tensors_is_rejected(tmp_path):
    from safetensors.torch import load_file, save_file

    from sdap_cli.errors import CheckpointError

    path = save_weights(tmp_path / "s.safetensors", _random_student())
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    sd = load_file(str(path))
    sd.pop("tail.bias")
    save_file(sd, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match="bad.safetensors.*StudentUNet"):
        load_weights(tmp_path / "bad.safetensors")


def _busy_student(cond_ch=0) -> StudentUNet:
    """Every weight random (not just the tail), so each layer's rounding shows."""
    torch.manual_seed(1)
    net = StudentUNet(ch=(16, 32, 32), blocks=(1, 1, 2), cond_ch=cond_ch).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.05)
    return net


@pytest.mark.parametrize("cond_ch", [0, 5])
def test_the_decoded_layout_path_is_the_same_function(cond_ch):
    """forward_hwc (permuted head and tail channels, up-sampling into the skip, one strided add) computes
    forward's result: to float rounding in fp32; with the CPU's fused convolutions too."""
    net = _busy_student(cond_ch)
    y = torch.rand(1, 3, 48, 40)
    cond = torch.rand(1, cond_ch, 48, 40) if cond_ch else None
    hwc = y[0].permute(1, 2, 0).contiguous()
    chwc = cond[0].permute(1, 2, 0).contiguous() if cond_ch else None
    with torch.inference_mode():
        want = net(y, cond)[0].permute(1, 2, 0)
        for fused in (False, True):
            net.fused = fused
            got = net.to(memory_format=torch.channels_last).forward_hwc(hwc, chwc)
            assert got.shape == hwc.shape and got.dtype == torch.float32
            assert torch.allclose(got, want, atol=2e-5), (fused, (got - want).abs().max())
    assert (want - hwc).abs().max() > 0.05                   # the network changes the image


def test_fused_bf16_stays_within_bf16_rounding_of_the_unfused_network():
    net = _busy_student(5).to(torch.bfloat16).to(memory_format=torch.channels_last)
    y, cond = torch.rand(64, 48, 3), torch.rand(64, 48, 5)
    with torch.inference_mode():
        net.fused = False
        plain = net.forward_hwc(y, cond)
        net.fused = True
        fused = net.forward_hwc(y, cond)
    g = (plain - y).abs().max()                              # the size of the correction the body makes
    assert 0 < (fused - plain).abs().max() <= g * 2 ** -5    # a few bf16 roundings of it, not more


def test_the_denoiser_runs_the_fast_path_and_macs_count_every_conv():
    net = _busy_student()
    macs = net.macs_per_pixel()
    den = make_denoiser(net, precision="fp32")
    assert den.hwc and net.fused                             # CPU, fp32: oneDNN's fused convolutions
    assert net.macs_per_pixel() == macs                      # the hooks still see every convolution
    img = np.random.default_rng(0).random((37, 45, 3), dtype=np.float32)
    plain = StudentDenoiser(_busy_student(), precision="fp32")
    plain.hwc = False                                        # the generic path: NCHW through net()
    assert np.abs(den.denoise(img) - plain.denoise(img)).max() < 1e-5


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_any_strided_image_gives_what_its_contiguous_copy_gives(dtype):
    """Issue 36 item 0: a Fortran-ordered array (scipy's .mat blocks), a transposed view and a reversed slice
    are denoised exactly as their C-contiguous copies, by the decoded-layout path of a conditional student
    (the tiles are converted to C order; ``forward_hwc`` takes any strides too)."""
    den = StudentDenoiser(_busy_student(5))
    rng = np.random.default_rng(3)
    scale = 1.0 if dtype == np.float32 else np.iinfo(dtype).max
    base = (rng.random((40, 36, 3)) * scale).astype(dtype)
    for view in (np.asfortranarray(base), base.transpose(1, 0, 2), base[::-1, ::2]):
        assert not view.flags.c_contiguous
        want = den.denoise(np.ascontiguousarray(view), tile=32)
        assert np.array_equal(den.denoise(view, tile=32), want)
        assert np.array_equal(den.denoise(view), den.denoise(np.ascontiguousarray(view)))
    with torch.inference_mode():
        net = den.model
        y = torch.rand(24, 16, 3)
        c = torch.rand(24, 16, 5)
        got = net.forward_hwc(y.transpose(0, 1).contiguous().transpose(0, 1), c.transpose(0, 1).contiguous()
                              .transpose(0, 1))
        assert torch.equal(got, net.forward_hwc(y, c))
