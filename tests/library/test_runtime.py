"""The CPU default on ONNX Runtime (inference/runtime.py): equal to torch, tiled == whole, no torch import
once cached, the cache rebuilt when damaged or stale, and torch when the runtime is missing or wrong."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

import sdap_cli.inference.runtime as rt
from sdap_cli.api import Denoiser, denoise
from sdap_cli.config import InferenceConfig
from sdap_cli.errors import ConfigError
from sdap_cli.inference.checkpoints import shipped_student_path
from sdap_cli.inference.noise import measure_noise

pytestmark = pytest.mark.skipif(shipped_student_path() is None, reason="no shipped student")


def noisy(h: int = 67, w: int = 93, sigma: float = 12.0, seed: int = 0) -> np.ndarray:
    """A smooth gradient with white noise of std ``sigma`` (8-bit units): float32 in [0, 1], odd sides."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    clean = np.stack([0.3 + 0.4 * xx, 0.5 + 0.2 * np.sin(6 * yy), 0.6 - 0.3 * yy * xx], -1)
    return np.clip(clean + rng.normal(0, sigma / 255, clean.shape), 0, 1).astype(np.float32)


HAS_OPENVINO = importlib.util.find_spec("openvino") is not None
needs_openvino = pytest.mark.skipif(not HAS_OPENVINO, reason="openvino is not installed (the [openvino] extra)")


@pytest.fixture(scope="module")
def graph():
    """An ONNX Runtime session of the shipped student's graph and its tiling facts (the process's cache)."""
    return rt.open_graph(shipped_student_path())


def as_type(x: np.ndarray, dtype) -> np.ndarray:
    return x if dtype == np.float32 else np.round(x * np.iinfo(dtype).max).astype(dtype)


FP32 = {np.uint8: 1, np.uint16: 2, np.float32: 2e-5}
"""How far an fp32 runtime may be from torch fp32: float rounding (1 level at 8 bits, 2 at 16, 2e-5)."""
BF16 = {np.uint8: 4, np.uint16: 800, np.float32: 0.012}
"""How far OpenVINO's bf16 may be from torch's bf16 (today's CPU default): each is about as far from torch fp32
as bf16 rounding of the correction puts it (torch bf16: 2 levels at 8 bits, 390 at 16 bits, 0.0057 on this AMD
EPYC), so the two may differ by twice that (measured here: 1, 176, 0.0029); other CPUs (AMX) round in other
places. A wrong graph or runtime is off by tens of levels."""


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("runtime, precision", [("onnxruntime", "auto"), pytest.param("openvino", "fp32",
                         marks=needs_openvino), pytest.param("openvino", "auto", marks=needs_openvino)])
def test_runtime_equals_torch(runtime, precision, dtype):
    """The default on a runtime gives torch's output at the same precision within that precision's rounding,
    in the input's sample type; 16-bit outputs keep 16-bit precision (the correction is added in float32)."""
    img = as_type(noisy(), dtype)
    fast = Denoiser(runtime=runtime, precision=precision)
    assert fast.runtime == runtime
    out = fast(img)
    assert fast.last.noise["path"] == "one-pass" and out.dtype == img.dtype
    bf16 = fast.precision == "bf16"
    ref = denoise(img, runtime="torch", precision="bf16" if bf16 else "fp32")
    assert np.abs(out.astype(np.float64) - ref).max() <= (BF16 if bf16 else FP32)[dtype]
    if dtype == np.uint8 and not bf16:          # and today's default (torch bf16) within its own rounding
        assert np.abs(out.astype(int) - denoise(img, runtime="torch")).max() <= BF16[dtype]
    if dtype == np.uint16:
        assert len(np.unique(out % 256)) > 200          # not 8-bit samples scaled up


def test_auto_picks_the_installed_runtime():
    """``--runtime auto``: OpenVINO when installed, else ONNX Runtime; never torch for the CPU default."""
    assert Denoiser().runtime == ("openvino" if HAS_OPENVINO else "onnxruntime")


def test_graph_equals_torch_module(graph):
    """The runtime's graph is the torch module: one tile through ONNX Runtime == ``Denoiser.denoise_hwc`` fp32."""
    import torch

    from sdap_cli.inference.checkpoints import load_weights
    from sdap_cli.inference.denoiser import make_denoiser

    y = noisy(48, 64, seed=3)
    est = measure_noise(y)
    torch_den = make_denoiser(load_weights(shipped_student_path()).model, precision="fp32")
    with torch.inference_mode():
        ref = torch_den.denoise_hwc(torch.from_numpy(y), noise=est).clamp(0, 1).numpy()
    got = rt.RuntimeDenoiser(*graph).forward(y, est)
    assert np.abs(got - ref).max() < 1e-5
    facts = json.loads(rt.cache_path(shipped_student_path(), rt.graph_key(shipped_student_path()))
                       .with_suffix(".json").read_text())
    assert facts["info"]["radius"] == torch_den.model.receptive_radius


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("runtime", ["onnxruntime", pytest.param("openvino", marks=needs_openvino)])
def test_tiled_equals_whole_on_runtime(runtime, dtype):
    """Tiles with the receptive-radius overlap give the whole image's result exactly (the blend too)."""
    from sdap_cli.inference.adaptive import AdaptiveDenoiser

    img = as_type(noisy(203, 301, seed=1), dtype)
    den = rt.RuntimeDenoiser(*rt.open_graph(shipped_student_path(), runtime=runtime), runtime=runtime)
    ad = AdaptiveDenoiser(den, den)
    whole, _ = ad.denoise(img, tile=4096, out=np.empty_like(img))
    tiled, _ = ad.denoise(img, tile=180, out=np.empty_like(img))
    assert np.array_equal(whole, tiled)


def test_no_torch_imported_on_fast_path(tmp_path, graph):
    """A photo through a pipe, as a whole process: torch is never imported once the graph is cached."""
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), np.round(noisy() * 255).astype(np.uint8))
    Denoiser()                                                  # the graph cached (and OpenVINO probed)
    code = ("import sys\nfrom sdap_cli.entry import main\nsys.argv = ['sdap', 'denoise', '-', '-o', '-', '-q']\n"
            "try:\n    main()\nfinally:\n    sys.stderr.write('TORCH=%s RUNTIME=%s' % ('torch' in sys.modules, "
            "'openvino' in sys.modules or 'onnxruntime' in sys.modules))\n")
    r = subprocess.run([sys.executable, "-c", code], input=src.read_bytes(), capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert "TORCH=False RUNTIME=True" in r.stderr.decode()
    out = cv2.imdecode(np.frombuffer(r.stdout, np.uint8), cv2.IMREAD_COLOR)
    assert out.shape == (67, 93, 3)


def test_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    """A cached graph that was cut short, or whose check output was altered, is rebuilt, not used."""
    monkeypatch.setenv("SDAP_CACHE_DIR", str(tmp_path))
    weights = shipped_student_path()
    rt.open_graph(weights)
    path = rt.cache_path(weights, rt.graph_key(weights))
    side = path.with_suffix(".json")
    good, facts = path.read_bytes(), side.read_text()
    path.write_bytes(good[: len(good) // 2])                    # truncated
    rt.open_graph(weights)
    assert path.read_bytes() == good
    c = json.loads(facts)                                       # the graph computes something else now
    c["check"]["expected"] = rt._b64(rt._unb64(c["check"]["expected"], (*rt.CHECK_SHAPE, 3)) + 0.01)
    side.write_text(json.dumps(c))
    rt.open_graph(weights)
    assert json.loads(side.read_text()) == json.loads(facts)


def test_stale_cache_is_not_trusted(tmp_path, monkeypatch):
    """A graph made for another key (other weights or versions) found under this key's name is rebuilt."""
    monkeypatch.setenv("SDAP_CACHE_DIR", str(tmp_path))
    weights = shipped_student_path()
    rt.open_graph(weights)
    key = rt.graph_key(weights)
    old = rt.cache_path(weights, key)
    newer = {**key, "sdap": key["sdap"] + ".post1"}
    monkeypatch.setattr(rt, "graph_key", lambda w: newer)
    stale = rt.cache_path(weights, newer)
    stale.write_bytes(old.read_bytes())
    stale.with_suffix(".json").write_text(old.with_suffix(".json").read_text())
    builds = []
    real = rt.build_graph
    monkeypatch.setattr(rt, "build_graph", lambda w, k: builds.append(k) or real(w, k))
    rt.open_graph(weights)
    assert builds == [newer] and json.loads(stale.with_suffix(".json").read_text())["key"] == newer
    rt.open_graph(weights)                                      # now cached: not built again
    assert builds == [newer]


@needs_openvino
def test_openvino_that_fails_its_probe_is_not_used(tmp_path, monkeypatch):
    """OpenVINO is tried once per machine in a child process (a crash there must not take sdap down); a failed
    probe is remembered and the default runs on ONNX Runtime."""
    monkeypatch.setenv("SDAP_CACHE_DIR", str(tmp_path))
    calls = []

    def crash(*args, **kw):
        calls.append(args)
        return subprocess.CompletedProcess(args, -8)            # SIGFPE
    monkeypatch.setattr(rt.subprocess, "run", crash)
    rt.open_graph(shipped_student_path())                       # the graph cached (ONNX Runtime)
    builds = []
    monkeypatch.setattr(rt, "build_graph", lambda *a: builds.append(a))
    assert Denoiser().runtime == "onnxruntime" and Denoiser().runtime == "onnxruntime"
    assert len(calls) == 1 and list(tmp_path.glob("*.failed")) and not builds     # no rebuild for a failed probe


def test_falls_back_to_torch_without_onnxruntime(monkeypatch):
    """No onnxruntime: the default runs on torch (same outputs as --runtime torch); --runtime onnxruntime
    says why it cannot."""
    monkeypatch.setitem(sys.modules, "onnxruntime", None)      # import onnxruntime raises ImportError
    monkeypatch.setitem(sys.modules, "openvino", None)
    den = Denoiser()
    assert den.runtime == "torch" and "onnxruntime" in den.runtime_note
    img = np.round(noisy() * 255).astype(np.uint8)
    assert np.array_equal(den(img), denoise(img, runtime="torch"))
    with pytest.raises(ConfigError, match="--runtime onnxruntime: onnxruntime is not installed"):
        Denoiser(runtime="onnxruntime")


def test_falls_back_when_the_check_fails(tmp_path, monkeypatch):
    """A runtime whose output differs from torch's on this machine (the check fails right after the build)
    is not used: torch runs."""
    monkeypatch.setenv("SDAP_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(rt, "CHECK_TOLERANCE", {"fp32": -1.0, "bf16": -1.0})
    den = Denoiser()
    assert den.runtime == "torch" and "check tile" in den.runtime_note


@pytest.mark.parametrize("options, refusal", [
    ({}, None), ({"model": "student"}, None), ({"strength": 0.5}, None),
    ({"runtime": "torch"}, "--runtime torch"), ({"model": "teacher"}, "teacher"), ({"refine": "none"}, "teacher"),
    ({"precision": "bf16"}, "--precision bf16"), ({"precision": "fp32"}, "--precision fp32"),
    ({"precision": "fp32", "runtime": "onnxruntime"}, None), ({"precision": "bf16", "runtime": "openvino"}, None),
    ({"precision": "bf16", "runtime": "onnxruntime"}, "--precision bf16"), ({"compile": True}, "--compile"),
    ({"device": "cuda"}, "GPU"),
])
def test_what_runs_on_the_runtime(options, refusal):
    """The shipped student at the default precision on the CPU runs on the runtime; the teacher, bf16, an
    explicit fp32 (today's torch fp32), --compile and CUDA stay on torch."""
    why = rt.runtime_refusal(InferenceConfig(**options), None)
    assert (why is None) if refusal is None else (refusal in why)


def test_falls_back_when_the_graph_cannot_be_made(tmp_path, monkeypatch):
    """An exporter that fails (another torch) leaves the default on torch, with the reason kept."""
    monkeypatch.setenv("SDAP_CACHE_DIR", str(tmp_path))

    def broken(weights, key):
        raise RuntimeError("exporter: unsupported operator")
    monkeypatch.setattr(rt, "build_graph", broken)
    den = Denoiser()
    assert den.runtime == "torch" and "unsupported operator" in den.runtime_note
