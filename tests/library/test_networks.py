"""Every network in the checkpoint table answers for itself (the protocol the Denoiser, the benchmark,
the commands and the loaders use instead of asking for its class)."""

import numpy as np
import pytest
import torch

from sdap_cli.inference.checkpoints import load_weights, save_weights
from sdap_cli.inference.denoiser import make_denoiser
from sdap_cli.method.networks import NETWORKS, STUDENT, TEACHER

SMALL = {"dbsnl": {"base_ch": 8, "num_module": 1}, "student": {"ch": (8, 8, 8), "blocks": (1, 1, 1)}}


@pytest.mark.parametrize("kind", sorted(NETWORKS))
def test_protocol(kind, tmp_path):
    cls = NETWORKS[kind]
    assert cls.kind == kind and cls.role in (TEACHER, STUDENT)
    assert "none" in cls.role.refines and 1 in cls.role.pd_factors and cls.align >= 1
    torch.manual_seed(0)
    net = cls(**SMALL[kind]).eval()
    assert net.receptive_radius > 0 and net.macs_per_pixel() > 0 and net.activation_bytes_per_pixel > 0
    back = load_weights(save_weights(tmp_path / "n.safetensors", net, dtype=torch.float32)).model
    assert type(back) is cls and back.arch == net.arch
    den = make_denoiser(back, precision="fp32")
    assert den.pd in cls.role.pd_factors and den.refine in cls.role.refines
    assert den.align % cls.align == 0 and den.margin % den.align == 0
    assert den.denoise(np.zeros((11, 13, 3), np.float32)).shape == (11, 13, 3)


def test_unknown_network_in_metadata_is_a_checkpoint_error(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from sdap_cli.errors import CheckpointError

    path = save_weights(tmp_path / "n.safetensors", NETWORKS["student"](**SMALL["student"]))
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
    meta["network"] = "transformer"
    save_file(load_file(str(path)), str(tmp_path / "u.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match="unknown network 'transformer'"):
        load_weights(tmp_path / "u.safetensors")
