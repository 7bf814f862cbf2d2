"""The static design bounds of the package (scripts/check_design_bounds.py) hold: no file over 400
lines, no function body over 60, no private names imported across modules, no command importing a
command, one atomic-rename site, no network-class dispatch outside the network and checkpoint modules."""

import subprocess
import sys

from tests.conftest import REPO


def test_design_bounds_hold():
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "check_design_bounds.py"), str(REPO / "sdap_cli")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "atomic_renames: 1 (limit 1)" in r.stdout and "network_dispatch: 0" in r.stdout


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
