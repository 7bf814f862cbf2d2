"""`sdap evaluate`: metric conventions against scikit-image, pairing, data sources, submissions."""

import csv
import json

import cv2
import numpy as np
import pytest
from scipy.io import loadmat, savemat
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from typer.testing import CliRunner

from sdap_cli.cli import app
from sdap_cli.evaluation.metrics import psnr_ssim
from sdap_cli.evaluation.submissions import (
    read_dnd_bundle,
    read_sidd_kaggle_csv,
    write_dnd_bundle,
    write_sidd_kaggle_csv,
)
from sdap_cli.io.folders import pair_key
from tests.helpers import noisy_rgb, tiny_weights, write_png

runner = CliRunner()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return tiny_weights(tmp_path_factory.mktemp("w") / "tiny.safetensors")


def invoke(*args):
    return runner.invoke(app, ["evaluate", *[str(a) for a in args]])


def read_rgb(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[..., ::-1]


def fixture_pair(h=48, w=40, seed=0):
    rng = np.random.default_rng(seed)
    clean = noisy_rgb(h, w, seed=seed)
    noisy = np.clip(clean.astype(np.int16) + rng.integers(-40, 41, clean.shape), 0, 255).astype(np.uint8)
    return noisy, clean


# ------------------------------------------------------------------------ conventions vs scikit-image

def sk_sdap(pred_u8, ref_u8):
    return (peak_signal_noise_ratio(ref_u8, pred_u8, data_range=255),
            structural_similarity(ref_u8, pred_u8, data_range=255, gaussian_weights=True,
                                  use_sample_covariance=False, channel_axis=2))


def test_sdap_convention_equals_skimage_on_uint8_and_float():
    noisy, clean = fixture_pair()
    want = sk_sdap(noisy, clean)
    assert psnr_ssim(noisy, clean, "sdap") == pytest.approx(want, abs=1e-12)
    # float [0, 1] inputs are rounded to uint8 first (img_as_ubyte), giving the same numbers
    got = psnr_ssim(noisy.astype(np.float32) / 255, clean.astype(np.float32) / 255, "sdap")
    assert got == pytest.approx(want, abs=1e-9)


def test_apbsn_convention_equals_skimage_on_float_0_255():
    rng = np.random.default_rng(1)
    clean = rng.random((40, 44, 3)).astype(np.float32)
    pred = np.clip(clean + rng.normal(0, 0.05, clean.shape), -0.1, 1.1).astype(np.float32)
    p255, r255 = np.clip(pred.astype(np.float64) * 255, 0, 255), clean.astype(np.float64) * 255
    want = (peak_signal_noise_ratio(r255, p255, data_range=255),
            structural_similarity(r255, p255, data_range=255, channel_axis=2))     # 7x7 uniform, sample cov.
    got = psnr_ssim(pred, clean, "apbsn")
    assert got == pytest.approx(want, abs=1e-9)
    assert got[1] != pytest.approx(psnr_ssim(pred, clean, "sdap")[1], abs=1e-4)   # conventions differ


def test_y_convention_equals_skimage_on_bt601_luma():
    noisy, clean = fixture_pair(seed=2)

    def luma(x):
        x = x.astype(np.float64)
        return 16 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255

    yp, yr = luma(noisy), luma(clean)
    want = (peak_signal_noise_ratio(yr, yp, data_range=255),
            structural_similarity(yr, yp, data_range=255, gaussian_weights=True, use_sample_covariance=False))
    got = psnr_ssim(noisy, clean, "y")
    assert got == pytest.approx(want, abs=1e-9)
    assert got[0] != pytest.approx(psnr_ssim(noisy, clean, "sdap")[0], abs=0.01)


# ------------------------------------------------------------------------ pairing and folders

def test_pair_key_rules():
    assert pair_key("NOISY_SRGB_010.PNG") == pair_key("GT_SRGB_010.PNG") == "SRGB_010"
    assert pair_key("a_real.png") == pair_key("a_mean.JPG") == "a"
    assert pair_key("0034.png") == pair_key("34.png") == pair_key("34_denoised.png") == "34"
    assert pair_key("a.png") != pair_key("b.png")


def test_folder_pairing_denoise_and_json(tmp_path, weights):
    pairs = {("NOISY_x.png", "GT_x.png"): 0, ("a_real.png", "a_mean.png"): 1, ("same.png", "same.png"): 2}
    for (n, c), seed in pairs.items():
        noisy, clean = fixture_pair(24, 28, seed)
        write_png(tmp_path / "noisy" / n, noisy)
        write_png(tmp_path / "clean" / c, clean)
    write_png(tmp_path / "noisy" / "orphan.png", noisy)
    r = invoke("--noisy", tmp_path / "noisy", "--clean", tmp_path / "clean", "-w", weights,
               "--json", tmp_path / "r.json", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert "orphan.png" in r.output and "Traceback" not in r.output
    rows = {row["name"]: row for row in json.loads((tmp_path / "r.json").read_text())["images"]}
    assert set(rows) == {"NOISY_x.png", "a_real.png", "same.png"}
    for (n, c), _ in pairs.items():
        want = sk_sdap(read_rgb(tmp_path / "noisy" / n), read_rgb(tmp_path / "clean" / c))
        assert rows[n]["psnr_in"] == pytest.approx(want[0], abs=1e-9)
        assert rows[n]["ssim_in"] == pytest.approx(want[1], abs=1e-9)
        assert rows[n]["psnr"] is not None and rows[n]["gain"] == pytest.approx(rows[n]["psnr"] - want[0])
    assert "noisy PSNR" in r.stdout and "mean" in r.stdout


def test_noisy_and_clean_in_one_folder_pair_real_with_mean(tmp_path, weights):
    for i in range(2):                                         # the CC layout: x_real.png beside x_mean.png
        noisy, clean = fixture_pair(24, 28, seed=i)
        write_png(tmp_path / "cc" / f"cam{i}_real.png", noisy)
        write_png(tmp_path / "cc" / f"cam{i}_mean.png", clean)
    r = invoke("--noisy", tmp_path / "cc", "--clean", tmp_path / "cc", "-w", weights, "--json", tmp_path / "r.json",
               "--device", "cpu")
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "r.json").read_text())["images"]
    assert [row["name"] for row in rows] == ["cam0_real.png", "cam1_real.png"]
    for i, row in enumerate(rows):
        want = sk_sdap(read_rgb(tmp_path / "cc" / f"cam{i}_real.png"), read_rgb(tmp_path / "cc" / f"cam{i}_mean.png"))
        assert row["psnr_in"] == pytest.approx(want[0], abs=1e-9)


def test_pd_1_scores_the_pd_1_outputs(tmp_path):
    """evaluate --pd 1 (shipped teacher): the scores are those of the saved outputs, which differ from
    PD-2's, and the JSON records the factor."""
    noisy, clean = fixture_pair(24, 28, seed=3)
    write_png(tmp_path / "noisy" / "x.png", noisy)
    write_png(tmp_path / "clean" / "x.png", clean)
    psnr = {}
    for pd in (1, 2):
        r = invoke("--noisy", tmp_path / "noisy", "--clean", tmp_path / "clean", "--model", "teacher", "--pd", pd,
                   "--save", tmp_path / f"out{pd}", "--json", tmp_path / f"r{pd}.json", "--device", "cpu")
        assert r.exit_code == 0, r.output
        result = json.loads((tmp_path / f"r{pd}.json").read_text())
        assert result["network"]["pd"] == pd and result["images"][0]["network"]["pd"] == pd
        psnr[pd] = result["images"][0]["psnr"]
        want = sk_sdap(read_rgb(tmp_path / f"out{pd}" / "x.png"), read_rgb(tmp_path / "clean" / "x.png"))
        assert psnr[pd] == pytest.approx(want[0], abs=1e-6)
    assert psnr[1] != pytest.approx(psnr[2], abs=1e-3)


def test_denoised_mode_needs_no_weights_and_matches_skimage(tmp_path):
    for i in range(3):
        noisy, clean = fixture_pair(32, 32, seed=i)
        write_png(tmp_path / "out" / f"{i}_denoised.png", noisy)
        write_png(tmp_path / "gt" / f"{i}.png", clean)
    r = invoke("--denoised", tmp_path / "out", "--clean", tmp_path / "gt", "--csv", tmp_path / "s.csv",
               "--metric-convention", "apbsn")
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(tmp_path / "s.csv")))
    assert [row["name"] for row in rows] == ["0_denoised.png", "1_denoised.png", "2_denoised.png"]
    for i, row in enumerate(rows):
        p = read_rgb(tmp_path / "out" / f"{i}_denoised.png").astype(np.float64)
        c = read_rgb(tmp_path / "gt" / f"{i}.png").astype(np.float64)
        assert float(row["psnr"]) == pytest.approx(peak_signal_noise_ratio(c, p, data_range=255), abs=1e-5)
        assert float(row["ssim"]) == pytest.approx(structural_similarity(c, p, data_range=255, channel_axis=2),
                                                   abs=1e-5)
        assert row["psnr_in"] == ""                              # no --noisy given: no input metrics
    # --weights makes no sense with existing outputs: a usage error
    r = invoke("--denoised", tmp_path / "out", "--clean", tmp_path / "gt", "-w", tmp_path / "x.safetensors")
    assert r.exit_code == 2 and "--denoised" in r.output


def test_bad_pair_is_one_failed_row_run_goes_on(tmp_path):
    write_png(tmp_path / "d" / "a.png", noisy_rgb(20, 20))
    write_png(tmp_path / "c" / "a.png", noisy_rgb(20, 24))
    write_png(tmp_path / "d" / "b.png", noisy_rgb(20, 20, seed=1))
    write_png(tmp_path / "c" / "b.png", noisy_rgb(20, 20))
    r = invoke("--denoised", tmp_path / "d", "--clean", tmp_path / "c", "--json", tmp_path / "r.json")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert any("a.png" in line and "error" in line for line in r.output.splitlines())
    rows = json.loads((tmp_path / "r.json").read_text())["images"]
    assert rows[0]["error"] and rows[1]["error"] is None and rows[1]["psnr"] > 0


def test_save_into_an_input_folder_is_refused(tmp_path, weights):
    write_png(tmp_path / "n" / "a.png", noisy_rgb(16, 16))
    write_png(tmp_path / "c" / "a.png", noisy_rgb(16, 16, seed=3))
    before = (tmp_path / "n" / "a.png").read_bytes()
    r = invoke("--noisy", tmp_path / "n", "--clean", tmp_path / "c", "-w", weights, "--save", tmp_path / "n")
    assert r.exit_code == 2 and "input folder" in r.output
    assert (tmp_path / "n" / "a.png").read_bytes() == before


def test_usage_errors_exit_2():
    assert invoke().exit_code == 2
    r = invoke("--dataset", "sidd-val", "--data-dir", ".", "--submit", "x.csv")
    assert r.exit_code == 2 and "sidd-bench" in r.output
    r = invoke("--dataset", "sidd-bench")
    assert r.exit_code == 2 and "--submit" in r.output
    r = invoke("--dataset", "sidd-bench", "--data-dir", ".", "--submit", "x.csv", "--figure", "f.png")
    assert r.exit_code == 2 and "--figure" in r.output
    r = invoke("--noisy", ".", "--clean", ".", "--metric-convention", "psnr")
    assert r.exit_code == 2 and "--metric-convention" in r.output


# ------------------------------------------------------------------------ the real SIDD blocks

def test_real_sidd_blocks_psnr_equals_skimage_on_saved_outputs(tmp_path, weights):
    from tests.conftest import shared_data

    root = shared_data("sidd_val_blocks", "p1y2z3_SDAP")
    r = invoke("--data-dir", root, "-w", weights, "--device", "cpu", "--refine", "none", "--save",
               tmp_path / "out", "--csv", tmp_path / "s.csv", "--json", tmp_path / "s.json",
               "--figure", tmp_path / "fig.png", "-q")
    assert r.exit_code == 0, r.output
    csv_rows = {row["name"]: row for row in csv.DictReader(open(tmp_path / "s.csv"))}
    js = json.loads((tmp_path / "s.json").read_text())
    json_rows = {row["name"]: row for row in js["images"]}
    names = ["34.png", "293.png", "531.png", "842.png", "1068.png"]
    assert sorted(csv_rows, key=lambda n: int(n[:-4])) == sorted(names, key=lambda n: int(n[:-4]))
    input_psnr = {"34.png": 16.57, "293.png": 19.64, "531.png": 25.17, "842.png": 26.58, "1068.png": 22.78}
    for n in names:
        out = read_rgb(tmp_path / "out" / n)
        clean = read_rgb(root / "SIDD_clean" / n)
        noisy = read_rgb(root / "SIDD_noisy" / n)
        want = peak_signal_noise_ratio(clean, out, data_range=255)
        assert float(csv_rows[n]["psnr"]) == pytest.approx(want, abs=0.005)
        assert json_rows[n]["psnr"] == pytest.approx(want, abs=0.005)
        assert json_rows[n]["psnr_in"] == pytest.approx(peak_signal_noise_ratio(clean, noisy, data_range=255),
                                                        abs=0.005)
        assert json_rows[n]["psnr_in"] == pytest.approx(input_psnr[n], abs=0.006)   # SOURCES.md, 2 decimals
    s = js["summary"]["psnr"]
    assert s["mean"] == pytest.approx(np.mean([json_rows[n]["psnr"] for n in names]))
    assert s["std"] == pytest.approx(np.std([json_rows[n]["psnr"] for n in names]))
    fig = read_rgb(tmp_path / "fig.png")
    assert fig.shape[0] > 2 * 256 and fig.shape[1] >= 3 * 256           # two rows of three 256 crops
    assert r.stdout == ""                                                 # --quiet: no table


# ------------------------------------------------------------------------ SIDD .mat files

@pytest.fixture
def sidd_mats(tmp_path):
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:32, 0:32]
    base = (128 + 60 * np.sin(xx / 4.0) * np.cos(yy / 5.0))[None, None, ..., None]
    clean = np.clip(base + rng.normal(0, 5, (2, 3, 32, 32, 3)), 0, 255).astype(np.uint8)
    noisy = np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).astype(np.uint8)
    d = tmp_path / "SIDD"
    d.mkdir()
    savemat(d / "ValidationNoisyBlocksSrgb.mat", {"ValidationNoisyBlocksSrgb": noisy})
    savemat(d / "ValidationGtBlocksSrgb.mat", {"ValidationGtBlocksSrgb": clean})
    savemat(d / "BenchmarkNoisyBlocksSrgb.mat", {"BenchmarkNoisyBlocksSrgb": noisy})
    return d, noisy, clean


def test_sidd_val_mat_with_limit_save_and_rescore(tmp_path, weights, sidd_mats):
    d, noisy, clean = sidd_mats
    r = invoke("--dataset", "sidd-val", "--data-dir", d, "-w", weights, "--limit", "4", "--save",
               tmp_path / "out", "--json", tmp_path / "a.json", "--refine", "none")
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "a.json").read_text())["images"]
    assert [row["name"] for row in rows] == ["0", "1", "2", "3"]                 # flat index i * 3 + j
    flat_n, flat_c = noisy.reshape(-1, 32, 32, 3), clean.reshape(-1, 32, 32, 3)
    for k, row in enumerate(rows):
        assert row["psnr_in"] == pytest.approx(sk_sdap(flat_n[k], flat_c[k])[0], abs=1e-9)
        assert row["psnr"] == pytest.approx(sk_sdap(read_rgb(tmp_path / "out" / f"{k}.png"), flat_c[k])[0],
                                            abs=1e-9)
    # the saved outputs scored again with --denoised give the same numbers
    r = invoke("--dataset", "sidd-val", "--data-dir", d, "--denoised", tmp_path / "out", "--limit", "4",
               "--json", tmp_path / "b.json")
    assert r.exit_code == 0, r.output
    again = json.loads((tmp_path / "b.json").read_text())["images"]
    assert [x["psnr"] for x in again] == pytest.approx([x["psnr"] for x in rows], abs=1e-9)


def test_sidd_val_mat_with_the_default_network_equals_the_folder_evaluation(tmp_path, sidd_mats):
    """Issue 36 item 0: scipy reads the .mat blocks as Fortran-ordered arrays; the default network (the CPU
    student's layout path) scores every block, and each equals the evaluation of the same blocks as files."""
    d, noisy, clean = sidd_mats
    r = invoke("--dataset", "sidd-val", "--data-dir", d, "--device", "cpu", "--json", tmp_path / "m.json")
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "m.json").read_text())["images"]
    assert len(rows) == 6 and all(np.isfinite(row["psnr"]) for row in rows)
    folder = tmp_path / "pairs"
    (folder / "noisy").mkdir(parents=True)
    (folder / "clean").mkdir()
    for k, (n, c) in enumerate(zip(noisy.reshape(-1, 32, 32, 3), clean.reshape(-1, 32, 32, 3))):
        write_png(folder / "noisy" / f"{k}.png", n)
        write_png(folder / "clean" / f"{k}.png", c)
    r = invoke("--noisy", folder / "noisy", "--clean", folder / "clean", "--device", "cpu",
               "--json", tmp_path / "f.json")
    assert r.exit_code == 0, r.output
    by_name = {row["name"].split(".")[0]: row["psnr"] for row in json.loads((tmp_path / "f.json").read_text())["images"]}
    assert [row["psnr"] for row in rows] == pytest.approx([by_name[row["name"]] for row in rows], abs=1e-9)


def test_sidd_val_finds_its_files_in_sdap_data_then_the_current_folder(tmp_path, sidd_mats, monkeypatch):
    """Issue 36 item 3: `sdap evaluate --dataset sidd-val` as written (no --data-dir) looks in $SDAP_DATA,
    then in the current folder, each and its sub-folders; found nowhere, one line names the files, where
    they come from and where it looked (exit 1)."""
    d, _, _ = sidd_mats                                         # tmp_path/SIDD holds the .mat files
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.delenv("SDAP_DATA", raising=False)
    monkeypatch.chdir(empty)
    r = invoke("--dataset", "sidd-val", "-w", tmp_path / "unused")
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    err = [line for line in r.output.splitlines() if line.startswith("error")]
    assert len(err) == 1 and "ValidationNoisyBlocksSrgb.mat" in r.output and "SDAP_DATA" in r.output
    assert "abdokamel.github.io/sidd" in r.output
    for where, env in ((d, None), (tmp_path, None), (empty, str(tmp_path))):    # the folder, its parent, $SDAP_DATA
        monkeypatch.chdir(where)
        if env:
            monkeypatch.setenv("SDAP_DATA", env)
        r = invoke("--dataset", "sidd-val", "--device", "cpu", "--limit", "2", "--json", tmp_path / "j.json")
        assert r.exit_code == 0, (where, r.output)
        assert len(json.loads((tmp_path / "j.json").read_text())["images"]) == 2


def test_sidd_bench_kaggle_submission(tmp_path, weights, sidd_mats):
    d, noisy, _ = sidd_mats
    out_csv = tmp_path / "sub" / "SubmitSrgb.csv"
    r = invoke("--dataset", "sidd-bench", "--data-dir", d, "-w", weights, "--submit", out_csv,
               "--save", tmp_path / "png", "--refine", "none")
    assert r.exit_code == 0, r.output
    lines = out_csv.read_text().splitlines()
    assert lines[0] == "ID,BLOCK" and len(lines) == 1 + 6
    assert [line.split(",")[0] for line in lines[1:]] == [str(i) for i in range(6)]
    blocks = read_sidd_kaggle_csv(out_csv, noisy.shape)
    for k in range(6):                           # block (i, j) is the saved output i * 3 + j
        assert np.array_equal(blocks[k // 3, k % 3], read_rgb(tmp_path / "png" / f"{k}.png"))
    assert not np.array_equal(blocks, noisy)


def test_kaggle_csv_round_trip_and_id_order(tmp_path):
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, (2, 3, 8, 6, 3), dtype=np.uint8)
    assert write_sidd_kaggle_csv(blocks, tmp_path / "s.csv") == 6
    assert np.array_equal(read_sidd_kaggle_csv(tmp_path / "s.csv", blocks.shape), blocks)
    import base64

    row = (tmp_path / "s.csv").read_text().splitlines()[5]           # ID 4 = image 1, block 1
    ident, b64 = row.split(",")
    assert ident == "4" and base64.b64decode(b64) == blocks[1, 1].tobytes()
    with pytest.raises(ValueError):
        write_sidd_kaggle_csv(blocks.astype(np.float32), tmp_path / "t.csv")


def test_missing_dataset_files_say_what_and_where(tmp_path):
    for dataset, name in (("sidd-val", "ValidationNoisyBlocksSrgb.mat"),
                          ("sidd-bench", "BenchmarkNoisyBlocksSrgb.mat")):
        extra = ("--submit", tmp_path / "x.csv") if dataset == "sidd-bench" else ()
        r = invoke("--dataset", dataset, "--data-dir", tmp_path, *extra, "-w", tmp_path / "unused")
        assert r.exit_code == 1, r.output
        assert name in r.output and "SIDD website" in r.output and "Traceback" not in r.output
        assert len([line for line in r.output.splitlines() if line.startswith("error")]) == 1


# ------------------------------------------------------------------------ DND

def test_dnd_bundle_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    blocks = {(i, b): rng.random((10 + b, 12, 3)).astype(np.float32) for i in range(2) for b in range(3)}
    paths = write_dnd_bundle(blocks, tmp_path / "bundled")
    assert [p.name for p in paths] == ["0001.mat", "0002.mat"]
    m = loadmat(paths[1])
    assert m["Idenoised"].shape == (1, 3) and m["Idenoised"].dtype == object
    assert m["Idenoised"][0, 2].dtype == np.float32 and np.array_equal(m["Idenoised"][0, 2], blocks[(1, 2)])
    assert not m["israw"].item() and m["eval_version"].item() == "1.0"
    back = read_dnd_bundle(tmp_path / "bundled")
    assert back.keys() == blocks.keys() and all(np.array_equal(back[k], blocks[k]) for k in blocks)
    with pytest.raises(ValueError):
        write_dnd_bundle({(0, 0): blocks[(0, 0)], (0, 2): blocks[(0, 2)]}, tmp_path / "bad")


def test_dnd_needs_h5py_or_the_folder(tmp_path):
    try:
        import h5py  # noqa: F401
        expected = "info.mat"
    except ImportError:
        expected = "h5py"
    r = invoke("--dataset", "dnd", "--data-dir", tmp_path, "--submit", tmp_path / "bundled")
    assert r.exit_code == 1 and expected in r.output and "Traceback" not in r.output


def test_dnd_run_writes_one_file_per_image(tmp_path, weights, monkeypatch):
    """The DND loop with a stand-in for the HDF5 reader (h5py and the real files are not available here)."""
    from sdap_cli.commands import evaluate as cmd
    from sdap_cli.config import EvalConfig, InferenceConfig

    rng = np.random.default_rng(0)
    blocks = {(i, k): rng.random((16 + 2 * k, 20, 3)).astype(np.float32) for i in range(2) for k in range(3)}

    class FakeDnd:
        n_images = 2

        def blocks_per_image(self, i):
            return 3

        def iter_blocks(self, limit=None):
            for (i, k), b in blocks.items():
                yield i, k, b

    import sdap_cli.evaluation.evalsets as evalsets

    monkeypatch.setattr(evalsets, "load_dnd", lambda root: FakeDnd())
    inf = InferenceConfig(refine="none", device="cpu", precision="fp32")
    cfg = EvalConfig(dataset="dnd", data_dir=tmp_path, weights=weights, inference=inf, submit=tmp_path / "b")
    result = cmd.run(cfg)
    assert [r.name for r in result.rows] == ["0001_01", "0001_02", "0001_03", "0002_01", "0002_02", "0002_03"]
    assert result.submission == str(tmp_path / "b")
    back = read_dnd_bundle(tmp_path / "b")
    from sdap_cli.inference.checkpoints import load_weights
    from sdap_cli.inference.denoiser import make_denoiser

    den = make_denoiser(load_weights(weights).model, refine="none", precision="fp32")
    assert back.keys() == blocks.keys()
    for key, b in blocks.items():
        assert back[key].dtype == np.float32 and back[key].shape == b.shape
        assert np.allclose(back[key], den.denoise(b), atol=1e-6)      # float output, not rounded to 8 bits


def test_evaluate_with_adapt_changes_the_scores(tmp_path):
    from tests.helpers import noisy_rgb, tiny_weights, write_png

    w = tiny_weights(tmp_path / "w.safetensors")
    rng = np.random.default_rng(3)
    for i in range(2):
        clean = noisy_rgb(30, 30, seed=20 + i)
        write_png(tmp_path / "clean" / f"{i}.png", clean)
        write_png(tmp_path / "noisy" / f"{i}.png", np.clip(clean + rng.normal(0, 15, clean.shape), 0, 255).astype(np.uint8))
    base = ["evaluate", "--noisy", str(tmp_path / "noisy"), "--clean", str(tmp_path / "clean"), "-w", str(w), "-q"]
    r1 = CliRunner().invoke(app, base + ["--json", str(tmp_path / "a.json")])
    r2 = CliRunner().invoke(app, base + ["--json", str(tmp_path / "b.json"), "--adapt", "--adapt-iters", "30"])
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output + r2.output
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert [r["psnr"] for r in a["images"]] != [r["psnr"] for r in b["images"]]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["teacher", "student"])
def test_bf16_costs_at_most_0_01_db_against_fp32_on_the_sidd_blocks(tmp_path, model):
    """Issue 8: bf16 inference of the shipped weights loses at most 0.05 dB mean PSNR to fp32 on the 5 SIDD
    validation blocks. (The bound was 0.01 while bf16 rounded the output: that rounding lifted values
    of 128-255 by up to half a level, which these blocks, whose references are brighter than the noisy
    images, scored as a gain of a few hundredths of a dB. Since the output keeps full precision, bf16
    differs from fp32 only by its arithmetic: student -0.035 dB, teacher (trained in bf16) +0.056.)"""
    from tests.conftest import shared_data

    root = shared_data("sidd_val_blocks", "p1y2z3_SDAP")
    psnr = {}
    for precision in ("fp32", "bf16"):
        r = invoke("--data-dir", root, "--model", model, "--device", "cpu", "--precision", precision,
                   "--json", tmp_path / f"{precision}.json", "-q")
        assert r.exit_code == 0, r.output
        js = json.loads((tmp_path / f"{precision}.json").read_text())
        assert js["precision"] == precision and len(js["images"]) == 5
        psnr[precision] = js["summary"]["psnr"]["mean"]
    assert psnr["fp32"] > 25                                  # the network really denoised (input: 22.15 dB)
    assert psnr["bf16"] >= psnr["fp32"] - 0.05, psnr


def test_summary_with_an_identical_image_warns_nothing_and_reports_inf():
    """An output equal to its reference scores PSNR inf; the summary's std must not raise a numpy
    RuntimeWarning (it reached users' terminals) and the JSON carries null for the non-finite values."""
    import warnings

    from sdap_cli.commands.evaluate import EvalResult, Row
    res = EvalResult(rows=[Row("a", psnr=30.0, ssim=0.9), Row("b", psnr=float("inf"), ssim=1.0)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary = res.summary()
        d = res.to_dict()
    assert summary["psnr"]["n"] == 2 and summary["psnr"]["min"] == 30.0
    assert d["summary"]["psnr"]["mean"] is None and d["summary"]["psnr"]["std"] is None
    assert d["summary"]["ssim"]["mean"] == pytest.approx(0.95)


def test_rows_and_summary_name_what_ran(tmp_path):
    """--auto (the shipped networks): every row says which network ran with which options, the JSON and
    the summary line count the paths; a fixed path names its one network."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:64, 0:64]
    clean = np.round((0.5 + 0.3 * np.sin(xx / 30.0) * np.cos(yy / 32.0))[..., None].repeat(3, 2) * 255)
    write_png(tmp_path / "clean" / "a.png", clean.astype(np.uint8))
    write_png(tmp_path / "noisy" / "a.png", np.clip(clean + rng.normal(0, 5, clean.shape), 0, 255).astype(np.uint8))
    r = invoke("--noisy", tmp_path / "noisy", "--clean", tmp_path / "clean", "--json", tmp_path / "r.json",
               "--csv", tmp_path / "r.csv")
    assert r.exit_code == 0, r.output
    d = json.loads((tmp_path / "r.json").read_text())
    row = d["images"][0]
    assert row["path"] == "one-pass" and row["network"]["model"] == "student" and row["network"]["told"]
    assert d["paths"] == {"one-pass": 1} and d["network"] is None and "refine" not in d
    assert "one-pass 1: student sdap_student.safetensors" in " ".join(r.output.split())
    with open(tmp_path / "r.csv") as fh:
        csv_row = next(csv.DictReader(fh))
    assert csv_row["network_model"] == "student" and csv_row["network_pd"] == "1"
    r = invoke("--noisy", tmp_path / "noisy", "--clean", tmp_path / "clean", "--json", tmp_path / "s.json",
               "--model", "student")
    d = json.loads((tmp_path / "s.json").read_text())
    assert d["network"]["model"] == "student" and d["network"]["refine"] == "none" and d["paths"] == {}
