import pytest
import torch

from sdap_cli.method.pd import pad_to_multiple, pd_down, pd_up


@pytest.mark.parametrize("f, shape", [(f, s) for f in (1, 2, 3, 5) for s in ((1, 3, 30, 60), (2, 1, 15, 45))
                                      if s[2] % f == 0 and s[3] % f == 0])
def test_pd_round_trip_is_identity(f, shape):
    x = torch.rand(*shape)
    assert torch.equal(pd_up(pd_down(x, f), f), x)


def test_pd_sub_images_are_phase_shifted_grids():
    x = torch.arange(2 * 3 * 6 * 8.0).view(2, 3, 6, 8)
    s = pd_down(x, 2)
    assert s.shape == (8, 3, 3, 4)
    # sub-image (b=1, i=1, j=0) takes rows 1,3,5 and columns 0,2,4,6 of image 1
    assert torch.equal(s[1 * 4 + 1 * 2 + 0], x[1, :, 1::2, 0::2])


def test_pd_rejects_sizes_not_multiple():
    with pytest.raises(ValueError, match="multiple of the PD factor"):
        pd_down(torch.zeros(1, 3, 5, 6), 2)


@pytest.mark.parametrize("hw", [(15, 10), (31, 37), (1, 7), (2, 3)])
def test_pad_to_multiple_then_crop(hw):
    x = torch.rand(1, 3, *hw)
    y, orig = pad_to_multiple(x, 2)
    assert orig == hw
    assert y.shape[-2] % 2 == 0 and y.shape[-1] % 2 == 0
    assert torch.equal(y[..., : hw[0], : hw[1]], x)
