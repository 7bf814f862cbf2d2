"""`sdap export`: the pipeline equals the Denoiser, the ONNX file (onnxruntime) and the TorchScript file take
any size and match torch, and the CLI writes, refuses and fails on one line."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from sdap_cli.cli import app
from sdap_cli.inference.checkpoints import load_weights, shipped_student_path
from sdap_cli.inference.denoiser import make_denoiser
from sdap_cli.inference.export import ExportPipeline, export_onnx, export_torchscript, pipeline
from sdap_cli.method.dbsnl import DBSNl
from sdap_cli.method.student import StudentUNet
from tests.helpers import tiny_student, tiny_weights

SIZES = [(37, 53), (64, 45)]
runner = CliRunner()


def tiny(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "teacher":
        return DBSNl(base_ch=8, num_module=1).eval()
    net = StudentUNet(ch=(8, 8, 8), blocks=(1, 1, 1))
    with torch.no_grad():
        net.tail.weight.normal_(0, 0.05)
    return net.eval()


def image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kind", ["teacher", "student"])
@pytest.mark.parametrize("hw", SIZES)
def test_pipeline_equals_the_denoiser_on_the_whole_image(kind, hw):
    net = tiny(kind)
    den = make_denoiser(net, refine="e", pd=2, channels_last=False)
    y = image(*hw)
    ref = den.denoise(y[0].permute(1, 2, 0).numpy(), tile=4096)
    with torch.no_grad():
        out = ExportPipeline(net)(y)[0].permute(1, 2, 0).numpy()
    assert out.shape == ref.shape
    assert np.abs(out - ref).max() < 1e-4


def run_onnx(path, x: torch.Tensor, noise: torch.Tensor | None = None) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = ["noisy"] + (["noise"] if noise is not None else [])
    assert [i.name for i in sess.get_inputs()] == names
    assert [o.name for o in sess.get_outputs()] == ["denoised"]
    feed = {"noisy": x.numpy(), **({"noise": noise.numpy()} if noise is not None else {})}
    return sess.run(["denoised"], feed)[0]


def noise_maps(net, x: torch.Tensor) -> torch.Tensor | None:
    """The maps `sdap denoise` tells a noise-conditional network (None for the others)."""
    if not getattr(net, "cond_ch", 0):
        return None
    from sdap_cli.inference.noise import measure_noise

    y = x[0].permute(1, 2, 0).numpy()
    return torch.from_numpy(measure_noise(y).condition(y)).permute(2, 0, 1)[None]


@pytest.mark.parametrize("kind", ["teacher", "student", "shipped-student"])
def test_onnx_takes_odd_sizes_and_matches_torch(tmp_path, kind):
    pytest.importorskip("onnx")
    if kind == "shipped-student":
        if shipped_student_path() is None:
            pytest.skip("no shipped student")
        net = load_weights(shipped_student_path()).model
    else:
        net = tiny(kind)
    path = export_onnx(tmp_path / "m.onnx", net)
    pipe = pipeline(net)
    for i, hw in enumerate(SIZES):
        x = image(*hw, seed=i)
        args = (x,) if noise_maps(net, x) is None else (x, noise_maps(net, x))
        out = run_onnx(path, *args)
        with torch.no_grad():
            ref = pipe(*args).numpy()
        assert out.shape == (1, 3) + hw
        assert np.abs(out - ref).max() < 1e-3


@pytest.mark.parametrize("kind", ["teacher", "student"])
def test_torchscript_takes_odd_sizes_and_matches_torch(tmp_path, kind):
    net = tiny(kind)
    path = export_torchscript(tmp_path / "m.pt", net)
    loaded = torch.jit.load(str(path))
    pipe = ExportPipeline(net)
    for i, hw in enumerate(SIZES):
        x = image(*hw, seed=i)
        with torch.no_grad():
            assert (loaded(x) - pipe(x)).abs().max() < 1e-4


def invoke(*args):
    return runner.invoke(app, ["export", *[str(a) for a in args]])


def test_cli_writes_onnx_and_pt(tmp_path):
    pytest.importorskip("onnx")
    w = tiny_weights(tmp_path / "t.safetensors")
    r = invoke(tmp_path / "t.onnx", "-w", w, "--model", "teacher")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "t.onnx").is_file() and "self-check" in r.output
    s = tiny_student(tmp_path / "s.safetensors")
    r = invoke(tmp_path / "out" / "s.pt", "-w", s, "--json")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "s.pt").is_file() and '"format": "torchscript"' in r.output


def test_cli_refuses_existing_file_wrong_suffix_and_wrong_kind(tmp_path):
    s = tiny_student(tmp_path / "s.safetensors")
    (tmp_path / "x.pt").write_text("keep")
    r = invoke(tmp_path / "x.pt", "-w", s)
    assert r.exit_code == 1 and "--overwrite" in r.output and len(r.output.strip().splitlines()) == 1
    assert (tmp_path / "x.pt").read_text() == "keep"
    r = invoke(tmp_path / "x.png", "-w", s)
    assert r.exit_code == 2 and ".onnx" in r.output and len(r.output.strip().splitlines()) == 1
    r = invoke(tmp_path / "y.pt", "-w", s, "--model", "teacher")
    assert r.exit_code == 2 and "student" in r.output and len(r.output.strip().splitlines()) == 1
    r = invoke(tmp_path / "x.pt", "-w", s, "--overwrite", "--no-check")
    assert r.exit_code == 0, r.output


def test_cli_without_onnx_names_the_extra(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "onnx" else real(n, *a))
    r = invoke(tmp_path / "m.onnx", "-w", tiny_student(tmp_path / "s.safetensors"))
    assert r.exit_code == 1 and "pip install onnx onnxruntime" in r.output
    assert str(tmp_path / "m.onnx") in " ".join(r.output.split())       # the whole path, not its name


def test_torchscript_output_needs_no_grad(tmp_path):
    import torch

    s = tiny_student(tmp_path / "s.safetensors")
    assert invoke(tmp_path / "s.pt", "-w", s, "--no-check").exit_code == 0
    out = torch.jit.load(str(tmp_path / "s.pt"))(torch.rand(1, 3, 16, 16))
    assert not out.requires_grad
