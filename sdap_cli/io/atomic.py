"""Atomic file writes: the one place that renames a temporary file onto its destination.

Images, weights, training state, cached teacher outputs and benchmark submissions are all written
here, so a reader never sees half a file and a failed write leaves an existing file as it was.

A process killed mid-write (SIGKILL, a power cut) cannot remove its temporary file. Each temporary file
is therefore named ``.<name>.sdap-<host>-<pid>-<random>.tmp``: :func:`remove_stale_temporaries` removes,
from a folder, exactly those of this naming whose process, on this host, no longer runs, and nothing else
(a file of another host, of a running process or of any other name is left alone).
"""

from __future__ import annotations

import os
import re
import socket
import stat
import tempfile
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import IO

from ..errors import OutputError

__all__ = ["atomic_write", "make_parent", "temporary_prefix", "stale_temporaries", "remove_stale_temporaries"]

_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.sdap-(?P<host>[A-Za-z0-9]+)-(?P<pid>[0-9]+)-[A-Za-z0-9_]+\.tmp$")


def temporary_prefix(name: str) -> str:
    """The start of the name of this process's temporary files for output ``name``.

        >>> temporary_prefix("b2.png").startswith(".b2.png.sdap-"), temporary_prefix("b2.png").endswith(f"-{os.getpid()}-")
        (True, True)
    """
    return f".{name}.sdap-{_HOST}-{os.getpid()}-"


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):               # another user's process, or no way to tell: keep
        return True
    return True


def stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Temporary files in ``folder`` that an ``atomic_write`` of this host left when its process died
    (sorted); files of running processes, of other hosts and of any other name are not listed."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    out = []
    for e in entries:
        m = _TEMPORARY.match(e.name)
        if m and m["host"] == _HOST and e.is_file(follow_symlinks=False) and not _running(int(m["pid"])):
            out.append(Path(e.path))
    return sorted(out)


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove :func:`stale_temporaries` of ``folder``; returns those removed (one that cannot be removed
    is left and not listed)."""
    removed = []
    for p in stale_temporaries(folder):
        with suppress(OSError):
            p.unlink()
            removed.append(p)
    return removed


def atomic_write(path: str | os.PathLike, write: Callable[[IO], None], *, text: bool = False,
                 finish: Callable[[str], None] | None = None) -> Path:
    """Call ``write(fh)`` on a temporary file beside ``path``, then rename it onto ``path``.

    The temporary file is flushed and fsynced, gets the mode of the file it replaces (else the usual
    ``0o666 & ~umask``), and is renamed with ``os.replace``; the folder is then fsynced (POSIX) so the
    rename is durable. On any failure the temporary file is removed and an existing ``path`` is left
    as it was. Parent folders are not created.

    Args:
        path: destination file.
        write: writes the content to the open file object.
        text: open the temporary file in text mode (``newline=''``) instead of binary.
        finish: called with the temporary file's path once it is written and closed (a tool that edits
            files in place, such as exiv2), before the fsync and the rename.

    Raises:
        OSError: from writing or renaming (callers turn it into their one-line error).
    """
    p = Path(path)
    tmp = None
    try:
        with tempfile.NamedTemporaryFile("w" if text else "wb", dir=p.parent, delete=False,
                                         prefix=temporary_prefix(p.name), suffix=".tmp",
                                         **({"newline": ""} if text else {})) as fh:
            tmp = fh.name
            write(fh)
            fh.flush()
            if finish is None:
                os.fsync(fh.fileno())
        if finish is not None:
            finish(tmp)
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        try:
            mode = stat.S_IMODE(os.stat(p).st_mode)  # keep the mode of the file replaced
        except OSError:
            mask = os.umask(0)
            os.umask(mask)
            mode = 0o666 & ~mask  # NamedTemporaryFile creates 0600; use the usual default
        os.chmod(tmp, mode)
        os.replace(tmp, p)
        tmp = None
    finally:
        if tmp is not None:
            with suppress(OSError):
                os.unlink(tmp)
    with suppress(OSError, AttributeError):  # make the rename durable (POSIX only)
        fd = os.open(p.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return p


def make_parent(path: Path, option: str) -> None:
    """Create the folder of ``path`` (an output given with ``option``); OutputError naming it if not."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{path.parent}: cannot create the folder for {option} ({e.strerror or e})") from None
