"""Checks of ``benchmarks/default_cost.py``: one row per file, the first file's ratio 1, KMAC read from the
file, every timed run reported, on ONNX Runtime (graphs built into a private cache) and on torch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sdap_cli.inference.checkpoints import save_weights
from sdap_cli.inference.noise import COND_CH
from sdap_cli.method.student import StudentUNet
from tests.helpers import loaded_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "default_cost.py"


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_each_file_is_timed_as_a_ratio_to_the_first(runtime, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SDAP_CACHE_DIR", str(tmp_path / "cache"))
    files = []
    for ch in ((8, 8, 8), (16, 16, 16)):
        torch.manual_seed(0)
        files.append(str(save_weights(tmp_path / f"s{ch[0]}.safetensors",
                                      StudentUNet(ch=ch, blocks=(1, 1, 1), cond_ch=COND_CH))))
    with loaded_script(SCRIPT, "sdap_default_cost") as mod:
        rows = mod.main(files + ["--size", "96x80", "--runs", "2", "--runtime", runtime, "--threads", "1"])
    out = capsys.readouterr().out
    assert [r["file"] for r in rows] == files and rows[0]["ratio"] == pytest.approx(1.0)
    assert len(rows[0]["runs"]) == 4 and len(rows[1]["runs"]) == 2          # the first file timed again last
    assert all(t > 0 for r in rows for t in r["runs"])
    assert rows[1]["kmac"] > 2 * rows[0]["kmac"]                             # read from each file's network
    assert out.count(f"| {files[1]} |") == 1 and f"({runtime})" in out
