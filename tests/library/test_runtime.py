"""The CPU default on ONNX Runtime (inference/runtime.py): equal to torch, tiled == whole, no torch import
once cached, the cache rebuilt when damaged or stale, and torch when the runtime is missing or wrong."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import onnx
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


@pytest.fixture(scope="module")
def graph():
    """A session of the shipped student's graph and its tiling facts (the process's cache)."""
    return rt.open_graph(shipped_student_path())


@pytest.mark.parametrize("dtype, tol", [(np.uint8, 1), (np.uint16, 2), (np.float32, 2e-5)])
def test_runtime_equals_torch_fp32(dtype, tol):
    """The default on ONNX Runtime gives torch fp32's output within float rounding: 1 level of 8-bit, 2 of
    16-bit (the 16-bit precision is kept: no bf16 step), 2e-5 on floats; and today's default (torch bf16)
    within 3 levels of 8-bit."""
    x = noisy()
    img = x if dtype == np.float32 else np.round(x * np.iinfo(dtype).max).astype(dtype)
    fast = Denoiser()
    assert fast.runtime == "onnxruntime"
    out = fast(img)
    ref = denoise(img, runtime="torch", precision="fp32")
    assert fast.last.noise["path"] == "one-pass" and out.dtype == img.dtype
    assert np.abs(out.astype(np.float64) - ref).max() <= tol
    if dtype == np.uint8:
        assert np.abs(out.astype(int) - denoise(img, runtime="torch")).max() <= 3
    if dtype == np.uint16:
        assert len(np.unique(out % 256)) > 200          # not 8-bit samples scaled up


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


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_tiled_equals_whole_on_runtime(graph, dtype):
    """Tiles with the receptive-radius overlap give the whole image's result exactly (the blend too)."""
    from sdap_cli.inference.adaptive import AdaptiveDenoiser

    x = noisy(203, 301, seed=1)
    img = x if dtype == np.float32 else np.round(x * np.iinfo(dtype).max).astype(dtype)
    den = rt.RuntimeDenoiser(*graph)
    ad = AdaptiveDenoiser(den, den)
    whole, _ = ad.denoise(img, tile=4096, out=np.empty_like(img))
    tiled, _ = ad.denoise(img, tile=180, out=np.empty_like(img))
    assert np.array_equal(whole, tiled)


def test_no_torch_imported_on_fast_path(tmp_path, graph):
    """A photo through a pipe, as a whole process: torch is never imported once the graph is cached."""
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), np.round(noisy() * 255).astype(np.uint8))
    code = ("import sys\nfrom sdap_cli.entry import main\nsys.argv = ['sdap', 'denoise', '-', '-o', '-', '-q']\n"
            "try:\n    main()\nfinally:\n    sys.stderr.write('TORCH=%s ORT=%s' % ('torch' in sys.modules, "
            "'onnxruntime' in sys.modules))\n")
    r = subprocess.run([sys.executable, "-c", code], input=src.read_bytes(), capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert "TORCH=False ORT=True" in r.stderr.decode()
    out = cv2.imdecode(np.frombuffer(r.stdout, np.uint8), cv2.IMREAD_COLOR)
    assert out.shape == (67, 93, 3)


def _key(path) -> dict:
    return json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}["sdap.key"])


def test_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    """A cache entry that does not load, or whose check output was altered, is rebuilt, not used."""
    monkeypatch.setenv("SDAP_CACHE_DIR", str(tmp_path))
    weights = shipped_student_path()
    rt.open_graph(weights)
    path = rt.cache_path(weights, rt.graph_key(weights))
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])                    # truncated
    rt.open_graph(weights)
    assert path.read_bytes() == good
    model = onnx.load_from_string(good)                         # loads, but computes something else now
    check = next(p for p in model.metadata_props if p.key == "sdap.check")
    c = json.loads(check.value)
    c["expected"] = rt._b64(rt._unb64(c["expected"], (*rt.CHECK_SHAPE, 3)) + 0.01)
    check.value = json.dumps(c)
    path.write_bytes(model.SerializeToString())
    rt.open_graph(weights)
    assert path.read_bytes() == good


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
    builds = []
    real = rt.build_graph
    monkeypatch.setattr(rt, "build_graph", lambda w, k: builds.append(k) or real(w, k))
    rt.open_graph(weights)
    assert builds == [newer] and _key(stale) == newer
    rt.open_graph(weights)                                      # now cached: not built again
    assert builds == [newer]


def test_falls_back_to_torch_without_onnxruntime(monkeypatch):
    """No onnxruntime: the default runs on torch (same outputs as --runtime torch); --runtime onnxruntime
    says why it cannot."""
    monkeypatch.setitem(sys.modules, "onnxruntime", None)      # import onnxruntime raises ImportError
    den = Denoiser()
    assert den.runtime == "torch" and "onnxruntime" in den.runtime_note
    img = np.round(noisy() * 255).astype(np.uint8)
    assert np.array_equal(den(img), denoise(img, runtime="torch"))
    with pytest.raises(ConfigError, match="--runtime onnxruntime: onnxruntime is not installed"):
        Denoiser(runtime="onnxruntime")


def test_falls_back_when_the_check_fails(tmp_path, monkeypatch):
    """A runtime whose output differs from torch's on this machine (the check fails right after the build)
    is not used, and nothing is cached."""
    monkeypatch.setenv("SDAP_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(rt, "CHECK_TOLERANCE", -1.0)
    den = Denoiser()
    assert den.runtime == "torch" and "check tile" in den.runtime_note
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("options, refusal", [
    ({}, None), ({"model": "student"}, None), ({"strength": 0.5}, None),
    ({"runtime": "torch"}, "--runtime torch"), ({"model": "teacher"}, "teacher"), ({"refine": "none"}, "teacher"),
    ({"precision": "bf16"}, "--precision bf16"), ({"precision": "fp32"}, "--precision fp32"),
    ({"precision": "fp32", "runtime": "onnxruntime"}, None), ({"compile": True}, "--compile"),
    ({"device": "cuda"}, "GPU"),
])
def test_what_runs_on_the_runtime(options, refusal):
    """The shipped student at the default precision on the CPU runs on the runtime; the teacher, bf16, an
    explicit fp32 (today's torch fp32), --compile and CUDA stay on torch."""
    why = rt.runtime_refusal(InferenceConfig(**options), None)
    assert (why is None) if refusal is None else (refusal in why)
