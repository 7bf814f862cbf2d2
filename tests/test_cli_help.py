"""Every option of every command's --help shows its default, read from config.py."""

import re

import pytest
import typer
from typer.testing import CliRunner

from sdap_cli.cli import app
from sdap_cli.config import DenoiseConfig, InferenceConfig
from sdap_cli.options import shown

runner = CliRunner()


def _flat(text: str) -> str:
    """Help text without the box drawing and with wrapped lines joined."""
    return " ".join(re.sub("[│╭╮╰╯─]", " ", text).split())


@pytest.mark.parametrize("name", ["denoise", "evaluate", "train", "distill", "benchmark", "export"])
def test_every_option_shows_its_default(name):
    cmd = typer.main.get_command(app).commands[name]
    result = runner.invoke(app, [name, "--help"], env={"COLUMNS": "160", "TERMINAL_WIDTH": "160"})
    assert result.exit_code == 0, result.output
    flat = _flat(result.output)
    options = [p for p in cmd.params if p.param_type_name == "option" and p.name != "help"]
    assert len(options) >= 6
    for p in options:
        assert isinstance(p.show_default, str) and p.show_default, f"{p.opts[0]} has no default text"
        assert f"[default: ({p.show_default})]" in flat, f"{p.opts[0]}: default not shown"
    assert flat.count("[default:") == len(options)


def test_defaults_come_from_the_config_models():
    cmd = typer.main.get_command(app).commands["denoise"]
    by_name = {p.name: p.show_default for p in cmd.params}
    assert by_name["quality"] == str(DenoiseConfig.model_fields["quality"].default) == "95"
    assert by_name["pd"] == str(InferenceConfig.model_fields["pd"].default)
    assert by_name["auto"] == "on" and by_name["strip_metadata"] == "off"
    assert shown(InferenceConfig, "tile", "from free memory") == "from free memory"


def test_help_keeps_bracketed_text_and_flags_have_no_type():
    for args in (["--help"], ["export", "--help"]):
        r = runner.invoke(app, args, env={"COLUMNS": "160"})
        assert r.exit_code == 0 and "needs sdap-cli." not in r.output
    r = runner.invoke(app, ["export", "--help"], env={"COLUMNS": "160"})
    assert "pip install onnx onnxruntime" in _flat(r.output)
    r = runner.invoke(app, ["denoise", "--help"], env={"COLUMNS": "160"})
    assert "<bool>" not in r.output and "<str>" in r.output


def test_benchmark_help_shows_the_config_defaults():
    from sdap_cli.config import BenchmarkConfig

    cmd = typer.main.get_command(app).commands["benchmark"]
    by_name = {p.name: p.show_default for p in cmd.params}
    assert by_name["sizes"] == ",".join(BenchmarkConfig().sizes) and by_name["full"] == "off"


def test_version_imports_neither_torch_nor_the_commands():
    """Issue 36 item 4: ``sdap --version`` (the console script's entry) prints sdap's and torch's versions
    without importing torch, and alone it answers before Typer and pydantic are imported."""
    import subprocess
    import sys

    code = ("import sys; sys.argv = ['sdap', '--version']; from sdap_cli.entry import main; main(); "
            "print(sorted(m for m in ('torch', 'typer', 'pydantic', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    from importlib.metadata import version

    from sdap_cli import __version__
    assert out[0] == f"sdap {__version__} (torch {version('torch')})" and out[1] == "[]"
    r = runner.invoke(app, ["--version", "denoise"])                   # through Typer's eager option too
    assert r.exit_code == 0 and r.output.strip() == out[0]


def test_camera_raw_is_a_dependency():
    """Issue 36 item 1: rawpy is installed with sdap (not an extra a newcomer has to know about)."""
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    assert any(d.replace(" ", "").startswith("rawpy") for d in project["dependencies"])
