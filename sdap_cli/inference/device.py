"""Where and in which arithmetic the networks run: the one home of the device and precision choice."""

from __future__ import annotations

import torch

from ..errors import ConfigError

__all__ = ["pick_device", "pick_precision", "choose_device", "is_oom", "DTYPES"]

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def pick_device(name: str) -> torch.device:
    """'auto' -> cuda, then mps, then cpu; explicit names are checked for availability (ValueError)."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA GPU is visible to PyTorch")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("--device mps: Apple MPS is not available")
    return torch.device(name)


def choose_device(name: str) -> torch.device:
    """:func:`pick_device` for the commands: an unavailable device is a ConfigError (a one-line message)."""
    try:
        return pick_device(name)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def pick_precision(name: str, device: torch.device) -> str:
    """'auto' -> bf16 where the hardware computes it natively (CUDA with bf16, CPUs with AVX512-BF16/AMX),
    fp16 on MPS, fp32 otherwise."""
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "mps":
        return "fp16"
    try:
        return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
    except (AttributeError, RuntimeError):
        return "fp32"


def is_oom(e: BaseException) -> bool:
    """True for CUDA/MPS/CPU allocation failures."""
    if isinstance(e, (MemoryError, getattr(torch.cuda, "OutOfMemoryError", MemoryError))):
        return True
    msg = str(e).lower()
    return isinstance(e, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg)
