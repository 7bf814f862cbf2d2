"""Checks of ``benchmarks/told_level.py``: told the truth at factor 1 it tells the student a flat level of S,
different factors give different outputs, and a run prints one row per measure."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sdap_cli.inference.checkpoints import save_weights
from sdap_cli.inference.noise import COND_CH
from sdap_cli.method.student import StudentUNet
from tests.helpers import loaded_script, noisy_rgb, write_png

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "told_level.py"


@pytest.fixture(scope="module")
def told():
    with loaded_script(SCRIPT, "sdap_told_level") as mod:
        yield mod


def test_a_run_prints_each_factor_and_the_factors_change_the_output(told, tmp_path, monkeypatch, capsys):
    torch.manual_seed(0)
    net = StudentUNet(ch=(8, 8, 8), blocks=(1, 1, 1), cond_ch=COND_CH)
    for p in net.parameters():
        p.data.normal_(0, 0.2)
    save_weights(tmp_path / "s.safetensors", net)
    write_png(tmp_path / "clean_photos" / "a.png", noisy_rgb(36, 44, seed=3))
    monkeypatch.setattr(sys, "argv", ["x", "--data", str(tmp_path), "--student", str(tmp_path / "s.safetensors"),
                                      "--stds", "10", "--factors", "0.5,1", "--photos", "a.png", "--threads", "1"])
    told.main()
    out = capsys.readouterr().out
    for k in ("input", "told the reading", "the reading (level)", "told 0.5 x S", "told 1 x S"):
        assert f"| white 10: {k} |" in out
    y = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    low, high = (np.full((16, 16, COND_CH), v, np.float32) for v in (0.1, 0.9))
    loaded = told.load_weights(tmp_path / "s.safetensors").model.eval()
    assert told.run(loaded, y, low).shape == y.shape
    assert not np.allclose(told.run(loaded, y, low), told.run(loaded, y, high))
