import torch

from sdap_cli.method.dbsnl import DBSNl, receptive_radius
from sdap_cli.method.pd import pd_down, pd_up


# The official SDAP / AP-BSN DBSNl state_dict layout (sdap-method.md section 1), built by hand here
# rather than from our module, so that renaming a submodule is caught.
def official_keys(num_module: int = 9) -> list[str]:
    keys = ["head.0.weight", "head.0.bias"]
    for b in (1, 2):
        keys += [f"branch{b}.body.0.weight", f"branch{b}.body.0.bias", f"branch{b}.body.0.mask"]
        keys += [f"branch{b}.body.{i}.{w}" for i in (2, 4) for w in ("weight", "bias")]
        for i in range(6, 6 + num_module):
            keys += [f"branch{b}.body.{i}.body.{j}.{w}" for j in (0, 2) for w in ("weight", "bias")]
        keys += [f"branch{b}.body.{6 + num_module}.weight", f"branch{b}.body.{6 + num_module}.bias"]
    keys += [f"tail.{i}.{w}" for i in (0, 2, 4, 6) for w in ("weight", "bias")]
    return keys


def test_default_network_matches_official_layout():
    net = DBSNl()
    sd = net.state_dict()
    assert sorted(sd) == sorted(official_keys())
    assert len(sd) == 100
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == 3_656_131
    assert tuple(sd["branch1.body.0.mask"].shape) == (128, 128, 3, 3)
    assert tuple(sd["branch2.body.0.mask"].shape) == (128, 128, 5, 5)
    assert tuple(sd["tail.0.weight"].shape) == (128, 256, 1, 1)
    assert tuple(sd["tail.6.weight"].shape) == (3, 64, 1, 1)


def test_forward_does_not_mutate_weights(tiny_model):
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    with torch.inference_mode():
        tiny_model(torch.rand(1, 3, 16, 16))
    for k, v in tiny_model.state_dict().items():
        assert torch.equal(v, before[k]), k
    # the raw centre tap keeps its (non-zero) value; only the functional weight is masked
    assert tiny_model.branch1.body[0].weight[:, :, 1, 1].abs().sum() > 0


def _grad_wrt_input(net, x, i, j):
    x = x.clone().requires_grad_(True)
    net(x)[0, :, i, j].sum().backward()
    return x.grad[0]


def test_blind_spot_is_blind(tiny_model):
    torch.manual_seed(1)
    x = torch.rand(1, 3, 31, 29)
    for i, j in [(15, 14), (0, 0), (30, 28), (7, 20)]:
        g = _grad_wrt_input(tiny_model, x, i, j)
        assert torch.all(g[:, i, j] == 0), (i, j)
        assert g.abs().sum() > 0          # the output does depend on the neighbours


def test_blind_spot_survives_pd2(tiny_model):
    torch.manual_seed(2)
    x = torch.rand(1, 3, 24, 24, requires_grad=True)
    out = pd_up(tiny_model(pd_down(x, 2)), 2)
    out[0, :, 11, 12].sum().backward()
    assert torch.all(x.grad[0, :, 11, 12] == 0)
    assert x.grad.abs().sum() > 0


def test_receptive_radius_bounds_the_dependence():
    torch.manual_seed(3)
    net = DBSNl(base_ch=8, num_module=2)
    r = receptive_radius(2)
    assert r == 8
    x = torch.rand(1, 3, 41, 41)
    g = _grad_wrt_input(net, x, 20, 20)
    nz = torch.nonzero(g.abs().sum(0))
    assert (nz - 20).abs().max() == r


def test_width_and_depth_are_configurable():
    net = DBSNl(base_ch=16, num_module=3)
    assert net.arch == {"in_ch": 3, "out_ch": 3, "base_ch": 16, "num_module": 3}
    assert sorted(net.state_dict()) == sorted(official_keys(3))


def test_golden_output_of_the_official_dbsnl():
    """Expected values produced once (2026-11-24) by the official p1y2z3/SDAP model/DBSNl.py at commit
    1f415a0: torch.manual_seed(0); DBSNl(3, 3, base_ch=16, num_module=2); input
    torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)); torch 2.13 CPU. With the same
    seed our network draws identical weights (same module order), and its output matched exactly."""
    torch.manual_seed(0)
    net = DBSNl(base_ch=16, num_module=2).eval()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = net(x)
    assert torch.allclose(out[0, :, 16, 16], torch.tensor([-0.15532, 0.094181, -0.353327]), atol=2e-6)
    assert torch.allclose(out[0, :, 0, 31], torch.tensor([-0.15376, 0.095088, -0.352148]), atol=2e-6)
    assert abs(out.mean().item() - -0.1379278) < 1e-6 and abs(out.std().item() - 0.1830818) < 1e-6
