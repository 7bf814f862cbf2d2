"""`sdap export`: write a network with its whole inference pipeline as ONNX (.onnx) or TorchScript (.pt).

The weights are chosen as `sdap denoise` chooses them (``inference.denoisers.choose_weights``: ``--weights``
checked against ``--model``, else the shipped network ``--model`` names); ``inference.export`` builds the graph
(pad, PD-2 + E for the teacher or one pass for the student, crop, clamp). With ``check`` the written file
is run once on an odd-sized image (ONNX in onnxruntime when it is installed, TorchScript with
``torch.jit.load``) and its largest difference to the torch pipeline is reported.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..config import ExportConfig, InferenceConfig
from ..errors import OutputError, SdapError
from ..inference.denoisers import choose_weights
from ..inference.export import (
    DEFAULT_OPSET,
    INPUT_NAME,
    NOISE_NAME,
    OUTPUT_NAME,
    ExportPipeline,
    export_onnx,
    export_torchscript,
    min_side,
    pipeline,
)
from ..inference.noise import measure_noise
from ..io.atomic import make_parent

ONNX_HINT = "pip install onnx onnxruntime"


@dataclass
class ExportResult:
    path: Path
    format: str                     # 'onnx' | 'torchscript'
    model: str                      # the network's role: 'teacher' | 'student'
    weights: Path
    input_name: str
    output_name: str
    opset: int | None               # None for TorchScript
    min_side: int
    bytes: int
    max_abs_diff: float | None      # of the self-check; None: not run (or onnxruntime absent)
    noise_name: str | None = None   # a noise-conditional student's second input ((N, 5, H, W) noise maps)

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def _self_check(path: Path, fmt: str, pipe: ExportPipeline) -> float | None:
    """Largest |file - torch| on a seeded odd-sized image (37 x 53, or larger for big alignments)."""
    if fmt == "onnx" and importlib.util.find_spec("onnxruntime") is None:
        return None
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, max(37, pipe.align + 1), max(53, pipe.align + 3), generator=g)
    args = (x,)
    if getattr(pipe.net, "cond_ch", 0):         # the maps `sdap denoise` would tell it
        y = x[0].permute(1, 2, 0).numpy()
        args += (torch.from_numpy(measure_noise(y).condition(y)).permute(2, 0, 1)[None],)
    with torch.no_grad():
        ref = pipe(*args)
        if fmt == "onnx":
            import onnxruntime as ort

            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            feed = dict(zip((INPUT_NAME, NOISE_NAME), (a.numpy() for a in args)))
            out = torch.from_numpy(sess.run([OUTPUT_NAME], feed)[0])
        else:
            out = torch.jit.load(str(path))(*args)
    return float((out - ref).abs().max())


def run(cfg: ExportConfig) -> ExportResult:
    """Export as ``cfg`` says.

    Raises:
        SdapError: no ``onnx`` package for a .onnx output. ConfigError: a weights file of the other kind than ``model``.
        CheckpointError: missing or unreadable weights.
        OutputError: the output exists (without ``overwrite``) or cannot be written.
    """
    fmt = "onnx" if cfg.output.suffix.lower() == ".onnx" else "torchscript"
    if fmt == "onnx" and importlib.util.find_spec("onnx") is None:
        raise SdapError(f"{cfg.output}: ONNX export needs the onnx package: {ONNX_HINT}")
    if cfg.output.exists() and not cfg.overwrite:
        raise OutputError(f"{cfg.output}: exists; pass --overwrite to replace it")
    loaded = choose_weights(cfg.weights, InferenceConfig(model=cfg.model), torch.device("cpu"))
    model = loaded.model.float().eval()
    make_parent(cfg.output, "the export")
    try:
        if fmt == "onnx":
            export_onnx(cfg.output, model, loaded.input_scale, opset=cfg.opset)
        else:
            export_torchscript(cfg.output, model, loaded.input_scale)
    except OSError as e:
        raise OutputError(f"{cfg.output}: cannot write ({e.strerror or e})") from None
    pipe = pipeline(model, loaded.input_scale)
    diff = _self_check(cfg.output, fmt, pipe) if cfg.check else None
    return ExportResult(cfg.output, fmt, model.role.name, loaded.path, INPUT_NAME, OUTPUT_NAME,
                        cfg.opset if fmt == "onnx" else None, min_side(model), cfg.output.stat().st_size, diff,
                        NOISE_NAME if getattr(model, "cond_ch", 0) else None)


__all__ = ["run", "ExportResult", "ONNX_HINT", "DEFAULT_OPSET"]
