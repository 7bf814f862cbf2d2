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
