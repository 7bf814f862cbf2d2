"""Checks of ``benchmarks/heavy_noise_study.py``: an arm's figures are measured once and kept by label and file
hash, the table has one row per arm with the network's own MAC count, and the plot is a picture with a point
per arm."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sdap_cli.inference.checkpoints import save_weights
from sdap_cli.inference.noise import COND_CH
from sdap_cli.method.student import StudentUNet
from tests.helpers import loaded_script

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "heavy_noise_study.py"


@pytest.fixture(scope="module")
def study():
    with loaded_script(SCRIPT, "sdap_heavy_noise_study") as mod:
        yield mod


def test_arms_are_measured_once_and_tabled_and_plotted(study, tmp_path, monkeypatch, capsys):
    files = {}
    for label, ch in (("small", (8, 8, 8)), ("wide", (16, 16, 16))):
        torch.manual_seed(0)
        files[label] = tmp_path / f"{label}.safetensors"
        save_weights(files[label], StudentUNet(ch=ch, blocks=(1, 1, 1), cond_ch=COND_CH))
    calls = []

    def fake_pairs(den, data, noisy, clean):                  # the measured sets need ../shared/data
        calls.append(noisy)
        return f"{32 + len(calls) / 10:.2f} (0 below input)"

    monkeypatch.setattr(study, "pairs_row", fake_pairs)
    monkeypatch.setattr(study, "dnd_row", lambda den, data: "max 1.00, mean 0.50 (97 crops)")
    results, plot = tmp_path / "r.json", tmp_path / "p.png"
    argv = ["x", "--arm", f"small={files['small']}", "--arm", f"wide={files['wide']}", "--results", str(results),
            "--plot", str(plot), "--no-time"]
    monkeypatch.setattr(sys, "argv", argv)
    study.main()
    assert len(calls) == 2 * len(study.SETS)
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| small") or line.startswith("| wide")]
    assert len(rows) == 2
    small = StudentUNet(ch=(8, 8, 8), blocks=(1, 1, 1), cond_ch=COND_CH).macs_per_pixel() / 1e3
    assert f"| {small:.1f} |" in rows[0]
    kept = json.loads(results.read_text())
    assert len(kept) == 2 and all(r["12 MP s"] is None for r in kept.values())
    study.main()                                              # kept: nothing measured again
    assert len(calls) == 2 * len(study.SETS)
    im = np.asarray(Image.open(plot).convert("RGB"))
    blue = (np.abs(im.astype(int) - [0x1f, 0x77, 0xb4]).sum(-1) < 30).sum()
    assert im.shape[1] > 500 and blue > 2 * 30                 # two filled points at least
