r"""How much memory this process may still use, and whether an image will fit before it is decoded.

Available memory is the smallest of: the kernel's ``MemAvailable``; the cgroup's limit less its usage
(cgroup v2 ``memory.max`` / ``memory.current``, or v1 ``memory.limit_in_bytes`` / ``usage_in_bytes``),
as in containers and batch schedulers; and ``RLIMIT_AS`` less this process's virtual size (``ulimit
-v``). Whichever is exceeded first ends the process, so the least of them is what is left.

What denoising an image needs (``sdap denoise``, see ``io/samples.py``): the decoded samples
:math:`D = h\,w\,c\,b` (c channels of b bytes, as the file holds them), an output buffer of the same
type (at most D), and the tile budget of ``inference.tiling.auto_tile`` plus a fixed allowance for the
encoder and the runtime:

.. math::
    \text{need} = 2D + \min(\text{available} / 4,\ 1\ \text{GiB}) + 256\ \text{MiB}

An image whose need exceeds what is available is refused before a byte of it is decoded.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import resource
import sys

from ..errors import InputError

__all__ = ["available_memory", "cuda_free_memory", "denoise_need", "denoise_fits", "SLACK", "TILE_BUDGET",
           "fmt_bytes", "reuse_freed_memory", "REUSE_LIMIT"]

SLACK = 256 << 20         # encoder buffers, the noise measurement's windows, Python objects
TILE_BUDGET = 1 << 30     # the most inference.tiling.auto_tile gives a CPU tile's activations


REUSE_LIMIT = 1 << 30
"""Blocks up to this size come from (and go back to) the heap, and up to twice it stays mapped when freed."""


REUSE_MIN_AVAILABLE = 4 << 30
"""Below this much available memory the allocator is left as it is: reuse trades memory for speed."""


def reuse_freed_memory() -> bool:
    """Let glibc's malloc keep freed blocks of up to :data:`REUSE_LIMIT` for the next allocation instead of
    returning each one to the kernel (``mallopt`` ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD``).

    By default, blocks over 32 MiB are mapped and unmapped one by one; a tile's activations are a
    few dozen such blocks per layer, so every tile of every image faulted in (and the kernel zeroed) its
    memory again. Measured with ``sdap benchmark --model student,default --sizes 1024,12mp --refine e
    --precision bf16`` on a 2-core EPYC (limit 64 MiB, which leaves the teacher's large blocks mapped,
    against 1 GiB): the teacher PD-2 + E 7.3 -> 4.4 s at 1 MP and 88 -> 58 s at 12 MP, with peak RSS
    1.0 -> 2.1-2.7 GiB and 1.5 -> 3.0-3.3 GiB (freed blocks stay in the heap); the student 12 MP at about
    the same speed and memory (its blocks are smaller), 0.7-1.1 s less system time than glibc's default.
    A process-wide setting, so the commands call it, not the library; skipped where less than
    :data:`REUSE_MIN_AVAILABLE` is available. False where it does not apply (not Linux, not glibc, little
    memory).
    """
    if not sys.platform.startswith("linux"):
        return False
    free = available_memory()
    if free is not None and free < REUSE_MIN_AVAILABLE:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, REUSE_LIMIT) and libc.mallopt(m_trim_threshold, 2 * REUSE_LIMIT))
    except (OSError, AttributeError):
        return False


def _read_int(path: str) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        with open(path) as fh:
            text = fh.read().strip()
        return None if text == "max" else int(text)
    return None


def _meminfo(key: str) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    return None


def _cgroup_left() -> int | None:
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                          "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        cap, used = _read_int(limit), _read_int(usage)
        if cap is not None and used is not None and cap < 1 << 60:     # v1 writes 'no limit' as ~2^63
            return max(cap - used, 0)
    return None


def _address_space_left() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    vm = None
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    vm = int(line.split()[1]) * 1024
    return max(soft - (vm or 0), 0)


def available_memory() -> int | None:
    """Bytes this process can still allocate (module docstring), or None where nothing says (not Linux)."""
    known = [v for v in (_meminfo("MemAvailable"), _cgroup_left(), _address_space_left()) if v is not None]
    return min(known) if known else None


def cuda_free_memory(device) -> int:
    """Bytes PyTorch's CUDA caching allocator can still give on ``device``: the driver's free memory plus
    what the allocator holds but does not use (reserved - allocated). The driver's figure alone shrinks
    after the first image, whose freed activations stay reserved for the next."""
    import torch

    free, _ = torch.cuda.mem_get_info(device)
    return free + max(torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device), 0)


def denoise_need(decoded_bytes: int, available: int) -> int:
    """Bytes ``sdap denoise`` needs for an image of ``decoded_bytes`` samples (module docstring)."""
    return 2 * decoded_bytes + min(available // 4, TILE_BUDGET) + SLACK


def denoise_fits(name: str, geometry: tuple[int, int, int, int]) -> None:
    """Refuse (one-line InputError naming ``name`` and both sizes) an image of ``geometry`` = (height,
    width, channels, bytes per sample) whose :func:`denoise_need` exceeds :func:`available_memory`;
    pass to ``io.images.read_image(fits=...)`` to check before decoding."""
    available = available_memory()
    if available is None:
        return
    h, w, c, b = geometry
    required = denoise_need(h * w * c * b, available)
    if required > available:
        raise InputError(f"{name}: {w}x{h} pixels ({c} x {8 * b}-bit samples, {h * w / 1e6:.0f} MP) need about "
                         f"{fmt_bytes(required)} of memory, {fmt_bytes(available)} is available; "
                         "denoise a smaller crop or use a machine with more memory")


def fmt_bytes(n: float) -> str:
    """``1.2 GiB``, ``340 MiB``."""
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GiB"
    return f"{n / (1 << 20):.0f} MiB"
