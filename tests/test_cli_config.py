"""The configuration each subcommand hands to its ``commands.<name>.run`` (run patched), as
fastapi-cli's tests assert ``mock_run.call_args``: flags given override defaults, flags not given keep
them, and the fields set (which drive ``--model auto``) are exactly the flags given."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sdap_cli.cli import app
from sdap_cli.config import BenchmarkConfig, DenoiseConfig, EvalConfig, InferenceConfig
from sdap_cli.config_sources import resolve
from sdap_cli.training_config import DistillConfig, TrainConfig

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def captured(monkeypatch):
    """Patch every command's run; returns {command: (cfg, kwargs)} filled by the CLI."""
    from sdap_cli.commands import benchmark, denoise, distill, evaluate, train
    from sdap_cli.commands.benchmark import BenchmarkResult
    from sdap_cli.commands.denoise import DenoiseResult
    from sdap_cli.commands.evaluate import EvalResult
    from sdap_cli.training.loop import TrainResult

    seen: dict = {}

    def fake(name, result):
        def run(cfg, **kwargs):
            seen[name] = (cfg, kwargs)
            return result
        return run

    env = {"cpu": "x", "cores": 1, "threads": 1, "gpu": None, "torch": "t", "device": "cpu", "networks": {}}
    monkeypatch.setattr(denoise, "run", fake("denoise", DenoiseResult()))
    monkeypatch.setattr(train, "run", fake("train", TrainResult(Path("runs/x"), 0, 0.0)))
    monkeypatch.setattr(distill, "run", fake("distill", TrainResult(Path("runs/x"), 0, 0.0)))
    monkeypatch.setattr(evaluate, "run", fake("evaluate", EvalResult()))
    monkeypatch.setattr(benchmark, "run", fake("benchmark", BenchmarkResult(env=env)))
    return seen


def test_denoise_config(captured):
    r = invoke("denoise", "a.png", "b/", "-o", "out", "--refine", "none", "--tile-overlap", "8", "--pd", "1",
               "-r", "--shard", "2/3", "--strength", "0.5", "--compile", "-q")
    assert r.exit_code == 0, r.output
    cfg, kwargs = captured["denoise"]
    want = DenoiseConfig(inputs=["a.png", "b/"], output="out", recursive=True, shard="2/3",
                         inference=InferenceConfig(refine="none", tile_overlap=8, pd=1, strength=0.5, compile=True))
    assert cfg.model_dump() == want.model_dump()
    assert cfg.inference.model_fields_set == {"refine", "tile_overlap", "pd", "strength", "compile"}
    assert set(kwargs) == {"progress"}


def test_denoise_defaults_set_no_inference_field(captured):
    r = invoke("denoise", "a.png")
    assert r.exit_code == 0, r.output
    cfg, _ = captured["denoise"]
    assert cfg.model_dump() == DenoiseConfig(inputs=["a.png"]).model_dump()
    assert cfg.inference.model_fields_set == set()          # so --model auto may pick the student


def test_train_config_precedence(captured, tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"preset": "stage1", "batch": 4, "lr": 3e-4, "model": {"num_module": 2}}))
    r = invoke("train", "-d", "x", "-d", "y", "--config", f, "--lr", "5e-4", "--base-ch", "16", "--resume",
               "-q", "--no-compile")
    assert r.exit_code == 0, r.output
    cfg, kwargs = captured["train"]
    want = TrainConfig(data=["x", "y"], preset="stage1", patch=160, batch=4, lr=5e-4, compile=False,
                       model={"base_ch": 16, "num_module": 2})
    assert cfg.model_dump() == want.model_dump()
    assert kwargs["resume"] is True


def test_distill_config(captured):
    r = invoke("distill", "-d", "x", "--teacher-refine", "none", "--student-ch", "8,16,32", "-n", "5",
               "--patch", "64", "-q")
    assert r.exit_code == 0, r.output
    cfg, kwargs = captured["distill"]
    want = DistillConfig(data=["x"], teacher_refine="none", iterations=5, patch=64,
                         student={"ch": (8, 16, 32)})
    assert cfg.model_dump() == want.model_dump()
    assert kwargs["resume"] is False


def test_distill_targets_and_recharge_flags(captured):
    r = invoke("distill", "-d", "x", "--targets", "teacher,phase1,auto", "--recharge", "0.25", "-q")
    assert r.exit_code == 0, r.output
    cfg, _ = captured["distill"]
    assert cfg.targets == ["teacher", "phase1", "auto"] and cfg.recharge == 0.25
    r = invoke("distill", "-d", "x", "--targets", "teacher,bogus", "-q")
    assert r.exit_code == 2 and "targets" in r.output


def test_evaluate_config(captured, tmp_path):
    r = invoke("evaluate", "--noisy", "n", "--clean", "c", "--metric-convention", "y", "--json", tmp_path / "r.json",
               "--refine", "e", "--limit", "3", "-q")
    assert r.exit_code == 0, r.output
    cfg, _ = captured["evaluate"]
    want = EvalConfig(noisy=Path("n"), clean=Path("c"), metric_convention="y", json=tmp_path / "r.json", limit=3,
                      inference=InferenceConfig(refine="e"))
    assert cfg.model_dump() == want.model_dump()
    assert cfg.inference.model_fields_set == {"refine"}


def test_benchmark_config(captured):
    r = invoke("benchmark", "--sizes", "256,12mp", "--refine", "none", "--channels-last", "on,off",
               "--model", "default,student", "--runs", "1")
    assert r.exit_code == 0, r.output
    cfg, _ = captured["benchmark"]
    want = BenchmarkConfig(sizes=["256", "12mp"], refine=["none"], channels_last=[True, False],
                           model=["default", "student"], runs=1)
    assert cfg.model_dump() == want.model_dump()


@pytest.mark.parametrize("args, flag", [
    (("denoise", "a.png", "--tile-overlap", "3", "--pd", "2"), "--config: tile_overlap 3"),
    (("evaluate", "--noisy", "n", "--clean", "c", "--metric-convention", "q"), "--metric-convention:"),
    (("train", "-d", "x", "--val-every", "0"), "--val-every:"),
    (("benchmark", "--sizes", "3"), "--sizes:"),
])
def test_bad_values_name_their_flag(captured, args, flag):
    r = invoke(*args)
    assert r.exit_code == 2 and flag in r.output and "Traceback" not in r.output, r.output


def test_resolve_drops_flags_not_given():
    cfg = resolve(DenoiseConfig, {"inputs": ["a"], "output": None, "inference": {"tile": None, "pd": 1}})
    assert cfg.output is None and cfg.inference.model_fields_set == {"pd"}
