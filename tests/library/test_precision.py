"""bf16/fp16 inference keeps the output's precision: a 16-bit or float file gets as many distinct values as
under fp32, not the 8 bits of a bf16 result (the networks keep their output layer, or their residual add,
in float32: ``precise_layers``)."""

import numpy as np
import pytest
import torch

from sdap_cli.inference.checkpoints import STUDENT_WEIGHTS_NAME, default_weights_path, load_weights
from sdap_cli.inference.denoiser import make_denoiser
from sdap_cli.method.networks import NETWORKS
from tests.helpers import noisy_rgb

SMALL = {"dbsnl": {"base_ch": 8, "num_module": 1}, "student": {"ch": (8, 8, 8), "blocks": (1, 1, 1)}}


def _net(kind):
    torch.manual_seed(0)
    net = NETWORKS[kind](**SMALL[kind]).eval()
    with torch.no_grad():
        if kind == "student":                     # zero-initialised tail: give the correction some size
            net.tail.weight.normal_(0, 0.02)
        else:
            net.tail[-1].bias.fill_(0.5)
    return net


SHIPPED = {"dbsnl": default_weights_path(), "student": default_weights_path(STUDENT_WEIGHTS_NAME)}


@pytest.mark.parametrize("kind", sorted(NETWORKS))
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_low_precision_keeps_16bit_output(kind, precision):
    """The shipped networks (random ones make too few distinct values to tell) on a 16-bit image."""
    y = noisy_rgb(96, 96, np.uint16, seed=1)
    outs = {}
    for p in ("fp32", precision):
        den = make_denoiser(load_weights(SHIPPED[kind]).model, precision=p, refine="e", pd=2)
        outs[p] = den.denoise(y, out=np.empty_like(y), tile=10_000)
    n32, nlow = len(np.unique(outs["fp32"])), len(np.unique(outs[precision]))
    assert n32 > 5000
    assert nlow >= 0.8 * n32, (n32, nlow)        # bf16 rounding of the output would leave a few hundred
    diff = np.abs(outs["fp32"].astype(np.int64) - outs[precision].astype(np.int64))
    assert diff.mean() < 0.5 * 257, diff.mean()   # within half an 8-bit level of fp32 on average


@pytest.mark.parametrize("kind", sorted(NETWORKS))
def test_training_forward_unchanged_in_fp32(kind):
    """In float32 (and under autocast, where the weights stay float32) the casts are no-ops."""
    net = _net(kind)
    x = torch.rand(1, 3, 16, 16)
    assert net(x).dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert net(x).dtype in (torch.float32, torch.bfloat16)
