import numpy as np
import pytest
import torch

from sdap_cli.method.dbsnl import DBSNl
from sdap_cli.method.loss import cyclic_l1
from sdap_cli.method.sampler import rsg_permutations, rsg_sample
from sdap_cli.training.trainer import sdap_loss
from tests.helpers import assert_partitions_cells


def test_sub_images_partition_each_cell():
    g = torch.Generator().manual_seed(0)
    b, c, H, W, p = 2, 3, 20, 15, 5
    # unique values so each pixel can be traced
    y = torch.arange(b * c * H * W, dtype=torch.float64).view(b, c, H, W)
    assert_partitions_cells(rsg_sample(y, p, generator=g), y, p)


def test_channels_share_the_permutation():
    g = torch.Generator().manual_seed(1)
    y = torch.rand(1, 1, 10, 10).repeat(1, 3, 1, 1)
    subs = rsg_sample(y, 5, generator=g)
    assert torch.equal(subs[:, :, 0], subs[:, :, 1]) and torch.equal(subs[:, :, 0], subs[:, :, 2])


def test_positions_are_uniform_chi_square():
    g = torch.Generator().manual_seed(1234)
    perm = rsg_permutations(64, 16, 16, 5, generator=g)      # 16384 cells
    counts = np.zeros((25, 25))
    k = perm.reshape(-1, 25).numpy()
    for slot in range(25):
        counts[slot] = np.bincount(k[:, slot], minlength=25)
    n = k.shape[0]
    expected = n / 25
    chi2 = ((counts - expected) ** 2 / expected).sum(axis=1)   # one test per sub-image slot, df = 24
    # 99.9th percentile of chi2(24) is 51.18; with the fixed seed every slot must pass
    assert chi2.max() < 51.18, chi2.max()
    # and each cell is a permutation
    assert np.all(np.sort(k, axis=1) == np.arange(25))


def test_rejects_patch_not_multiple_of_p():
    with pytest.raises(ValueError, match="multiple of the RSG cell size"):
        rsg_sample(torch.zeros(1, 3, 12, 10), 5)


def test_batched_loss_equals_per_sub_image_loop():
    torch.manual_seed(0)
    net = DBSNl(base_ch=8, num_module=1)
    y = torch.rand(2, 3, 20, 20)
    loss = sdap_loss(net, y, 5, generator=torch.Generator().manual_seed(7))
    # the reference: 25 separate forwards, sum of 25 mean L1 terms
    subs = rsg_sample(y, 5, generator=torch.Generator().manual_seed(7))
    ref = 0.0
    for j in range(25):
        ref = ref + torch.nn.functional.l1_loss(net(subs[j]), subs[(j + 1) % 25])
    assert torch.allclose(loss, ref, rtol=1e-5, atol=1e-6)


def test_cyclic_l1_targets_next_sample():
    subs = torch.zeros(3, 1, 1, 2, 2)
    subs[1] = 1.0
    out = torch.zeros_like(subs)
    # j=0 -> target subs[1] (ones): 1; j=1 -> subs[2] (zeros): 0; j=2 -> subs[0]: 0
    assert float(cyclic_l1(out, subs)) == pytest.approx(1.0)
