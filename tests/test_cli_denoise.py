import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from sdap_cli import __version__
from sdap_cli.cli import app
from tests.helpers import noisy_rgb, sha, tiny_weights, write_png

runner = CliRunner()


@pytest.fixture
def weights(tmp_path_factory):
    return tiny_weights(tmp_path_factory.mktemp("w") / "tiny.safetensors")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def read(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_version():
    r = invoke("--version")
    assert r.exit_code == 0 and __version__ in r.output


def test_folder_keeps_names_sizes_dtypes_gray_and_alpha(tmp_path, weights):
    src = tmp_path / "in"
    write_png(src / "rgb8.png", noisy_rgb(21, 30))
    write_png(src / "rgb16.png", noisy_rgb(17, 19, np.uint16))
    write_png(src / "gray.png", noisy_rgb(16, 25, channels=1))
    rgba = np.dstack([noisy_rgb(20, 20), np.arange(400, dtype=np.uint8).reshape(20, 20)])
    write_png(src / "rgba.png", rgba)
    r = invoke("denoise", src, "-o", tmp_path / "out", "--weights", weights, "--device", "cpu")
    assert r.exit_code == 0, r.output
    for name in ("rgb8.png", "rgb16.png", "gray.png", "rgba.png"):
        a, b = read(src / name), read(tmp_path / "out" / name)
        assert a.shape == b.shape and a.dtype == b.dtype, name
    assert np.array_equal(read(tmp_path / "out" / "rgba.png")[..., 3], read(src / "rgba.png")[..., 3])
    # the network really changed the pixels
    assert not np.array_equal(read(src / "rgb8.png"), read(tmp_path / "out" / "rgb8.png"))


def test_never_overwrites_and_resumes(tmp_path, weights):
    src = write_png(tmp_path / "a.png", noisy_rgb(12, 12))
    out = tmp_path / "out"
    assert invoke("denoise", src, "-o", out, "-w", weights).exit_code == 0
    first = sha(out / "a.png")
    r = invoke("denoise", src, "-o", out, "-w", weights)
    assert r.exit_code == 1 and "exists" in r.output and "--overwrite" in r.output
    r = invoke("denoise", src, "-o", out, "-w", weights, "--skip-existing", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["skipped"] == 1
    assert invoke("denoise", src, "-o", out, "-w", weights, "--overwrite").exit_code == 0
    assert sha(out / "a.png") == first           # deterministic, rewritten in place


def test_refuses_to_overwrite_an_input(tmp_path, weights):
    src = write_png(tmp_path / "a.png", noisy_rgb(12, 12))
    before = sha(src)
    r = invoke("denoise", src, "-o", tmp_path, "--suffix", "", "-w", weights, "--overwrite")
    assert r.exit_code == 1 and "overwrite the input" in r.output
    assert sha(src) == before


def test_default_output_is_beside_input_with_suffix(tmp_path, weights):
    src = write_png(tmp_path / "a.png", noisy_rgb(12, 12))
    assert invoke("denoise", src, "-w", weights).exit_code == 0
    assert (tmp_path / "a_denoised.png").is_file()


def test_recursive_keeps_structure_and_format_option(tmp_path, weights):
    write_png(tmp_path / "in" / "x" / "a.png", noisy_rgb(10, 10))
    write_png(tmp_path / "in" / "y" / "z" / "b.png", noisy_rgb(10, 10))
    r = invoke("denoise", tmp_path / "in", "-o", tmp_path / "out", "-w", weights)
    assert r.exit_code == 1 and "--recursive" in r.output
    r = invoke("denoise", tmp_path / "in", "-r", "-o", tmp_path / "out", "-w", weights, "--format", "tiff")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "x" / "a.tif").is_file() and (tmp_path / "out" / "y" / "z" / "b.tif").is_file()


def test_shards_partition_the_inputs(tmp_path, weights):
    for i in range(5):
        write_png(tmp_path / "in" / f"{i}.png", noisy_rgb(8, 8, seed=i))
    outs = []
    for k in (1, 2):
        r = invoke("denoise", tmp_path / "in", "-o", tmp_path / f"o{k}", "-w", weights, "--shard", f"{k}/2")
        assert r.exit_code == 0, r.output
        outs.append({p.name for p in (tmp_path / f"o{k}").iterdir()})
    assert outs[0].isdisjoint(outs[1]) and outs[0] | outs[1] == {f"{i}.png" for i in range(5)}
    assert {len(o) for o in outs} == {2, 3}
    assert invoke("denoise", tmp_path / "in", "--shard", "3/2").exit_code == 2


def test_glob_and_json_summary(tmp_path, weights):
    for i in range(2):
        write_png(tmp_path / f"n{i}.png", noisy_rgb(9, 11, seed=i))
    r = invoke("denoise", str(tmp_path / "n*.png"), "-o", tmp_path / "out", "-w", weights, "--json", "-q")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["ok"] == 2 and summary["failed_count"] == 0
    assert all(f["megapixels"] > 0 for f in summary["files"])


BAD_CASES = {
    "empty.png": b"",
    "corrupt.png": b"\x89PNG\r\n\x1a\n" + os.urandom(200),
    "notimage.png": b"hello, I am text\n",
}


@pytest.mark.parametrize("name", [*BAD_CASES, "truncated.png", "notes.txt"])
def test_bad_input_one_line_error_batch_goes_on(tmp_path, weights, name):
    good = write_png(tmp_path / "in" / "good.png", noisy_rgb(12, 12))
    bad = tmp_path / "in" / name
    if name == "truncated.png":
        full = write_png(tmp_path / "full.png", noisy_rgb(40, 40)).read_bytes()
        bad.write_bytes(full[: len(full) // 2])
    elif name == "notes.txt":
        bad.write_text("not an image")
    else:
        bad.write_bytes(BAD_CASES[name])
    before = {p: sha(p) for p in (good, bad)}
    r = invoke("denoise", bad, good, "-o", tmp_path / "out", "-w", weights)
    assert r.exit_code == 1
    assert "Traceback" not in r.output
    lines = [l for l in r.output.splitlines() if name in l and "error" in l]
    assert lines, r.output
    assert (tmp_path / "out" / "good.png").is_file()
    assert not (tmp_path / "out" / name).exists()
    assert {p: sha(p) for p in before} == before


def test_missing_file_and_empty_folder(tmp_path, weights):
    (tmp_path / "empty").mkdir()
    r = invoke("denoise", tmp_path / "nope.png", tmp_path / "empty", "-o", tmp_path / "out", "-w", weights)
    assert r.exit_code == 1 and "no such file" in r.output and "no images found" in r.output
    assert "Traceback" not in r.output


def test_unwritable_output(tmp_path, weights):
    src = write_png(tmp_path / "a.png", noisy_rgb(12, 12))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = invoke("denoise", src, "-o", blocker / "sub", "-w", weights)
    assert r.exit_code == 1 and "cannot" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("content", [b"", b"garbage" * 10, b"PK\x03\x04broken zip"])
def test_wrong_weights_file(tmp_path, content):
    w = tmp_path / "w.safetensors"
    w.write_bytes(content)
    src = write_png(tmp_path / "a.png", noisy_rgb(12, 12))
    r = invoke("denoise", src, "-o", tmp_path / "out", "-w", w)
    assert r.exit_code == 1 and str(w) in r.output and "Traceback" not in r.output
    assert len([l for l in r.output.splitlines() if l.startswith("error")]) == 1


def test_bad_option_values_exit_2(tmp_path):
    r = invoke("denoise", tmp_path, "--refine", "bogus")
    assert r.exit_code == 2 and "--refine" in r.output
    r = invoke("denoise", tmp_path, "--tile", "100", "--tile-overlap", "60")
    assert r.exit_code == 2 and "tile" in r.output
    r = invoke("denoise", tmp_path, "--strength", "1.5")
    assert r.exit_code == 2 and "--strength" in r.output and "Traceback" not in r.output


def test_strength_zero_writes_the_input_back(tmp_path, weights):
    src = write_png(tmp_path / "a.png", noisy_rgb(20, 18))
    r = invoke("denoise", src, "-o", tmp_path / "out", "-w", weights, "--strength", "0")
    assert r.exit_code == 0, r.output
    assert np.array_equal(read(tmp_path / "out" / "a.png"), read(src))
    r = invoke("denoise", src, "-o", tmp_path / "half", "-w", weights, "--strength", "0.5", "--json")
    assert r.exit_code == 0 and not np.array_equal(read(tmp_path / "half" / "a.png"), read(src))
    assert json.loads(r.stdout)["network"]["strength"] == 0.5


def test_pd_factor_reaches_the_network(tmp_path, weights):
    """--pd 1 runs the blind-spot network without pixel-shuffle down-sampling: it selects the shipped
    teacher under --model auto, the written file is what the core Denoiser with pd=1 computes, it differs
    from the PD-2 output, and the JSON records the factor."""
    from sdap_cli.evaluation.metrics import to_uint8
    from sdap_cli.inference.checkpoints import load_weights
    from sdap_cli.inference.denoiser import make_denoiser
    from sdap_cli.io.images import read_image

    src = write_png(tmp_path / "a.png", noisy_rgb(24, 20))
    r = invoke("denoise", src, "-o", tmp_path / "pd1", "--precision", "fp32", "--pd", "1", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["network"]["pd"] == 1 and summary["network"]["model"] == "teacher"
    r = invoke("denoise", src, "-o", tmp_path / "pd2", "--precision", "fp32", "--model", "teacher", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["network"]["pd"] == 2
    got = read(tmp_path / "pd1" / "a.png")[..., ::-1].astype(int)
    assert np.abs(got - read(tmp_path / "pd2" / "a.png")[..., ::-1]).max() > 2
    loaded = load_weights(None)
    den = make_denoiser(loaded.model, input_scale=loaded.input_scale, pd=1, precision="fp32")
    want = to_uint8(den.denoise(read_image(src).rgb)).astype(int)
    assert np.abs(got - want).max() <= 1
    r = invoke("denoise", src, "-o", tmp_path / "bad", "-w", weights, "--pd", "0")
    assert r.exit_code == 2 and "--pd" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_stdin_stdout_pipe(tmp_path, weights):
    src = write_png(tmp_path / "a.png", noisy_rgb(14, 15))
    p = subprocess.run([sys.executable, "-m", "sdap_cli", "denoise", "-", "-o", "-", "-w", str(weights)],
                       input=src.read_bytes(), capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    out = cv2.imdecode(np.frombuffer(p.stdout, np.uint8), cv2.IMREAD_UNCHANGED)
    assert out is not None and out.shape == (14, 15, 3)


def test_tiled_cli_equals_untiled(tmp_path, weights):
    src = write_png(tmp_path / "a.png", noisy_rgb(70, 90))
    assert invoke("denoise", src, "-o", tmp_path / "whole", "-w", weights, "--precision", "fp32").exit_code == 0
    r = invoke("denoise", src, "-o", tmp_path / "tiled", "-w", weights, "--precision", "fp32", "--tile", "48")
    assert r.exit_code == 0, r.output
    assert np.array_equal(read(tmp_path / "whole" / "a.png"), read(tmp_path / "tiled" / "a.png"))


def test_camera_raw_to_16bit_tiff(tmp_path, weights):
    from tests.conftest import shared_data

    pytest.importorskip("rawpy")
    raw = shared_data("raw_samples", "canon_eos_6d.dng")
    before = sha(raw)
    r = invoke("denoise", raw, "-o", tmp_path, "-w", weights, "--refine", "none")
    assert r.exit_code == 0, r.output
    out = tmp_path / "canon_eos_6d.tif"
    import tifffile

    arr = tifffile.imread(out)
    assert arr.dtype == np.uint16 and arr.ndim == 3 and arr.shape[2] == 3 and arr.max() > 0
    assert sha(raw) == before


def test_241_square_and_odd_sizes(tmp_path, weights):
    for hw in [(241, 241), (7, 3)]:
        src = write_png(tmp_path / f"{hw[0]}x{hw[1]}.png", noisy_rgb(*hw))
        r = invoke("denoise", src, "-o", tmp_path / "out", "-w", weights)
        assert r.exit_code == 0, r.output
        assert read(tmp_path / "out" / src.name).shape == (*hw, 3)


def test_adapt_fine_tunes_a_copy_and_can_save_it(tmp_path, weights):
    from sdap_cli.inference.checkpoints import load_weights

    src = write_png(tmp_path / "a.png", noisy_rgb(40, 40))
    before = sha(weights)
    assert invoke("denoise", src, "-o", tmp_path / "plain", "-w", weights).exit_code == 0
    r = invoke("denoise", src, "-o", tmp_path / "adapted", "-w", weights, "--adapt", "--adapt-iters", "3",
               "--adapt-lr", "1e-3", "--save-adapted", tmp_path / "adapted.safetensors")
    assert r.exit_code == 0, r.output
    assert sha(weights) == before                                     # the weights file is untouched
    assert not np.array_equal(read(tmp_path / "plain" / "a.png"), read(tmp_path / "adapted" / "a.png"))
    lw = load_weights(tmp_path / "adapted.safetensors")
    assert lw.metadata["training"]["adapted"]["iterations"] == 3
    assert invoke("denoise", src, "-w", weights, "--save-adapted", tmp_path / "x.safetensors").exit_code == 2


# ------------------------------------------------------------------ a new user's list (issue 23)

def test_16bit_and_float_outputs_keep_their_precision_under_bf16(tmp_path):
    """The shipped networks at bf16 (the default where the CPU has it): a 16-bit PNG and a float32 TIFF
    come back with as many distinct values as a 16-bit/float workflow expects, not bf16's 8 bits."""
    import tifffile

    y16 = noisy_rgb(256, 256, np.uint16, seed=3)
    write_png(tmp_path / "in" / "a16.png", y16)
    tifffile.imwrite(tmp_path / "in" / "f32.tif", y16.astype(np.float32) / 65535, photometric="rgb")
    for model in ("student", "teacher"):
        r = invoke("denoise", tmp_path / "in", "-o", tmp_path / model, "--model", model, "--precision", "bf16")
        assert r.exit_code == 0, r.output
        assert len(np.unique(read(tmp_path / model / "a16.png"))) >= 10_000, model
        assert len(np.unique(tifffile.imread(tmp_path / model / "f32.tif"))) >= 100_000, model


def test_outputs_named_by_sdap_are_not_denoised_again(tmp_path, weights):
    src = write_png(tmp_path / "beside" / "34.png", noisy_rgb(16, 16))
    assert invoke("denoise", src, "-w", weights).exit_code == 0
    r = invoke("denoise", tmp_path / "beside", "-w", weights, "--json")
    assert r.exit_code == 1, r.output          # 34.png's output exists; 34_denoised.png is not an input
    assert not (tmp_path / "beside" / "34_denoised_denoised.png").exists()
    d = json.loads(r.stdout)
    assert d["own_outputs"] == 1 and "named as outputs of sdap" in r.output
    # named on the command line with an output folder, it is denoised like any file
    r = invoke("denoise", tmp_path / "beside" / "34_denoised.png", "-o", tmp_path / "out", "-w", weights)
    assert r.exit_code == 0 and (tmp_path / "out" / "34_denoised.png").exists()


def test_summary_and_json_name_the_network_that_ran(tmp_path):
    """--auto on a light-noise and a heavy-noise image: per file the network and options that ran, and
    counts per path; no top-level network claim."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:96, 0:96]
    base = (0.5 + 0.3 * np.sin(xx / 30.0) * np.cos(yy / 32.0))[..., None].repeat(3, 2)   # smooth: reads clean
    write_png(tmp_path / "in" / "white.png", np.clip((base + rng.normal(0, 4 / 255, base.shape)) * 255, 0, 255)
              .astype(np.uint8))
    write_png(tmp_path / "in" / "clean.png", np.round(base * 255).astype(np.uint8))
    r = invoke("denoise", tmp_path / "in", "-o", tmp_path / "out", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["network"] is None and "model" not in d and "pd" not in d
    files = {Path(f["input"]).name: f for f in d["files"]}
    light = files["white.png"]
    assert light["noise"]["path"] == "one-pass"
    assert Path(light["network"].pop("weights")).name == "sdap_student.safetensors"
    told = light["network"].pop("told")
    assert told["rho1"] == light["noise"]["rho1"] and len(told["sigma_channels"]) == 3
    from sdap_cli.inference.adaptive import ONEPASS_BLEND_LIGHT
    a, lo, hi = ONEPASS_BLEND_LIGHT                            # light (white) noise: the one pass is blended
    want = round(a * min(1.0, max(0.0, (hi - light["noise"]["sigma"]) / (hi - lo))), 4)
    assert abs(light["network"].pop("blend") - want) <= 0.002 and want > 0
    assert light["network"] == {"model": "student", "pd": 1, "refine": "none", "strength": 1.0}
    assert files["clean.png"]["noise"]["path"] == "clean" and files["clean.png"]["network"] is None
    assert d["paths"] == {"clean": 1, "one-pass": 1}
    summary = r.stderr.strip().splitlines()[-1]
    assert "one-pass 1: student sdap_student.safetensors" in summary and "clean 1: nothing ran" in summary
    r = invoke("denoise", tmp_path / "in" / "white.png", "-o", tmp_path / "fixed", "--no-auto", "--json")
    d = json.loads(r.stdout)
    assert d["network"]["model"] == "student" and d["network"]["pd"] == 1 and d["paths"] == {}


@pytest.mark.slow
def test_a_jpeg_piped_in_comes_back_as_jpeg(tmp_path, weights):
    src = tmp_path / "camera.jpg"
    assert cv2.imwrite(str(src), noisy_rgb(32, 40))
    p = subprocess.run([sys.executable, "-m", "sdap_cli", "denoise", "-", "-o", "-", "-w", str(weights)],
                       input=src.read_bytes(), capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout[:3] == b"\xff\xd8\xff"                   # JPEG, not PNG
    p = subprocess.run([sys.executable, "-m", "sdap_cli", "denoise", "-", "-o", "-", "-w", str(weights), "-f", "png"],
                       input=src.read_bytes(), capture_output=True, timeout=120)
    assert p.returncode == 0 and p.stdout[:4] == b"\x89PNG"   # -f still chooses


def test_stdout_with_two_inputs_is_a_usage_error(tmp_path, weights):
    a, b = write_png(tmp_path / "a.png", noisy_rgb(8, 8)), write_png(tmp_path / "b.png", noisy_rgb(8, 8, seed=1))
    r = invoke("denoise", a, b, "-o", "-", "-w", weights)
    assert r.exit_code == 2 and "exactly one input" in r.output
    r = invoke("denoise", a, "--model", "student", "-w", weights)      # a teacher file named as a student
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_subfolders_not_searched_are_named(tmp_path, weights):
    write_png(tmp_path / "tree" / "a.png", noisy_rgb(8, 8))
    write_png(tmp_path / "tree" / "sub" / "b.png", noisy_rgb(8, 8))
    (tmp_path / "tree" / "sub2").mkdir()
    r = invoke("denoise", tmp_path / "tree", "-o", tmp_path / "out", "-w", weights)
    assert r.exit_code == 0
    assert "2 sub-folder(s) not searched" in r.output and "-r" in r.output
    r = invoke("denoise", tmp_path / "tree", "-o", tmp_path / "out2", "-w", weights, "-r")
    assert r.exit_code == 0 and "not searched" not in r.output and (tmp_path / "out2" / "sub" / "b.png").exists()


def test_a_batch_reads_ahead_and_writes_behind_yet_reports_in_order(tmp_path, weights):
    """Files are read, denoised and written by three overlapping stages: a bad file and a failed write in
    the middle of the batch fail alone, every other output is written and equals a one-file run, and the
    report lists the files in input order."""
    src = tmp_path / "in"
    for name, seed in (("a", 0), ("c", 2), ("d", 3), ("e", 4)):
        write_png(src / f"{name}.png", noisy_rgb(24, 20, seed=seed))
    (src / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(100))
    (tmp_path / "out" / "d.png").mkdir(parents=True)               # d's output cannot be written
    r = invoke("denoise", src, "-o", tmp_path / "out", "-w", weights, "--json", "-q", "--overwrite")
    assert r.exit_code == 1
    files = json.loads(r.stdout)["files"]
    assert [Path(f["input"]).stem for f in files] == ["a", "b", "c", "d", "e"]
    assert [f["status"] for f in files] == ["ok", "failed", "ok", "failed", "ok"]
    assert "b.png" in files[1]["error"] and "d.png" in files[3]["error"]
    for name in ("a", "c", "e"):
        alone = invoke("denoise", src / f"{name}.png", "-o", tmp_path / "alone", "-w", weights, "-q")
        assert alone.exit_code == 0
        assert np.array_equal(read(tmp_path / "out" / f"{name}.png"), read(tmp_path / "alone" / f"{name}.png"))


_KILLER = """
import os, signal, sys
from sdap_cli.io import atomic
fn, k = sys.argv[1], int(sys.argv[2])
real = getattr(os, fn)
calls = [0]
def dying(*a, **kw):
    calls[0] += 1
    if calls[0] == k:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*a, **kw)
setattr(atomic.os, fn, dying)
sys.argv = ["sdap"] + sys.argv[3:]
from sdap_cli.cli import main
main()
"""


@pytest.mark.slow
@pytest.mark.parametrize("where,k", [("fsync", 1), ("replace", 1), ("fsync", 3), ("replace", 2), ("replace", 4)])
def test_a_batch_killed_mid_write_leaves_only_outputs_after_resume(tmp_path, weights, where, k):
    """Issue 36 item 2: a batch killed with SIGKILL at a write (after the temporary file is written and
    before it is renamed: at its fsync or at the rename, of the k-th output) leaves a temporary file; the
    --skip-existing run that completes the batch removes it (its naming, its process gone) and the output
    folder then holds exactly the outputs. A file of the same look from a running process, and any other
    file, are left alone."""
    src = tmp_path / "in"
    for i in range(5):
        write_png(src / f"b{i}.png", noisy_rgb(24, 20, seed=i))
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.tmp").write_text("not sdap's")                              # other names stay
    from sdap_cli.io.atomic import temporary_prefix
    live = out / (temporary_prefix("x.png") + "abc123.tmp")                   # this (running) process's
    live.write_bytes(b"in use")
    args = ["denoise", str(src), "-o", str(out), "-w", str(weights), "--device", "cpu", "-q"]
    r = subprocess.run([sys.executable, "-c", _KILLER, where, str(k), *args], capture_output=True, text=True)
    assert r.returncode == -9, r.stderr                                       # killed, as planned
    left = sorted(p.name for p in out.iterdir() if p.name.endswith(".tmp") and p not in (live, out / "notes.tmp"))
    assert len(left) == 1 and left[0].startswith(".b") and ".png.sdap-" in left[0], left   # the killed write's
    r = subprocess.run([sys.executable, "-m", "sdap_cli", *args, "--skip-existing"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted([f"b{i}.png" for i in range(5)] +
                                                           ["notes.tmp", live.name])
    for i in range(5):
        assert read(out / f"b{i}.png").shape == (24, 20, 3)
