import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from sdap_cli.errors import CheckpointError
from sdap_cli.inference.checkpoints import default_weights_path, load_weights, save_weights
from sdap_cli.inference.denoiser import Denoiser
from sdap_cli.method.dbsnl import DBSNl


def _net(seed=0, **kw):
    torch.manual_seed(seed)
    return DBSNl(**({"base_ch": 8, "num_module": 2} | kw)).eval()


def _same_output(a: DBSNl, b: DBSNl, scale_b: float = 1.0) -> bool:
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        return torch.allclose(a(x), b(x * scale_b) / scale_b, atol=1e-6)


def test_safetensors_round_trip_with_metadata(tmp_path):
    net = _net()
    p = save_weights(tmp_path / "w.safetensors", net, training={"iterations": 7}, dtype=torch.float32)
    lw = load_weights(p)
    assert lw.source == "sdap-cli" and lw.input_scale == 1.0
    assert lw.metadata["arch"] == net.arch and lw.metadata["training"] == {"iterations": 7}
    assert _same_output(net, lw.model)
    # the constant masks are not stored but rebuilt
    assert torch.equal(lw.model.branch2.body[0].mask, net.branch2.body[0].mask)


def test_fp16_file_is_small_and_close(tmp_path):
    net = _net(base_ch=128, num_module=9)
    p = save_weights(tmp_path / "w.safetensors", net)
    assert 7.0e6 < p.stat().st_size < 7.6e6       # fp16, masks dropped
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert (net(x) - load_weights(p).model(x)).abs().max() < 1e-2


def test_official_sdap_pth(tmp_path):
    net = _net(base_ch=16, num_module=3)
    torch.save(net.state_dict(), tmp_path / "SDAP.pth")     # the official format: a plain state_dict
    lw = load_weights(tmp_path / "SDAP.pth")
    assert lw.source == "sdap" and lw.input_scale == 1.0
    assert lw.model.arch == {"in_ch": 3, "out_ch": 3, "base_ch": 16, "num_module": 3}
    assert _same_output(net, lw.model)


def test_official_apbsn_pth_is_rescaled(tmp_path):
    net = _net()
    sd = {f"bsn.{k}": v for k, v in net.state_dict().items()}
    torch.save({"epoch": 20, "model_weight": {"denoiser": sd}, "optimizer_weight": {}}, tmp_path / "APBSN.pth")
    lw = load_weights(tmp_path / "APBSN.pth")
    assert lw.source == "apbsn" and lw.input_scale == 255.0
    img = np.random.default_rng(0).random((16, 16, 3), dtype=np.float32)
    got = Denoiser(lw.model, input_scale=lw.input_scale, refine="none").denoise(img)
    x = torch.from_numpy(img).permute(2, 0, 1)[None]
    from sdap_cli.method.pd import pd_down, pd_up

    with torch.no_grad():
        ref = (pd_up(net(pd_down(x * 255, 2)), 2) / 255).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    assert np.abs(got - ref).max() < 1e-5


@pytest.mark.parametrize("maker", ["garbage", "empty", "other_pth", "wrong_shapes", "missing"])
def test_bad_weight_files_raise_checkpoint_error(tmp_path, maker):
    p = tmp_path / "w.bin"
    if maker == "garbage":
        p.write_bytes(b"\x00\x01not weights" * 50)
    elif maker == "empty":
        p.write_bytes(b"")
    elif maker == "other_pth":
        torch.save({"conv.weight": torch.zeros(3)}, p)
    elif maker == "wrong_shapes":
        sd = {k: v for k, v in _net().state_dict().items() if not k.endswith("mask")}
        sd["branch1.body.2.weight"] = torch.zeros(8, 8, 3, 3)
        save_file(sd, str(p), metadata={"format": "sdap-cli/1", "arch": json.dumps(_net().arch)})
    with pytest.raises(CheckpointError) as e:
        load_weights(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_default_weights_are_shipped_and_load():
    lw = load_weights(default_weights_path())
    assert lw.source == "sdap-cli" and lw.metadata["training"]
    out = Denoiser(lw.model, refine="none").denoise(np.full((8, 8, 3), 0.5, np.float32))
    assert out.shape == (8, 8, 3)


@pytest.mark.parametrize("pad", range(0, 300, 7))
def test_format_detection_does_not_depend_on_header_length(tmp_path, pad):
    # the first byte of a safetensors file is its header length mod 256: 0x80 once looked like a pickle
    p = save_weights(tmp_path / "w.safetensors", _net(), training={"pad": "x" * pad})
    assert load_weights(p).metadata["training"]["pad"] == "x" * pad


def test_bf16_storage_is_exact_for_bf16_inference(tmp_path):
    net = _net()
    p = save_weights(tmp_path / "w.safetensors", net, dtype=torch.bfloat16)
    lw = load_weights(p)
    for k, v in net.state_dict().items():
        if not k.endswith("mask"):
            assert torch.equal(lw.model.state_dict()[k].bfloat16(), v.bfloat16()), k
    assert p.stat().st_size < 2 * sum(v.numel() for v in net.parameters()) + 4096
