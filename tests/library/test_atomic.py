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


def test_read_write_overlap_keeps_order_and_each_items_errors():
    import threading

    from sdap_cli.io.overlap import ReadWriteOverlap

    threads, written = set(), []

    def read(i):
        threads.add(threading.current_thread().name)
        if i == 1:
            raise ValueError("unreadable")
        return i * 10

    def write(i, x):
        threads.add(threading.current_thread().name)
        if i == 2:
            raise OSError("disk full")
        written.append((i, x))

    io = ReadWriteOverlap(read, write)
    results = []
    io.read_ahead(0)
    for i in range(4):
        failed = None
        try:
            item, _ = io.take(i)
        except ValueError as e:
            failed = str(e)
        io.read_ahead(i + 1)
        w = io.written()                         # the last write first: results stay in order
        if w is not None:
            results.append((w[0], repr(w[2]) if w[2] else "ok"))
        if failed:
            results.append((i, failed))
        else:
            io.write(i, item + 1)
    w = io.written()
    results.append((w[0], "ok" if w[2] is None else repr(w[2])))
    io.close()
    assert results == [(0, "ok"), (1, "unreadable"), (2, "OSError('disk full')"), (3, "ok")]
    assert written == [(0, 1), (3, 31)]
    assert {t.split("_")[0] for t in threads} == {"sdap-read", "sdap-write"}


def test_freed_memory_is_reused_on_linux():
    import sys

    from sdap_cli.inference.memory import reuse_freed_memory

    ok = reuse_freed_memory()
    assert isinstance(ok, bool)
    if sys.platform.startswith("linux"):
        import platform
        assert ok or platform.libc_ver()[0] != "glibc"
