import json

from typer.testing import CliRunner

from sdap_cli.cli import app
from tests.helpers import tiny_weights


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
