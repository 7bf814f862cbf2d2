import os

import pytest

from sdap_cli.io.atomic import atomic_write


def test_write_keeps_mode_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"old")
    os.chmod(p, 0o640)
    atomic_write(p, lambda fh: fh.write(b"new"))
    assert p.read_bytes() == b"new" and (os.stat(p).st_mode & 0o777) == 0o640
    atomic_write(tmp_path / "t.csv", lambda fh: fh.write("a,b\n"), text=True)
    assert (tmp_path / "t.csv").read_text() == "a,b\n"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["f.bin", "t.csv"]


def test_failed_write_keeps_the_old_file(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"old")

    def boom(fh):
        fh.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(p, boom)
    assert p.read_bytes() == b"old" and [x.name for x in tmp_path.iterdir()] == ["f.bin"]
