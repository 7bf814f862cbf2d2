"""completions/ must hold the scripts the current CLI generates (regenerate: python completions/generate.py)."""

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("gen", REPO / "completions" / "generate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completions_are_current(shell):
    gen = _generator()
    expected = gen.script(shell)
    path = REPO / "completions" / gen.FILES[shell]
    assert path.read_text() == expected, f"{path} is stale: run python completions/generate.py"
    assert "sdap" in expected


@pytest.mark.parametrize("words,expected", [("sdap denoise --model ", {"auto", "teacher", "student"}),
                                            ("sdap denoise -f j", {"jpeg"}),
                                            ("sdap evaluate --dataset s", {"sidd-val", "sidd-bench"}),
                                            ("sdap export m.pt --model ", {"student", "teacher"})])
@pytest.mark.slow
def test_option_values_complete(words, expected):
    import os
    import subprocess
    import sys

    env = dict(os.environ, _SDAP_COMPLETE="complete_bash", COMP_WORDS=words,
               COMP_CWORD=str(len(words.split(" ")) - 1))
    p = subprocess.run([sys.executable, "-c", "from sdap_cli.cli import app; app(prog_name='sdap')"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert set(p.stdout.split()) == expected, p.stdout + p.stderr
