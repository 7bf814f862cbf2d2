"""`sdap export`: the pipeline equals the Denoiser; the exported default (one input, the noise measured inside the
graph) equals `sdap denoise --precision fp32` on real photos at any size; the graph's noise measurement equals
``measure_noise``; the ONNX file (onnxruntime) and the TorchScript file take any size and match torch; the CLI
writes, refuses and fails on one line; the README's export example runs."""

import re
import shlex

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from sdap_cli.cli import app
from sdap_cli.config import InferenceConfig
from sdap_cli.inference.checkpoints import load_weights, save_weights, shipped_student_path
from sdap_cli.inference.denoiser import make_denoiser
from sdap_cli.inference.denoisers import build_denoiser, choose_weights
from sdap_cli.inference.export import (ExportPipeline, OnePassPipeline, export_onnx, export_torchscript, onnx_bytes,
                                       pipeline, standalone_pipeline)
from sdap_cli.inference.graph_noise import NoiseMeter, blend_amount
from sdap_cli.inference.noise import BINS, COND_CH, NoiseEstimate, measure_noise
from sdap_cli.method.dbsnl import DBSNl
from sdap_cli.method.student import StudentUNet
from tests.conftest import REPO, shared_data
from tests.helpers import noisy_rgb, tiny_student, tiny_weights, write_png

SIZES = [(37, 53), (64, 45)]
runner = CliRunner()
REAL_SETS = {"SIDD blocks": ("sidd_val_blocks", "p1y2z3_SDAP", "SIDD_noisy", "*.png"),
             "CC15": ("nam_cc15_mcwnnm", "Real_ccnoise_denoised_part", "*_real.png"),
             "DND crops": ("dnd_patches_cbdnet", "*.png")}


def tiny(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "teacher":
        return DBSNl(base_ch=8, num_module=1).eval()
    net = StudentUNet(ch=(8, 8, 8), blocks=(1, 1, 1), cond_ch=COND_CH if kind == "conditional" else 0)
    with torch.no_grad():
        net.tail.weight.normal_(0, 0.05)
    return net.eval()


def image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


def chw(rgb: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float32 (1, 3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb).astype(np.float32) / 255).permute(2, 0, 1)[None].contiguous()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


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


def run_onnx(path_or_bytes, x: torch.Tensor, noise: torch.Tensor | None = None) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    src = path_or_bytes if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    names = ["noisy"] + (["noise"] if noise is not None else [])
    assert [i.name for i in sess.get_inputs()] == names
    assert [o.name for o in sess.get_outputs()] == ["denoised"]
    feed = {"noisy": x.numpy(), **({"noise": noise.numpy()} if noise is not None else {})}
    return sess.run(["denoised"], feed)[0]


@pytest.mark.parametrize("kind", ["teacher", "student", "conditional"])
def test_onnx_takes_odd_sizes_and_matches_torch(tmp_path, kind):
    pytest.importorskip("onnx")
    pipe = standalone_pipeline(tiny(kind))
    path = export_onnx(tmp_path / "m.onnx", pipe)
    for i, hw in enumerate(SIZES):
        x = image(*hw, seed=i)
        out = run_onnx(path, x)
        with torch.no_grad():
            ref = pipe(x).numpy()
        assert out.shape == (1, 3) + hw
        assert np.abs(out - ref).max() < 1e-4


def test_the_maps_input_graph_stays_available(tmp_path):
    pytest.importorskip("onnx")
    net = tiny("conditional")
    x = image(*SIZES[0])
    y = x[0].permute(1, 2, 0).numpy()
    maps = torch.from_numpy(measure_noise(y).condition(y)).permute(2, 0, 1)[None]
    out = run_onnx(export_onnx(tmp_path / "m.onnx", pipeline(net)), x, maps)
    with torch.no_grad():
        assert np.abs(out - pipeline(net)(x, maps).numpy()).max() < 1e-4


@pytest.mark.parametrize("kind", ["teacher", "student", "conditional"])
def test_torchscript_takes_odd_sizes_and_matches_torch(tmp_path, kind):
    pipe = standalone_pipeline(tiny(kind))
    loaded = torch.jit.load(str(export_torchscript(tmp_path / "m.pt", pipe)))
    for i, hw in enumerate(SIZES):
        x = image(*hw, seed=i)
        with torch.no_grad():
            assert (loaded(x) - pipe(x)).abs().max() < 1e-5
        assert not loaded(x).requires_grad


@pytest.mark.slow
def test_one_graph_takes_every_size_regime_and_batches(tmp_path):
    """Traced once on a 33 x 35 image, the graph still takes what its measurement treats apart: too small to
    measure (< 32), the whole image, the grid of windows (> 1 MP), and a batch of images measured one by one."""
    pytest.importorskip("onnx")
    pipe = standalone_pipeline(tiny("conditional"))
    data = onnx_bytes(pipe)
    ts = torch.jit.load(str(export_torchscript(tmp_path / "m.pt", pipe)))
    pair = torch.cat([chw(noisy_rgb(64, 40, seed=1)), chw(noisy_rgb(64, 40, seed=2) // 2)])
    for x in (chw(noisy_rgb(8, 8)), chw(noisy_rgb(9, 20)), chw(noisy_rgb(100, 77)), chw(noisy_rgb(1030, 1100)), pair):
        with torch.no_grad():
            ref = pipe(x)
            assert (ts(x) - ref).abs().max() < 1e-5
        assert np.abs(run_onnx(data, x) - ref.numpy()).max() < 1e-4
    with torch.no_grad():
        assert (pipe(pair)[1:] - pipe(pair[1:])).abs().max() < 1e-5
    holes = pair[:1].clone()
    holes[0, 1, 5, 7] = float("nan")                                   # read as 0, as samples.to_unit reads it
    zero = holes.nan_to_num(0.0)
    assert np.array_equal(run_onnx(data, holes), run_onnx(data, zero))


def noisy_photos(per_set: int = 2) -> list[tuple[str, np.ndarray]]:
    import cv2

    out = []
    for name, parts in REAL_SETS.items():
        files = sorted(shared_data(*parts[:-1]).glob(parts[-1]))[:per_set]
        out += [(f"{name} {f.name}", cv2.imread(str(f))[..., ::-1].copy()) for f in files]
    return out


@pytest.mark.slow
def test_the_graphs_blend_amount_is_the_one_pass_paths_on_either_kind_of_noise():
    from sdap_cli.inference.adaptive import onepass_blend_weight
    cases = [(s, r1, r2) for s in (0.5, 2.0, 4.0, 5.0, 6.5, 8.0, 9.0, 10.5, 12.0, 30.0)
             for r1, r2 in ((0.0, 0.0), (0.1, -0.3), (0.4, 0.05), (0.45, 0.2), (0.7, 0.4))]
    want = [onepass_blend_weight(NoiseEstimate(s, [s] * 3, np.full((3, BINS), s), r1, r2, 1000)) for s, r1, r2 in cases]
    t = lambda i: torch.tensor([c[i] for c in cases], dtype=torch.float32)  # noqa: E731
    got = blend_amount(t(0), torch.ones(len(cases), dtype=torch.bool), t(1), t(2))
    assert np.allclose(got.numpy(), want, atol=1e-6) and len(set(np.round(want, 3))) > 5
    assert float(blend_amount(t(0), torch.zeros(len(cases), dtype=torch.bool), t(1), t(2)).abs().max()) == 0.0
    from sdap_cli.inference.adaptive import onepass_blend_beta
    from sdap_cli.inference.graph_noise import blend_beta
    betas = [onepass_blend_beta(NoiseEstimate(s, [s] * 3, np.full((3, BINS), s), r1, r2, 1000)) for s, r1, r2 in cases]
    assert np.allclose(blend_beta(t(1), t(2)).numpy(), betas, atol=1e-6) and len(set(betas)) == 2   # and its beta


def test_noise_meter_equals_measure_noise_on_real_photos():
    meter = NoiseMeter()
    for name, rgb in noisy_photos(3):
        for crop in (rgb, rgb[3:, :-5], rgb[:37, :45], rgb[:31, :60]):
            est = measure_noise(crop)
            with torch.no_grad():
                nlf, rho1, rho2, sigma, measured = meter(chw(crop))
            assert bool(measured[0]) == (est.pixels > 0), name
            assert abs(float(sigma[0]) - est.sigma) < 1e-3 and np.abs(nlf[0].numpy() - est.nlf).max() < 1e-3, name
            assert abs(float(rho1[0]) - est.rho1) < 1e-4 and abs(float(rho2[0]) - est.rho2) < 1e-4, name


def test_noise_meter_samples_large_images_as_measure_noise_does():
    rgb = noisy_rgb(1100, 1030, seed=3)
    est = measure_noise(rgb)
    with torch.no_grad():
        nlf, rho1, rho2, sigma, _ = NoiseMeter()(chw(rgb))
    assert est.pixels < rgb.shape[0] * rgb.shape[1]                 # the grid of windows, not the whole image
    assert abs(float(sigma[0]) - est.sigma) < 1e-3 and abs(float(rho1[0]) - est.rho1) < 1e-4


@pytest.fixture(scope="module")
def shipped():
    """The shipped student as `sdap denoise --precision fp32` runs it on the CPU, and its one-input graph."""
    if shipped_student_path() is None:
        pytest.skip("no shipped student")
    inf = InferenceConfig(precision="fp32")
    den = build_denoiser(choose_weights(None, inf, torch.device("cpu")), inf, torch.device("cpu"))
    return den, standalone_pipeline(load_weights(shipped_student_path()).model.float().eval())


@pytest.mark.slow
def test_exported_default_equals_sdap_denoise_on_real_photos(shipped, tmp_path):
    """>= 45 dB from `sdap denoise --precision fp32` (ONNX and TorchScript), whole and at odd sizes, down to
    the smallest side the graph takes (8)."""
    pytest.importorskip("onnx")
    den, pipe = shipped
    data = onnx_bytes(pipe)
    ts = torch.jit.load(str(export_torchscript(tmp_path / "s.pt", pipe)))
    for name, rgb in noisy_photos():
        for crop in (rgb, rgb[1:-2, 3:], rgb[:37, :45], rgb[:8, :9]):
            ref = den.denoise(crop)[0]
            x = chw(crop)
            with torch.no_grad():
                t = ts(x)
            assert not t.requires_grad
            for fmt, out in (("onnx", run_onnx(data, x)), ("torchscript", t.numpy())):
                assert psnr(out[0].transpose(1, 2, 0), ref) >= 45, (name, crop.shape, fmt)


def test_clean_images_come_back_untouched(shipped):
    den, pipe = shipped
    clean = (np.linspace(0, 255, 64 * 48 * 3).reshape(64, 48, 3)).astype(np.uint8)
    ref, decision = den.denoise(clean)
    assert decision.path == "clean"
    with torch.no_grad():
        assert torch.equal(pipe(chw(clean)), chw(clean))


def test_a_pinned_graph_is_told_the_same_noise_on_every_crop(shipped):
    """Pinned, a crop's result equals the whole image's inside it, farther than the receptive field from the
    crop's cut edges: what keeps a tiled host's tiles seamless."""
    _, pipe = shipped
    rgb = noisy_rgb(160, 192, seed=4)
    pinned = OnePassPipeline(pipe.net, noise=measure_noise(rgb))
    r = pipe.net.receptive_radius + 8
    with torch.no_grad():
        whole, crop = pinned(chw(rgb)), pinned(chw(rgb[:96, :112]))
        assert (crop[..., :96 - r, :112 - r] - whole[..., :96 - r, :112 - r]).abs().max() < 1e-5


def invoke(*args):
    return runner.invoke(app, ["export", *[str(a) for a in args]])


def cond_student(path):
    return save_weights(path, tiny("conditional"), training={"note": "test fixture"})


@pytest.mark.slow
def test_cli_writes_onnx_pt_and_reports_the_noise(tmp_path):
    pytest.importorskip("onnx")
    w = tiny_weights(tmp_path / "t.safetensors")
    r = invoke(tmp_path / "t.onnx", "-w", w, "--model", "teacher")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "t.onnx").is_file() and "self-check" in r.output
    s = tiny_student(tmp_path / "s.safetensors")
    r = invoke(tmp_path / "out" / "s.pt", "-w", s, "--json")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "s.pt").is_file() and '"format": "torchscript"' in r.output
    c = cond_student(tmp_path / "c.safetensors")
    r = invoke(tmp_path / "c.onnx", "-w", c, "--json")
    assert r.exit_code == 0, r.output
    assert '"noise": "measured"' in r.output and '"noise_name": null' in r.output
    photo = write_png(tmp_path / "photo.png", noisy_rgb(64, 80))
    r = invoke(tmp_path / "p.pt", "-w", c, "--noise-from", photo, "--json")
    assert r.exit_code == 0, r.output
    assert '"noise": "pinned"' in r.output and '"sigma_channels"' in r.output
    r = invoke(tmp_path / "m.onnx", "-w", c, "--maps-input", "--json")
    assert r.exit_code == 0, r.output
    assert '"noise_name": "noise"' in r.output


def test_cli_refuses_existing_file_wrong_suffix_and_wrong_kind(tmp_path):
    s = tiny_student(tmp_path / "s.safetensors")
    (tmp_path / "x.pt").write_text("keep")
    r = invoke(tmp_path / "x.pt", "-w", s)
    assert r.exit_code == 1 and "--overwrite" in r.output and len(r.output.strip().splitlines()) == 1
    assert (tmp_path / "x.pt").read_text() == "keep"
    r = invoke(tmp_path / "x.png", "-w", s)
    assert r.exit_code == 2 and ".dtmodel" in r.output and len(r.output.strip().splitlines()) == 1
    r = invoke(tmp_path / "y.pt", "-w", s, "--model", "teacher")
    assert r.exit_code == 2 and "student" in r.output and len(r.output.strip().splitlines()) == 1
    r = invoke(tmp_path / "x.pt", "-w", s, "--overwrite", "--no-check")
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("args, words", [
    (["--model", "teacher", "--noise-from", "p.png"], "noise-conditional student"),
    (["--noise-from", "p.png", "--maps-input"], "give one of them"),
    (["--maps-input", "-o", "x.dtmodel"], "one input"),
    (["--opset", "21", "-o", "x.dtmodel"], "up to 20"),
    (["-o", "my model.dtmodel"], "id in darktable"),
    (["--maps-input", "-w", "plain"], "not a noise-conditional student"),
])
def test_cli_refuses_options_that_do_not_fit(tmp_path, args, words):
    if "-o" in args:
        i = args.index("-o")
        out, args = tmp_path / args[i + 1], args[:i] + args[i + 2:]
    else:
        out = tmp_path / "x.onnx"
    args = [str(tiny_student(tmp_path / "s.safetensors")) if a == "plain" else a for a in args]
    r = invoke(out, *args)
    assert r.exit_code == 2, r.output
    assert words in " ".join(r.output.split()) and len(r.output.strip().splitlines()) <= 2


def test_cli_without_onnx_names_the_extra(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "onnx" else real(n, *a))
    for out in ("m.onnx", "m.dtmodel"):
        r = invoke(tmp_path / out, "-w", tiny_student(tmp_path / "s.safetensors"))
        assert r.exit_code == 1 and "pip install onnx onnxruntime" in r.output
        assert str(tmp_path / out) in " ".join(r.output.split())       # the whole path, not its name


def test_torchscript_output_needs_no_grad(tmp_path):
    for w in (tiny_student(tmp_path / "s.safetensors"), cond_student(tmp_path / "c.safetensors")):
        assert invoke(tmp_path / "s.pt", "-w", w, "--no-check", "--overwrite").exit_code == 0
        out = torch.jit.load(str(tmp_path / "s.pt"))(torch.rand(1, 3, 40, 48))
        assert not out.requires_grad


def readme_export_example() -> tuple[list[list[str]], str]:
    """The README's export example: the `sdap export` command lines and the Python block after them."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    part = text[text.index("**Export**"):text.index("## Python API")]
    bash, python = re.findall(r"```bash\n(.*?)```", part, re.S)[0], re.findall(r"```python\n(.*?)```", part, re.S)[0]
    lines = [shlex.split(line.split("#")[0])[1:] for line in bash.splitlines() if line.startswith("sdap export")]
    return lines, python


@pytest.mark.slow
def test_readme_export_example_runs(shipped, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    commands, python = readme_export_example()
    assert commands and any(c[1].endswith(".dtmodel") for c in commands)
    monkeypatch.chdir(tmp_path)
    rgb = noisy_rgb(75, 93, seed=5)
    write_png(tmp_path / "noisy.png", rgb)
    for args in commands:
        r = runner.invoke(app, args)
        assert r.exit_code == 0, (args, r.output)
        assert (tmp_path / args[1]).is_file()
    scope: dict = {}
    exec(compile(python, "README.md", "exec"), scope)                  # noqa: S102 - the documented example
    ref = shipped[0].denoise(rgb)[0]
    assert psnr(scope["out"][0].transpose(1, 2, 0), ref) >= 45
