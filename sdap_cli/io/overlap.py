"""Reading and writing files while the caller computes: one reader and one writer thread.

A batch of images is read -> computed -> written. Decoders and encoders (OpenCV, Pillow, tifffile, zlib)
release the GIL, so with a reader thread decoding the next file and a writer thread encoding the last one
the cores the network leaves idle (between its layers, in single-threaded steps) do that work instead of
adding it to the batch's time. At most one item is read ahead and one written at a time, so at most
three items are in memory: the next one, the one being computed and the last one's output.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

__all__ = ["ReadWriteOverlap"]

R = TypeVar("R")
W = TypeVar("W")


class ReadWriteOverlap(Generic[R, W]):
    """``read(i)`` runs on the reader thread, ``write(i, item)`` on the writer thread; the caller takes each
    item read (:meth:`take`), computes, and hands the result over (:meth:`write`).

    Example:
        >>> io = ReadWriteOverlap(lambda i: i * 10, lambda i, x: None)
        >>> io.read_ahead(0); item, _ = io.take(0); io.write(0, item + 1)
        >>> io.written()[:3], io.written()
        ((0, 1, None), None)
        >>> io.close()
    """

    def __init__(self, read: Callable[[int], R], write: Callable[[int, W], None]) -> None:
        self._read, self._write = read, write
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="sdap-read")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sdap-write")
        self._reads: dict[int, tuple[Future, float]] = {}
        self._writing: tuple[int, W, Future, float] | None = None

    def read_ahead(self, i: int) -> None:
        """Start reading item i on the reader thread (nothing if it is already being read)."""
        if i not in self._reads:
            self._reads[i] = (self._reader.submit(self._read, i), time.perf_counter())

    def take(self, i: int) -> tuple[R, float]:
        """Item i as read (what ``read`` raised is raised here) and when its reading started; read now if
        it was not read ahead."""
        self.read_ahead(i)
        future, started = self._reads.pop(i)
        return future.result(), started

    def write(self, i: int, item: W) -> None:
        """Start writing item i on the writer thread; call :meth:`written` first if a write is in flight."""
        if self._writing is not None:
            raise RuntimeError("one write at a time: collect the last one with written() first")
        self._writing = (i, item, self._writer.submit(self._write, i, item), time.perf_counter())

    def written(self) -> tuple[int, W, BaseException | None, float] | None:
        """Wait for the write in flight: ``(i, item, the exception it raised or None, seconds it took)``,
        or None when nothing is being written."""
        if self._writing is None:
            return None
        i, item, future, started = self._writing
        self._writing = None
        error = future.exception()
        return i, item, error, time.perf_counter() - started

    def close(self) -> None:
        """Wait for the thread work in flight and drop what was queued (a read ahead that never started)."""
        for pool in (self._reader, self._writer):
            pool.shutdown(wait=True, cancel_futures=True)
