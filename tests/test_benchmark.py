import json

import pytest
from typer.testing import CliRunner

from sdap_cli.cli import app
from tests.helpers import tiny_weights


@pytest.mark.slow
def test_benchmark_reports_rows_and_json(tmp_path):
    w = tiny_weights(tmp_path / "w.safetensors")
    out = tmp_path / "b.json"
    r = CliRunner().invoke(app, ["benchmark", "--sizes", "16,24", "--refine", "none,e", "--precision", "fp32",
                                 "--runs", "1", "--warmup", "0", "-w", str(w), "--device", "cpu",
                                 "--json", str(out)])
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert len(data["rows"]) == 4
    assert data["env"]["networks"]["weights"]["macs_per_pixel_per_pass"] > 0 and data["env"]["torch"]
    for row in data["rows"]:
        assert row["error"] is None and row["ms"] > 0 and row["mpix_per_s"] > 0 and row["peak_mib"] > 0
    e = [x for x in data["rows"] if x["refine"] == "e" and x["size"] == "24"][0]
    n = [x for x in data["rows"] if x["refine"] == "none" and x["size"] == "24"][0]
    # analytic MACs per second count two passes for E
    assert abs(e["gmac_per_s"] * e["ms"] / (n["gmac_per_s"] * n["ms"]) - 2.0) < 1e-6
    assert "MP/s" in r.output


def test_benchmark_rejects_bad_sizes():
    r = CliRunner().invoke(app, ["benchmark", "--sizes", "huge"])
    assert r.exit_code == 2 and "size" in r.output


def test_plain_benchmark_is_a_quick_look_and_full_is_the_grid():
    from sdap_cli.commands import benchmark as cmd
    from sdap_cli.config import BenchmarkConfig
    from sdap_cli.config_sources import resolve

    quick = cmd.plan(resolve(BenchmarkConfig, {"device": "cpu"}))
    assert [r.model for r in quick.rows] == ["student"] * 3 and quick.seconds < 120
    assert {r.refine for r in quick.rows} == {"none"}          # a one-pass network has no refinement
    full = cmd.plan(resolve(BenchmarkConfig, {"device": "cpu", "full": True}))
    assert len(full.rows) == 24 and full.seconds > 10 * quick.seconds
    assert {(r.model, r.refine) for r in full.rows} >= {("default", "e"), ("default", "none"), ("student", "none")}
    only = cmd.plan(resolve(BenchmarkConfig, {"device": "cpu", "full": True, "sizes": ["256"]}))
    assert {r.size for r in only.rows} == {"256"} and len(only.rows) == 6


def test_benchmark_prints_its_plan_and_on_ctrl_c_the_finished_rows(tmp_path, monkeypatch):
    from sdap_cli.commands import benchmark as cmd

    w = tiny_weights(tmp_path / "w.safetensors")
    real = cmd._child
    calls = []

    def child(args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(args)

    class Pool:                             # in-process, so the patched child runs
        def __init__(self, n): ...
        def __enter__(self): return self
        def __exit__(self, *a): return False
        def apply(self, fn, args): return child(*args)

    monkeypatch.setattr(cmd.mp, "get_context", lambda kind: type("Ctx", (), {"Pool": Pool})())
    r = CliRunner().invoke(app, ["benchmark", "--sizes", "16,24", "--refine", "none", "--precision", "fp32",
                                 "--runs", "1", "--warmup", "0", "-w", str(w), "--device", "cpu", "--no-roofline"])
    assert r.exit_code == 130
    assert "timing 2 setting(s)" in r.output and "interrupted after 1 of 2" in r.output
    assert "16x16" in r.output and "24x24" not in r.output     # the finished row's table


def test_roofline_is_the_best_rate_of_its_shapes():
    import torch

    from sdap_cli.inference.roofline import roofline

    best, rates = roofline(torch.device("cpu"), ["fp32", "bf16"], runs=1, shapes=((8, 32), (16, 48)))
    assert len(rates) == 4 and all(r.gmac_per_s > 0 for r in rates)
    for prec in ("fp32", "bf16"):
        assert best[prec].gmac_per_s == max(r.gmac_per_s for r in rates if r.precision == prec)


def test_each_row_is_a_fraction_of_the_roofline_measured_first(tmp_path, monkeypatch):
    from sdap_cli.commands import benchmark as cmd

    w = tiny_weights(tmp_path / "w.safetensors")
    order = []

    class Pool:                             # in-process; records what ran in which order
        def __init__(self, n): ...
        def __enter__(self): return self
        def __exit__(self, *a): return False
        def apply(self, fn, args):
            order.append(fn.__name__)
            return fn(*args)

    def fake_roofline(device, precisions):
        from sdap_cli.inference.roofline import ConvRate
        return {p: ConvRate(p, 16, 32, 50.0) for p in precisions}, []

    monkeypatch.setattr(cmd.mp, "get_context", lambda kind: type("Ctx", (), {"Pool": Pool})())
    monkeypatch.setattr(cmd, "roofline", fake_roofline)
    out = tmp_path / "b.json"
    r = CliRunner().invoke(app, ["benchmark", "--sizes", "16", "--refine", "none", "--precision", "fp32",
                                 "--runs", "1", "--warmup", "0", "-w", str(w), "--device", "cpu", "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert order == ["_roofline", "_child"]
    data = json.loads(out.read_text())
    row = data["rows"][0]
    assert data["env"]["roofline"]["fp32"]["gmac_per_s"] == 50.0
    assert row["roof"] == pytest.approx(row["gmac_per_s"] / 50.0)
    assert "roofline fp32" in r.output and "roof" in r.output
