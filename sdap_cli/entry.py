"""The ``sdap`` console script: ``sdap --version`` answers before Typer, pydantic and the commands are
imported (about 0.05 s instead of 0.25 s; torch is never imported for it); everything else is
:func:`sdap_cli.cli.main`."""

from __future__ import annotations

import sys

from . import version_line


def main() -> None:
    """Console-script entry point."""
    if sys.argv[1:] == ["--version"]:
        print(version_line())
        return
    from .cli import main as cli_main

    cli_main()
