"""Where and in which arithmetic the networks run: the one home of the device and precision choice."""

from __future__ import annotations

import torch

from ..errors import ConfigError

__all__ = ["pick_device", "pick_precision", "use_ieee_fp32", "choose_device", "is_oom", "DTYPES"]

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def pick_device(name: str) -> torch.device:
    """'auto' -> cuda, then mps, then cpu; explicit names are checked for availability (ValueError). A CUDA
    device comes with TF32 off (:func:`use_ieee_fp32`; every command, benchmark children included, picks its
    device here)."""
    if name == "auto":
        if torch.cuda.is_available():
            use_ieee_fp32()
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA GPU is visible to PyTorch")
    if name == "cuda":
        use_ieee_fp32()
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
    """'auto' -> bf16 where the hardware computes it natively, fp16 where only that has fast units, else fp32.

    CUDA: by compute capability (``torch.cuda.is_bf16_supported()`` also says yes where bf16 is only
    emulated, since torch 2.4): 8.0 and newer (A100, RTX 30xx, H100) bf16; 7.x (V100, T4, RTX 20xx: fp16
    tensor cores, no bf16 ones, and cuDNN has no bf16 convolutions below 8.0) fp16; older fp32. MPS fp16;
    CPUs bf16 with AVX512-BF16/AMX, else fp32. An explicit name is returned as it is.

    On CUDA this also makes fp32 mean IEEE fp32 (:func:`use_ieee_fp32`, as :func:`pick_device` does, for a
    device made elsewhere), for every precision: the float32 layers of a bf16/fp16 network (``precise_layers``)
    are fp32 too.
    """
    if device.type == "cuda":
        use_ieee_fp32()
    if name != "auto":
        return name
    if device.type == "cuda":
        major, _ = torch.cuda.get_device_capability(device)
        return "bf16" if major >= 8 else "fp16" if major >= 7 else "fp32"
    if device.type == "mps":
        return "fp16"
    try:
        return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
    except (AttributeError, RuntimeError):
        return "fp32"


def use_ieee_fp32() -> None:
    """Turn off TF32 (10-bit mantissa) for fp32 convolutions and matrix products, process-wide.

    PyTorch runs cuDNN's fp32 convolutions in TF32 by default on Ampere and newer, which rounds their inputs
    to 10 mantissa bits and breaks what rests on fp32: the float32 output layer of bf16/fp16 networks (16-bit
    outputs), fp32 training, fp32 results equal to the CPU's. With TF32 off, fp32 on CUDA stays within fp32
    rounding of the CPU, and tiled within fp32 rounding of whole (``tests/test_cuda_ready.py`` holds both to
    1e-5 on a GPU), not bit for bit: cuDNN chooses its algorithm per input shape (``cudnn.benchmark``), and
    tiles differ in shape from the whole image.
    """
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def is_oom(e: BaseException) -> bool:
    """True for CUDA/MPS/CPU allocation failures."""
    if isinstance(e, (MemoryError, getattr(torch.cuda, "OutOfMemoryError", MemoryError))):
        return True
    msg = str(e).lower()
    return isinstance(e, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg)
