"""The Python API (sdap_cli.api, issue 33): arrays in, the CLI's pixels and decisions out; the Denoiser
reused; progress and cancel; typed one-line errors; the batch over files; the documented example."""

import json
import os
import pickle
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

import sdap_cli
from sdap_cli import Denoiser, denoise, denoise_files
from sdap_cli.cli import app
from sdap_cli.errors import ConfigError, InputError
from tests.conftest import REPO
from tests.helpers import noisy_rgb, tiny_weights, write_png

runner = CliRunner()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return tiny_weights(tmp_path_factory.mktemp("w") / "tiny.safetensors")


def rgba8():
    return np.dstack([noisy_rgb(40, 36), np.arange(40 * 36, dtype=np.uint8).reshape(40, 36)])


def rgb32():
    """Float RGB in [0, 1] with samples outside it, which come back as given."""
    a = noisy_rgb(40, 36, np.uint16, seed=3).astype(np.float32) / 65535
    a[0, 0, 0], a[5, 7, 2] = 1.5, -0.25
    return a


IMAGES = {                      # name: (the array, its file name)
    "rgb8": (lambda: noisy_rgb(40, 36), "rgb8.png"),
    "rgb16": (lambda: noisy_rgb(40, 36, np.uint16, seed=1), "rgb16.png"),
    "rgb32": (rgb32, "rgb32.tif"),
    "gray": (lambda: noisy_rgb(40, 36, seed=2, channels=1), "gray.png"),
    "rgba": (rgba8, "rgba.png"),
}


def save(path, arr):
    if path.suffix == ".tif":
        path.parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(path, arr, photometric="rgb")
        return path
    return write_png(path, arr)


def load(path):
    if path.suffix == ".tif":
        return tifffile.imread(path)
    a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return a if a.ndim == 2 else a[..., [2, 1, 0, 3][:a.shape[2]]]


def cli(*args):
    r = runner.invoke(app, ["denoise", *map(str, args), "--device", "cpu", "--json", "-q"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def assert_same(api, arr, out, report, result=None):
    """The API's array equals the CLI's output file (shape, dtype, pixels), alpha as given."""
    assert api.shape == arr.shape and api.dtype == arr.dtype
    assert np.array_equal(api, out, equal_nan=True)
    if arr.ndim == 3 and arr.shape[2] == 4:
        assert np.array_equal(api[..., 3], arr[..., 3])
    if result is not None:
        assert (result.noise, result.network) == (report["noise"], report["network"])


def test_api_equals_cli_for_every_sample_type_gray_and_alpha(tmp_path, weights):
    """One CLI run over five files, one Denoiser over their arrays: the same pixels and decisions."""
    for name, (make, fname) in IMAGES.items():
        save(tmp_path / "in" / fname, make())
    report = cli(tmp_path / "in", "-o", tmp_path / "out", "-w", weights)
    files = {os.path.basename(f["input"]): f for f in report["files"]}
    den = Denoiser(weights, device="cpu")
    for name, (make, fname) in IMAGES.items():
        arr = make()
        r = den.run(arr)
        assert_same(r.image, arr, load(tmp_path / "out" / fname), files[fname], r)
        assert not np.array_equal(r.image, arr)                        # the network ran


@pytest.mark.slow
@pytest.mark.parametrize("name", list(IMAGES))
def test_api_equals_cli_with_the_default_network(tmp_path, name):
    make, fname = IMAGES[name]
    arr = make()
    report = cli(save(tmp_path / "in" / fname, arr), "-o", tmp_path / "out")
    den = Denoiser(device="cpu")
    r = den.run(arr)
    assert_same(r.image, arr, load(tmp_path / "out" / fname), report["files"][0], r)
    assert not np.array_equal(r.image, arr) and r.noise["path"] == "one-pass"
    assert np.array_equal(denoise(arr, device="cpu"), r.image, equal_nan=True)
    if name == "rgb32":
        assert r.image[0, 0, 0] == np.float32(1.5) and r.image[5, 7, 2] == np.float32(-0.25)


@pytest.mark.parametrize("view", ["fortran", "transposed", "reversed", "bgr-view"])
def test_any_strides_give_the_contiguous_result(weights, view):
    base = noisy_rgb(40, 36, seed=4)
    arr = {"fortran": lambda: np.asfortranarray(base),
           "transposed": lambda: np.ascontiguousarray(base.transpose(1, 0, 2)).transpose(1, 0, 2),
           "reversed": lambda: np.ascontiguousarray(base[::-1, ::-1, ::-1])[::-1, ::-1, ::-1],
           "bgr-view": lambda: np.ascontiguousarray(base[..., ::-1])[..., ::-1]}[view]()
    assert np.array_equal(arr, base) and not arr.flags.c_contiguous
    before = arr.copy()
    den = Denoiser(weights, device="cpu")
    assert np.array_equal(den(arr), den(base))
    assert np.array_equal(arr, before)                                 # the input is not modified


def test_a_reused_denoiser_reports_each_images_decision(weights):
    den = Denoiser(weights, device="cpu")
    flat = np.full((40, 36, 3), 128, np.uint8)                         # no noise: the clean path
    first = den.run(flat)
    assert first.noise["path"] == "clean" and first.network is None and np.array_equal(first.image, flat)
    assert den.last is first
    out = den(noisy_rgb(40, 36))
    second = den.last
    assert second is not first and out is second.image
    assert second.noise["path"] in ("light", "heavy")       # a teacher's light path runs the shipped student
    assert second.network["model"] == ("teacher" if second.noise["path"] == "heavy" else "student")
    assert second.noise["sigma"] > first.noise["sigma"] and den.auto and den.network is None
    fixed = Denoiser(weights, device="cpu", auto=False)
    assert fixed.run(flat).noise is None and fixed.network == fixed.last.network


class Cancelled(Exception):
    pass


def test_progress_counts_tiles_and_raising_cancels(weights):
    den = Denoiser(weights, device="cpu", tile=32, tile_overlap=4, refine="none", auto=False)
    calls = []
    den(noisy_rgb(40, 20), progress=lambda done, total: calls.append((done, total)))
    total = calls[-1][1]
    assert total > 1 and calls == [(i, total) for i in range(1, total + 1)]
    before = den.last

    def cancel(done, total):
        raise Cancelled

    with pytest.raises(Cancelled):
        den.run(noisy_rgb(40, 20, seed=1), progress=cancel)
    assert den.last is before                                          # nothing returned, nothing kept
    with pytest.raises(Cancelled):
        denoise(noisy_rgb(40, 20), weights=weights, device="cpu", progress=cancel, refine="none", tile=32,
                tile_overlap=4)


@pytest.mark.parametrize("bad, match", [
    (np.zeros(5, np.uint8), "layout"), (np.zeros((4, 4, 2), np.uint8), "layout"),
    (np.zeros((4, 4, 5), np.uint8), "layout"), (np.zeros((2, 4, 4, 3), np.uint8), "layout"),
    (np.zeros((4, 4, 3)), "float64"), (np.zeros((4, 4, 3), np.int32), "int32"),
    (np.zeros((4, 4, 3), bool), "bool"), (np.zeros((0, 4, 3), np.uint8), "empty"),
    ([[0, 1], [2, 3]], "numpy array"),
])
def test_bad_images_raise_one_line_input_errors(bad, match):
    with pytest.raises(InputError, match=match) as e:
        denoise(bad)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("call, match", [
    (lambda: denoise(noisy_rgb(8, 8), pd=0), "^pd: "),
    (lambda: denoise(noisy_rgb(8, 8), frobnicate=1), "frobnicate: unknown option"),
    (lambda: denoise(noisy_rgb(8, 8), tile=40, tile_overlap=20), "tile 40 must exceed"),
    (lambda: denoise(noisy_rgb(8, 8), device="tpu"), "^device: "),
    (lambda: Denoiser(adapt=True), "adapt_on"),
    (lambda: denoise_files(["x.png"], quality=0), "^quality: "),
    (lambda: denoise_files(["x.png"], "out", overwite=True), "overwite: unknown option"),
    (lambda: denoise_files(["x.png"], overwrite=True, skip_existing=True), "exclude each other"),
])
def test_bad_options_raise_one_line_config_errors(call, match):
    with pytest.raises(ConfigError, match=match) as e:
        call()
    assert "\n" not in str(e.value)


def test_denoise_files_yields_a_result_per_file_and_goes_on(tmp_path, weights):
    src = tmp_path / "in"
    arrays = {"a": noisy_rgb(40, 36, seed=5), "c": noisy_rgb(36, 40, seed=6)}
    for name, arr in arrays.items():
        write_png(src / f"{name}.png", arr)
    (src / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really" * 10)
    batch = denoise_files(src, tmp_path / "out", weights=weights, device="cpu")
    assert not (tmp_path / "out").exists()                             # nothing happens before iterating
    results = []
    for r in batch:
        results.append(r)
    assert [os.path.basename(r.input) for r in results] == ["a.png", "b.png", "c.png"]
    assert [r.status for r in results] == ["ok", "failed", "ok"]
    assert "b.png" in results[1].error and "\n" not in results[1].error
    den = Denoiser(weights, device="cpu")
    for r, (name, arr) in zip((results[0], results[2]), arrays.items()):
        assert np.array_equal(load(tmp_path / "out" / f"{name}.png"), den(arr))
        assert (r.noise, r.network) == (den.last.noise, den.last.network) and r.seconds > 0
    assert batch.summary.files == results and batch.summary.device == "cpu" and batch.summary.auto
    again = list(denoise_files([src / "a.png"], tmp_path / "out", weights=weights, device="cpu",
                               skip_existing=True))
    assert [r.status for r in again] == ["skipped"]
    early = denoise_files(src, tmp_path / "early", weights=weights, device="cpu")
    assert next(early).status == "ok"                                  # a.png, written
    early.close()                                                      # c.png is never written
    assert sorted(p.name for p in (tmp_path / "early").iterdir()) == ["a.png"]
    assert list(early) == []


def test_a_denoiser_pickles_as_its_options(weights):
    den = Denoiser(weights, device="cpu", auto=False, strength=0.5)
    twin = pickle.loads(pickle.dumps(den))
    img = noisy_rgb(40, 36)
    assert np.array_equal(twin(img), den(img)) and twin.network == den.network


def test_importing_sdap_cli_imports_neither_torch_nor_typer_nor_rich():
    code = ("import sys, sdap_cli; a = sorted(m for m in ('torch', 'typer', 'rich') if m in sys.modules); "
            "from sdap_cli import denoise, Denoiser, denoise_files, errors; "
            "b = sorted(m for m in ('torch', 'typer', 'rich') if m in sys.modules); print(a, b)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["[]", "[]"]
    assert sdap_cli.errors.InputError is InputError and sdap_cli.denoise is denoise


@pytest.mark.slow
def test_the_documented_example_runs(tmp_path, monkeypatch):
    text = (REPO / "docs" / "python-api.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/python-api.md", "exec"), {"__name__": "example"})
    assert (tmp_path / "denoised" / "noisy.png").is_file()
