"""Checks of ``benchmarks/light_path.py``: its noise has the stated std and correlation, and a run on
a tiny folder prints one row per set with the light-path counts."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import loaded_script, write_png

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "light_path.py"


@pytest.fixture(scope="module")
def lp():
    with loaded_script(SCRIPT, "sdap_light_path_benchmark") as mod:
        yield mod


@pytest.mark.parametrize("kind, rho1", [("white", 0.0), ("box3", 2 / 3)])
def test_noise_has_the_stated_std_and_correlation(lp, kind, rho1):
    x = np.full((256, 256, 3), 0.5, np.float32)
    n = (lp.add_noise(x, kind, 6.0, np.random.default_rng(1)) - x) * 255
    assert n.std() == pytest.approx(6.0, rel=0.05)
    corr = np.mean(n[:, 1:] * n[:, :-1]) / n.var()
    assert corr == pytest.approx(rho1, abs=0.05)
    assert np.allclose(n, np.round(n + 127.5) - 127.5, atol=1e-3)        # whole 8-bit levels


def test_run_on_a_tiny_folder_prints_every_set(lp, tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    folder = tmp_path / "sidd_val_blocks" / "p1y2z3_SDAP" / "SIDD_clean"
    yy, xx = np.mgrid[0:64, 0:64] / 64.0
    img = np.stack([0.2 + 0.6 * xx, 0.3 + 0.4 * yy, 0.5 + 0.2 * np.sin(9 * xx)], -1)
    write_png(folder / "a.png", (np.clip(img + rng.normal(0, 0.002, img.shape), 0, 1) * 255).round().astype(np.uint8))
    monkeypatch.setattr(sys, "argv", ["light_path.py", "--data", str(tmp_path), "--betas", "1,1.5", "--threads", "1"])
    lp.main()
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| set")]
    assert [r.split(" | ")[0][2:] for r in rows] == [f"{k} {s}" for k, s in lp.NOISES] + ["CC15 real", "clean, against itself"]
    assert "teacher PD-1, beta 1.0" in out and "student" in out and "ms per MP" in out
    assert rows[-2].split(" | ")[1:3] == ["0 / 0", "-"]          # no CC15 pairs in this folder
    assert "identical" not in rows[-2]
