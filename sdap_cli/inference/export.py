r"""Export a network with its whole inference pipeline inside one graph (ONNX or TorchScript).

:class:`ExportPipeline` wraps a loaded network so that one call computes what
:class:`~sdap_cli.inference.denoiser.Denoiser` computes on a whole image (no tiling), in fp32:

* a teacher (blind-spot DBSNl): reflect-pad bottom/right to a multiple of :math:`a = \mathrm{lcm}(f,
  \text{align})`, :math:`\hat x = \mathrm{PD}_f^{-1}(f_\theta(\mathrm{PD}_f(y)))`, the E pass
  :math:`\hat x_E = f_\theta(\hat x)`, crop to H x W, clamp to [0, 1] (``sdap denoise --model teacher``);
* a one-pass student: reflect-pad to a multiple of its ``align`` (8), :math:`\hat x = g_\phi(y)`, crop, clamp.

Input ``noisy``: ``(N, 3, H, W)`` float32 RGB in [0, 1], any H and W of at least :func:`min_side` (reflect
padding needs a side longer than the pad: 2 for the teacher, 8 for the student); output ``denoised``: the
same shape, in [0, 1]. A noise-conditional student takes a second input, ``noise``: ``(N, 5, H, W)``, the
maps ``sdap denoise`` tells it (``NoiseEstimate.condition`` of the image's ``measure_noise``).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..io.atomic import atomic_write
from ..method.pd import pd_down, pd_up

__all__ = ["ExportPipeline", "min_side", "export_onnx", "export_torchscript", "INPUT_NAME", "OUTPUT_NAME",
           "NOISE_NAME", "DEFAULT_OPSET", "ConditionedPipeline", "pipeline"]

INPUT_NAME, OUTPUT_NAME, NOISE_NAME = "noisy", "denoised", "noise"
DEFAULT_OPSET = 17


def min_side(model: nn.Module, pd: int = 2) -> int:
    """Smallest H and W the exported graph takes: the alignment a (reflect pads by at most a - 1 < side).

    Example:
        >>> from sdap_cli.method.student import StudentUNet
        >>> min_side(StudentUNet(ch=(8, 8, 8), blocks=(1, 1, 1)))
        8
    """
    return math.lcm(1 if model.role.one_pass else pd, model.align)


class ExportPipeline(nn.Module):
    r"""Pad, (PD-f, network, PD-f inverse, E) or (one pass), crop, clamp: a whole-image denoiser module.

    Args:
        model: a DBSNl teacher (``refines`` has 'e') or a one-pass student (``pd_factors == (1,)``).
        input_scale: the network sees ``x * input_scale`` (1 for SDAP weights, 255 for AP-BSN's).
        pd: PD factor of the teacher's first pass (2, as ``sdap denoise``); ignored for a student.

    Shapes: ``(N, 3, H, W) -> (N, 3, H, W)``, float32 in [0, 1]; H, W >= :func:`min_side`.

    Example:
        >>> from sdap_cli.method.dbsnl import DBSNl
        >>> ExportPipeline(DBSNl(base_ch=8, num_module=1))(torch.rand(1, 3, 9, 7)).shape
        torch.Size([1, 3, 9, 7])
    """

    def __init__(self, model: nn.Module, input_scale: float = 1.0, pd: int = 2) -> None:
        super().__init__()
        teacher = not model.role.one_pass
        self.net = model.eval()
        self.pd = int(pd) if teacher else 1
        self.refine_e = bool(teacher and "e" in model.role.refines)
        self.align = min_side(model, pd)
        self.scale = float(input_scale)

    def run_net(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale != 1.0:
            return self.net(x * self.scale) / self.scale
        return self.net(x)

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        h, w = noisy.shape[2], noisy.shape[3]
        a = self.align
        x = F.pad(noisy, [0, (a - w % a) % a, 0, (a - h % a) % a], mode="reflect")
        x = pd_up(self.run_net(pd_down(x, self.pd)), self.pd)
        if self.refine_e:
            x = self.run_net(x)
        return x[:, :, :h, :w].clamp(0.0, 1.0)


class ConditionedPipeline(ExportPipeline):
    """The pipeline of a noise-conditional student: ``(noisy, noise) -> denoised``, both reflect-padded to
    the alignment, one pass, cropped and clamped."""

    def forward(self, noisy: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        h, w = noisy.shape[2], noisy.shape[3]
        a = self.align
        pad = [0, (a - w % a) % a, 0, (a - h % a) % a]
        out = self.net(F.pad(noisy, pad, mode="reflect"), F.pad(noise, pad, mode="reflect"))
        return out[:, :, :h, :w].clamp(0.0, 1.0)


def pipeline(model: nn.Module, input_scale: float = 1.0, pd: int = 2) -> ExportPipeline:
    """The whole-image pipeline of ``model``: a :class:`ConditionedPipeline` for a noise-conditional network."""
    return (ConditionedPipeline if _cond(model) else ExportPipeline)(model, input_scale, pd)


def _dynamic_pipeline(model: nn.Module, input_scale: float, pd: int) -> torch.jit.ScriptModule:
    """The pipeline scripted (shape arithmetic stays symbolic) around the network traced (it has no
    shape-dependent Python, so the trace takes any size)."""
    pipe = pipeline(model, input_scale, pd)
    for p in pipe.parameters():         # an inference graph: its outputs must not ask for gradients
        p.requires_grad_(False)
    side = 4 * pipe.align
    example = (torch.rand(1, 3, side, side),) + ((torch.rand(1, model.cond_ch, side, side),) if _cond(model) else ())
    with torch.no_grad():
        pipe.net = torch.jit.trace(model.eval(), example)
    return torch.jit.script(pipe)


def _cond(model: nn.Module) -> int:
    """Noise-map channels a network takes (0: none)."""
    return int(getattr(model, "cond_ch", 0))


def export_torchscript(path: str | Path, model: nn.Module, input_scale: float = 1.0, pd: int = 2) -> Path:
    """Write the pipeline as a TorchScript file (``torch.jit.load(path)(noisy)``; any H, W >= min side),
    atomically."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)     # torch.jit is deprecated, still the .pt format
        scripted = _dynamic_pipeline(model, input_scale, pd)
        return atomic_write(path, lambda fh: torch.jit.save(scripted, fh))


def export_onnx(path: str | Path, model: nn.Module, input_scale: float = 1.0, pd: int = 2,
                opset: int = DEFAULT_OPSET) -> Path:
    """Write the pipeline as ONNX (TorchScript-based exporter; batch, height and width dynamic), atomically.

    Raises:
        ModuleNotFoundError: when the ``onnx`` package is not installed.
    """
    import io
    import warnings

    import onnx  # noqa: F401 - the exporter needs it; fail early with its name

    pipe = pipeline(model, input_scale, pd)
    side = 4 * pipe.align + 1
    buf = io.BytesIO()
    axes = {0: "batch", 2: "height", 3: "width"}
    args = (torch.rand(1, 3, side, side + 2),)
    names = [INPUT_NAME]
    if _cond(model):
        args, names = args + (torch.rand(1, _cond(model), side, side + 2),), names + [NOISE_NAME]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")          # tracer warnings about shape arithmetic are expected
        torch.onnx.export(pipe, args, buf, dynamo=False, opset_version=opset,
                          input_names=names, output_names=[OUTPUT_NAME],
                          dynamic_axes={**{n: axes for n in names}, OUTPUT_NAME: axes})
    return atomic_write(path, lambda fh: fh.write(buf.getvalue()))
