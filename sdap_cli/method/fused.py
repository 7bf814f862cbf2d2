r"""Convolutions with their ReLU or residual add computed inside them, for CPU inference.

Between two convolutions a ReLU or a residual add is a pass over the whole activation in memory. oneDNN's
convolution can apply either to each block of its output while the block is still in cache
(``torch.ops.mkldnn._convolution_pointwise``, the kernels ``torch.compile`` uses on the CPU, called here
without compiling). The networks take this path when ``inference.Denoiser`` sets their ``fused`` flag and
:func:`fusing` agrees; the result is the same function (fp32: to float rounding; bf16: the add happens
before the one rounding, so within one bf16 rounding of the unfused result).
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["can_fuse", "fusing", "fused_conv", "run_fused"]


def can_fuse(device: torch.device, dtype: torch.dtype) -> bool:
    """oneDNN's fused convolutions serve this device and dtype: the CPU with oneDNN, float32 or bfloat16."""
    return device.type == "cpu" and torch.backends.mkldnn.is_available() and dtype in (torch.float32, torch.bfloat16)


def fused_conv(conv: nn.Conv2d, x: torch.Tensor, relu: bool = False, add: torch.Tensor | None = None,
               weight: torch.Tensor | None = None, bias: torch.Tensor | None = None) -> torch.Tensor:
    r"""``conv(x)``, then ReLU (``relu``) or :math:`+\,` ``add``, in one oneDNN call on the CPU: the post-op is
    applied to each output block while it is in cache (bf16: the sum is taken before the one rounding, so it
    differs from the unfused ``x + conv(h)`` by at most that rounding, 2^-8 relative). ``weight``, ``bias``:
    instead of the layer's own (the same shapes)."""
    args = (conv.weight if weight is None else weight, conv.bias if bias is None else bias, list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)
    if add is not None:
        return torch.ops.mkldnn._convolution_pointwise.binary(x, add, *args, "add", None, None, [], None)
    return torch.ops.mkldnn._convolution_pointwise(x, *args, "relu" if relu else "none", [], "")


def fusing(flag: bool) -> bool:
    """Whether a network whose ``fused`` flag is ``flag`` takes the fused path now: not while gradients are
    recorded (training) nor while it is traced, scripted, compiled or exported."""
    return flag and not (torch.is_grad_enabled() or torch.jit.is_tracing() or torch.jit.is_scripting()
                         or torch.compiler.is_compiling() or torch.compiler.is_exporting())


def run_fused(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``layers(x)`` with every convolution followed by a ReLU run as one fused call; a module with a
    ``fused`` argument (a residual block) is asked to fuse itself; anything else runs as it is. A layer
    with a ``masked_weight()`` (a blind-spot convolution) runs with that weight."""
    mods = list(layers)
    i = 0
    while i < len(mods):
        m = mods[i]
        if isinstance(m, nn.Conv2d):
            relu = i + 1 < len(mods) and isinstance(mods[i + 1], nn.ReLU)
            w = m.masked_weight() if hasattr(m, "masked_weight") else None
            x = fused_conv(m, x, relu=relu, weight=w)
            i += 2 if relu else 1
            continue
        x = m(x, True) if getattr(m, "fuses", False) else m(x)
        i += 1
    return x
