import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from sdap_cli.cli import app
from sdap_cli.config_sources import resolve
from sdap_cli.inference.checkpoints import load_weights
from sdap_cli.training.trainer import train
from sdap_cli.training_config import TrainConfig
from tests.helpers import noisy_rgb, write_png

REPO = Path(__file__).resolve().parents[1]
TINY = {"model": {"base_ch": 8, "num_module": 1}, "batch": 2, "patch": 20, "workers": 0, "precision": "fp32",
        "device": "cpu"}


@pytest.fixture
def data(tmp_path):
    for i in range(3):
        write_png(tmp_path / "data" / "scene" / f"NOISY_SRGB_{i}.PNG", noisy_rgb(30 + 7 * i, 41, seed=i))
        write_png(tmp_path / "data" / "scene" / f"GT_SRGB_{i}.PNG", noisy_rgb(30 + 7 * i, 41, seed=i))
    write_png(tmp_path / "data" / "small.png", noisy_rgb(12, 9, seed=9))            # smaller than the patch
    return tmp_path / "data"


@pytest.fixture
def val(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(2):
        clean = noisy_rgb(32, 32, seed=10 + i)
        noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
        write_png(tmp_path / "val" / "noisy" / f"{i}.png", noisy)
        write_png(tmp_path / "val" / "clean" / f"{i}.png", clean)
    return tmp_path / "val"


def test_config_precedence(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"data": ["x"], "preset": "stage1", "batch": 4, "lr": 3e-4}))
    cfg = resolve(TrainConfig, {"lr": 5e-4, "model": {"base_ch": 16, "num_module": None}}, f)
    assert cfg.batch == 4                 # file beats preset
    assert cfg.lr == 5e-4                 # flag beats file
    assert cfg.patch == 160               # from the preset
    assert cfg.model.base_ch == 16 and cfg.model.num_module == 9


def test_config_errors_say_what_to_change():
    with pytest.raises(ValidationError, match="multiple of the RSG cell size"):
        TrainConfig(data=["x"], patch=162)
    with pytest.raises(ValidationError, match="--init"):
        resolve(TrainConfig, {"data": ["x"], "preset": "stage2"})
    with pytest.raises(ValidationError, match="extra"):
        TrainConfig(data=["x"], learning_rate=1)


def test_ground_truth_files_are_ignored(data):
    from sdap_cli.io.folders import find_noisy_images

    names = [p.name for p in find_noisy_images(data)]
    assert "GT_SRGB_0.PNG" not in names and "NOISY_SRGB_0.PNG" in names and "small.png" in names


def test_crops_are_deterministic_and_sized(data):
    from sdap_cli.io.folders import find_noisy_images
    from sdap_cli.training.datasets import NoisyCrops

    ds = NoisyCrops(find_noisy_images(data), patch=20, batch=2, seed=3)
    a, b = ds[5], ds[5]
    assert a.shape == (3, 20, 20) and torch.equal(a, b)
    assert not torch.equal(ds[5], ds[6])
    assert 0 <= a.min() and a.max() <= 1


def test_training_improves_validation_and_output_loads(tmp_path, data, val):
    cfg = TrainConfig(data=[str(data)], out=str(tmp_path / "run"), val=str(val), iterations=60, val_every=20,
                      lr=1e-3, checkpoint_every=30, **TINY)
    res = train(cfg)
    psnrs = [h["psnr"] for h in res.history]
    assert len(psnrs) == 3
    assert max(psnrs[1:]) > psnrs[0]
    w = load_weights(res.best_path)
    assert w.model.arch["base_ch"] == 8 and w.metadata["training"]["iterations"] in (20, 40, 60)
    for name in ("config.yaml", "train_log.csv", "state.pt", "last.safetensors", "step_0000030.safetensors"):
        assert (tmp_path / "run" / name).is_file(), name
    rows = (tmp_path / "run" / "train_log.csv").read_text().splitlines()
    assert rows[0].startswith("step,loss") and len(rows) >= 4


def _weights(path):
    return torch.load(path, weights_only=False)["model"]


@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted(tmp_path, data):
    common = ["--data", str(data), "--iterations", "8", "--batch", "2", "--patch", "20", "--base-ch", "8",
              "--num-module", "1", "--workers", "0", "--precision", "fp32", "--device", "cpu",
              "--checkpoint-every", "1", "--seed", "4", "--threads", "1", "-q"]
    # one thread in all three runs: results are bitwise equal only for one reduction order, and the
    # process's thread count is whatever earlier tests left
    ref = TrainConfig(data=[str(data)], out=str(tmp_path / "ref"), iterations=8, seed=4, checkpoint_every=1,
                      threads=1, **TINY)
    train(ref)
    run = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "sdap_cli", "train", *common, "--out", str(run)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        st = run / "state.pt"
        if st.is_file():
            try:
                if torch.load(st, weights_only=False)["step"] >= 3:
                    break
            except Exception:                       # noqa: BLE001 - file being replaced
                pass
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(run / "state.pt", weights_only=False)["step"]
    r = CliRunner().invoke(app, ["train", *common, "--out", str(run), "--resume"])
    assert r.exit_code == 0, r.output
    a, b = _weights(tmp_path / "ref" / "state.pt"), _weights(run / "state.pt")
    assert torch.load(run / "state.pt", weights_only=False)["step"] == 8
    for k in a:
        assert torch.equal(a[k], b[k]), (k, killed_at)


def test_resume_without_state_is_a_clear_error(tmp_path, data):
    r = CliRunner().invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "none"), "--resume",
                                 "--base-ch", "8", "--num-module", "1", "--patch", "20"])
    assert r.exit_code == 1 and "nothing to resume" in r.output


def test_bad_data_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(app, ["train", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "r")])
    assert r.exit_code == 1 and "no noisy training images" in r.output and "Traceback" not in r.output


@pytest.mark.slow
def test_ddp_two_processes_gloo(tmp_path, data):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    import socket

    with socket.socket() as sock:                       # a free port, so parallel or repeated runs don't clash
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={port}",
           "-m", "sdap_cli", "train", "--data", str(data), "--out", str(tmp_path / "ddp"), "--iterations", "4",
           "--batch", "2", "--patch", "20", "--base-ch", "8", "--num-module", "1", "--workers", "0",
           "--precision", "fp32", "--device", "cpu", "--checkpoint-every", "2", "-q"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    st = torch.load(tmp_path / "ddp" / "state.pt", weights_only=False)
    assert st["step"] == 4
    w = load_weights(tmp_path / "ddp" / "last.safetensors")
    assert w.metadata["training"]["batch"] == 4            # 2 processes x batch 2


@pytest.mark.slow
def test_sigterm_saves_state_for_resume(tmp_path, data):
    run = tmp_path / "term"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "sdap_cli", "train", "--data", str(data), "--out", str(run),
                             "--iterations", "100000", "--batch", "2", "--patch", "20", "--base-ch", "8",
                             "--num-module", "1", "--workers", "0", "--device", "cpu", "--checkpoint-every",
                             "100000", "-q"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "train_log.csv").is_file():
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    st = torch.load(run / "state.pt", weights_only=False)
    assert 0 < st["step"] < 100000
    last = load_weights(run / "last.safetensors")             # usable weights of the step it stopped at
    assert last.metadata["training"]["iterations"] == st["step"]


def test_validation_from_sidd_mat_files(tmp_path):
    from scipy.io import savemat

    from sdap_cli.evaluation.evalsets import load_pairs

    rng = np.random.default_rng(0)
    clean = rng.integers(0, 256, (2, 3, 16, 16, 3), dtype=np.uint8)
    noisy = np.clip(clean.astype(int) + rng.integers(-9, 10, clean.shape), 0, 255).astype(np.uint8)
    savemat(tmp_path / "ValidationNoisyBlocksSrgb.mat", {"ValidationNoisyBlocksSrgb": noisy})
    savemat(tmp_path / "ValidationGtBlocksSrgb.mat", {"ValidationGtBlocksSrgb": clean})
    val = load_pairs(tmp_path)
    assert val.names == [str(i) for i in range(6)]
    assert np.array_equal(np.rint(val.clean[4] * 255).astype(np.uint8), clean[1, 1])
    assert np.array_equal(np.rint(val.noisy[2] * 255).astype(np.uint8), noisy[0, 2])


def test_train_with_a_weight_average_saves_and_validates_the_average(tmp_path, data, val):
    cfg = TrainConfig(data=[str(data)], out=str(tmp_path / "run"), iterations=4, val=str(val), val_every=2,
                      checkpoint_every=2, lr=1e-3, ema=0.5, **TINY)
    result = train(cfg)
    st = torch.load(tmp_path / "run" / "state.pt", weights_only=False)
    assert any(not torch.equal(st["average"][k], st["model"][k]) for k in st["model"])
    saved = load_weights(result.last_path)
    assert saved.metadata["training"]["ema"] == 0.5
    for k, v in saved.model.state_dict().items():                           # last = the average, in 16 bits
        if not k.endswith(".mask"):
            torch.testing.assert_close(v.float(), st["average"][k].float(), atol=3e-3, rtol=3e-3)
    assert [h["step"] for h in result.history] == [2, 4]
