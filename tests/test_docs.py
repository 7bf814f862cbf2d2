"""The documentation stays true: a short README with its set-up commands, relative links that resolve, and a
CLI reference that is exactly what ``scripts/gen_cli_reference.py`` generates from the Typer app now."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
REFERENCE = DOCS / "cli-reference.md"

# The README's two set-up commands, byte for byte (the second is what .ci/run runs: `python -m pytest`).
SETUP_COMMANDS = (
    "python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && pip install . && "
    "sdap denoise samples/ -o samples_denoised/",
    "python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && pip install '.[test]' && "
    "python -m pytest",
)

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _generator():
    spec = importlib.util.spec_from_file_location("gen_cli_reference", REPO / "scripts" / "gen_cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _prose(text: str) -> str:
    """The text outside fenced code blocks and inline code spans (links there are not links)."""
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.S | re.M)
    return re.sub(r"`+[^`\n]*`+", "", text)


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces -> hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    for m in re.finditer(r"^#{1,6}\s+(.*?)\s*#*\s*$", text, flags=re.M):
        slug = _slug(m.group(1))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def _links() -> list[tuple[str, str]]:
    pairs = []
    for doc in [README, *sorted(DOCS.glob("*.md"))]:
        for m in LINK.finditer(_prose(doc.read_text(encoding="utf-8"))):
            target = m.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.I):   # http:, https:, mailto: ...
                continue
            pairs.append((str(doc.relative_to(REPO)), target))
    return pairs


def test_readme_is_short_and_keeps_its_setup_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 150, "README.md is for a newcomer: move reference material into docs/"
    lines = text.splitlines()
    for command in SETUP_COMMANDS:
        assert command in lines, f"set-up command missing or changed: {command}"
    assert "docs/before_after.png" in text
    assert "python -m pytest" in (REPO / ".ci" / "run").read_text(), "CI runs the README's test command"


def test_readme_links_the_reference_docs():
    targets = {t.split("#")[0] for s, t in _links() if s == "README.md"}
    for doc in ("docs/usage.md", "docs/cli-reference.md", "docs/how-it-works.md", "docs/performance.md",
                "weights/README.md", "docs/architecture.md", "docs/development.md", "docs/python-api.md"):
        assert doc in targets, f"README.md does not link {doc}"


@pytest.mark.parametrize("source,target", _links())
def test_relative_link_resolves(source, target):
    path, _, anchor = target.partition("#")
    file = (REPO / source).parent / path if path else REPO / source
    assert file.exists(), f"{source}: link to {target} points to no file"
    if anchor and file.suffix == ".md":
        assert anchor in _anchors(file), f"{source}: link to {target}: no heading with that anchor"


def test_cli_reference_is_generated_from_the_code():
    text = _generator().render()
    assert REFERENCE.read_text(encoding="utf-8") == text, \
        "docs/cli-reference.md is out of date: run python scripts/gen_cli_reference.py"


def test_cli_reference_has_every_option_of_every_command():
    import typer.main

    from sdap_cli.cli import app

    group = typer.main.get_command(app)
    text = REFERENCE.read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## `sdap ([\w-]+)`\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M))
    assert set(sections) == set(group.commands), "one section per command"
    for name, command in group.commands.items():
        for param in command.params:
            if getattr(param, "hidden", False):
                continue
            if param.param_type_name == "argument":
                assert f"`{param.name.upper()}" in sections[name], f"sdap {name}: argument {param.name}"
                continue
            for opt in (*param.opts, *param.secondary_opts):
                assert re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", sections[name]), f"sdap {name} {opt}"
