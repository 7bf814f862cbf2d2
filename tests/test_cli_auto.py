"""`--auto` (the default) through the CLI: the decision is reported, explicit options switch it off,
and `sdap evaluate` writes it to its CSV and JSON."""

import csv
import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from sdap_cli.cli import app
from sdap_cli.config import InferenceConfig
from sdap_cli.inference.denoisers import auto_active
from tests.helpers import write_png
from tests.library.test_noise import add_noise, smooth_scene

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def light(tmp_path):
    """A 96x112 photo-like PNG with white noise of std 5 (8-bit), and its clean original."""
    x = smooth_scene(96, 112)
    y = add_noise(x, 5, np.random.default_rng(0))
    return write_png(tmp_path / "in" / "light.png", np.rint(y * 255).astype(np.uint8)), x


@pytest.mark.parametrize("given, active", [
    ({}, True), ({"model": "auto"}, True), ({"auto": False}, False), ({"model": "student"}, False),
    ({"model": "teacher"}, False), ({"pd": 1}, False), ({"refine": "none"}, False), ({"strength": 0.5}, False),
    ({"adapt": True}, False), ({"r3_t": 4}, False), ({"tile": 256}, True), ({"precision": "fp32"}, True),
])
def test_explicit_path_options_switch_auto_off(given, active):
    assert auto_active(InferenceConfig(**given)) is active


def test_denoise_reports_the_decision_and_no_auto_is_the_fixed_path(tmp_path, light):
    src, x = light
    r = invoke("denoise", src, "-o", tmp_path / "auto", "--json", "--precision", "fp32")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    noise = d["files"][0]["noise"]
    assert d["auto"] is True and noise["path"] == "one-pass"          # the CPU default: the student, told
    assert 4 < noise["sigma"] < 6 and abs(noise["rho1"]) < 0.2
    assert f"one-pass path: noise {noise['sigma']:.1f}, rho1" in r.stderr    # the per-file line (no TTY here)
    assert "auto: " in r.stderr
    from sdap_cli.inference.adaptive import ONEPASS_BLEND_LIGHT
    blend = d["files"][0]["network"]["blend"]              # light (white) noise: the one pass is Wiener-blended
    assert 0 < blend <= ONEPASS_BLEND_LIGHT[0] and noise["sigma"] < ONEPASS_BLEND_LIGHT[2]
    r = invoke("denoise", src, "-o", tmp_path / "fixed", "--json", "--no-auto", "--precision", "fp32")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["auto"] is False and d["files"][0]["noise"] is None and d["network"]["model"] == "student"
    assert "blend" not in d["files"][0]["network"]
    a, b = (cv2.imread(str(tmp_path / f / "light.png"))[..., ::-1] / 255.0 for f in ("auto", "fixed"))
    import torch  # --no-auto: the student's pass alone (it measures the noise itself)

    from sdap_cli.inference.checkpoints import load_weights, shipped_student_path
    from sdap_cli.inference.denoisers import build_denoiser
    plain = build_denoiser(load_weights(shipped_student_path()), InferenceConfig(auto=False, precision="fp32"),
                           torch.device("cpu")).denoise((cv2.imread(str(src))[..., ::-1] / 255.0).astype(np.float32))
    assert np.abs(np.rint(plain * 255) - np.rint(b * 255)).max() <= 1
    err = lambda z: np.mean((z - x) ** 2)                      # noqa: E731
    noisy = np.mean((cv2.imread(str(src))[..., ::-1] / 255.0 - x) ** 2)
    assert err(a) < noisy and err(b) < noisy                   # both remove noise
    r = invoke("denoise", src, "-o", tmp_path / "teacher", "--json", "--model", "teacher", "--pd", "1")
    assert r.exit_code == 0 and json.loads(r.stdout)["network"]["model"] == "teacher"  # the teacher paths stay


def test_evaluate_writes_path_and_noise_columns(tmp_path, light):
    src, x = light
    clean = write_png(tmp_path / "clean" / "light.png", np.rint(x * 255).astype(np.uint8))
    r = invoke("evaluate", "--noisy", src.parent, "--clean", clean.parent, "--csv", tmp_path / "s.csv",
               "--json", tmp_path / "s.json", "-q")
    assert r.exit_code == 0, r.output
    row = next(csv.DictReader(open(tmp_path / "s.csv")))
    assert row["path"] == "one-pass" and 4 < float(row["sigma"]) < 6 and row["rho1"] and row["rho2"]
    d = json.loads((tmp_path / "s.json").read_text())
    assert d["auto"] is True and d["images"][0]["path"] == "one-pass"
    assert d["images"][0]["psnr"] > d["images"][0]["psnr_in"]
    r = invoke("evaluate", "--noisy", src.parent, "--clean", clean.parent, "--json", tmp_path / "f.json",
               "-q", "--no-auto")
    assert r.exit_code == 0, r.output
    d = json.loads((tmp_path / "f.json").read_text())
    assert d["auto"] is False and d["images"][0]["path"] is None
