"""Write the bash, zsh and fish completion scripts of `sdap` into this folder.

Run: python completions/generate.py   (tests/test_completions.py checks the files are current)

The scripts are Typer's: they ask `sdap` itself for candidates (_SDAP_COMPLETE=complete_<shell>), so
new options complete without regenerating; `sdap --install-completion` installs the same script.
"""

from __future__ import annotations

from pathlib import Path

from typer._completion_shared import get_completion_script

FILES = {"bash": "sdap.bash", "zsh": "_sdap", "fish": "sdap.fish"}


def script(shell: str) -> str:
    return get_completion_script(prog_name="sdap", complete_var="_SDAP_COMPLETE", shell=shell) + "\n"


def main() -> None:
    here = Path(__file__).resolve().parent
    for shell, name in FILES.items():
        (here / name).write_text(script(shell))
        print(here / name)


if __name__ == "__main__":
    main()
