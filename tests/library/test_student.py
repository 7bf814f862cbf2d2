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


@pytest.mark.parametrize("blocks", [(1, 1, 1), (1, 2, 3)])
def test_receptive_radius_bounds_the_dependence(blocks):
    net = _random_student(blocks).double()
    r = net.receptive_radius
    n = (2 * r + 48) // 8 * 8                         # the output pixel sits in the middle, far from edges
    y = torch.rand(1, 3, n, n, dtype=torch.float64, requires_grad=True)
    c = n // 2 + 3
    net(y)[0, :, c, c].sum().backward()
    g = y.grad[0].abs().sum(0)
    ys, xs = torch.nonzero(g, as_tuple=True)
    reach = int(max((ys - c).abs().max(), (xs - c).abs().max()))
    assert 0 < reach <= r
    assert reach > r // 2                              # the bound is not wildly loose


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
