"""The static design bounds of the package (scripts/check_design_bounds.py) hold: no file over 400
lines, no function body over 60, no private names imported across modules, no command importing a
command, one atomic-rename site, no network-class dispatch outside the network and checkpoint modules,
no folder of more than 12 modules, no import loop, no import against the layers."""

import subprocess
import sys

from tests.conftest import REPO


def test_design_bounds_hold():
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "check_design_bounds.py"), str(REPO / "sdap_cli")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "atomic_renames: 1 (limit 1)" in r.stdout and "network_dispatch: 0" in r.stdout
    for line in ("crowded_folders: 0", "import_loops: 0", "layer_violations: 0"):
        assert line in r.stdout


def test_checker_catches_a_violation(tmp_path):
    pkg = tmp_path / "sdap_cli"
    (pkg / "commands").mkdir(parents=True)
    (pkg / "commands" / "a.py").write_text("from .b import _helper\nimport os\nos.replace('x', 'y')\n"
                                           "os.rename('y', 'z')\n")
    (pkg / "commands" / "b.py").write_text("def _helper():\n" + "    x = 1\n" * 61 + "\n"
                                           "isinstance(x, DBSNl)\ntype(x) is StudentUNet\n")
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "check_design_bounds.py"), str(pkg)],
                       capture_output=True, text=True)
    assert r.returncode == 1
    for line in ("long_functions: 1", "private_imports: 1", "command_imports: 1", "atomic_renames: 2",
                 "network_dispatch: 2"):
        assert line in r.stdout, r.stdout


def test_checker_catches_crowding_loops_and_imports_up_the_layers(tmp_path):
    pkg = tmp_path / "sdap_cli"
    (pkg / "io").mkdir(parents=True)
    (pkg / "inference").mkdir()
    for i in range(13):
        (pkg / "io" / f"m{i}.py").write_text("")
    (pkg / "io" / "a.py").write_text("from .b import x\n")                  # a loop inside a wing
    (pkg / "io" / "b.py").write_text("def f():\n    from .a import y\n")
    (pkg / "io" / "c.py").write_text("from ..inference import d\n")         # io is below inference
    (pkg / "inference" / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                            "    from ..io import c\n")      # a type hint only: no arrow
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "check_design_bounds.py"), str(pkg)],
                       capture_output=True, text=True)
    assert r.returncode == 1
    for line in ("crowded_folders: 1", "import_loops: 1", "layer_violations: 1", "sdap_cli.io.c -> sdap_cli.inference.d"):
        assert line in r.stdout, r.stdout


def test_the_api_sits_below_the_commands_and_the_package_reexports_it_lazily(tmp_path):
    """``api`` is a layer under ``commands``; the package's ``__getattr__`` (its lazy re-export of the API)
    is the facade, not an import up the layers."""
    pkg = tmp_path / "sdap_cli"
    (pkg / "api").mkdir(parents=True)
    (pkg / "commands").mkdir()
    (pkg / "__init__.py").write_text("def __getattr__(name):\n    from . import api\n    return getattr(api, name)\n")
    (pkg / "api" / "__init__.py").write_text("from ..commands import x\n")
    (pkg / "commands" / "x.py").write_text("")
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "check_design_bounds.py"), str(pkg)],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "layer_violations: 1" in r.stdout and "sdap_cli.api.__init__ -> sdap_cli.commands.x" in r.stdout, r.stdout
