"""`sdap export`: write a network with its whole inference pipeline as ONNX (.onnx), TorchScript (.pt) or a
darktable model package (.dtmodel).

The weights are chosen as `sdap denoise` chooses them (``inference.denoisers.choose_weights``: ``--weights``
checked against ``--model``, else the shipped network ``--model`` names); ``inference.export`` builds the graph
(pad, PD-2 + E for the teacher or one pass for the student, crop, clamp; around a noise-conditional student
what the CPU default does: the noise measured inside the graph, or pinned with ``--noise-from``, the Wiener
blend and the clean path). One input, the noisy image; ``--maps-input`` keeps the noise maps as a second one.
With ``check`` the written file is run once on an odd-sized image (ONNX in onnxruntime when it is installed,
TorchScript with ``torch.jit.load``) and its largest difference to the torch pipeline is reported; a .dtmodel
first passes darktable's own package and graph checks (``inference.export.read_dtmodel``).
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..config import ExportConfig, InferenceConfig
from ..errors import ConfigError, OutputError, SdapError
from ..inference.denoisers import choose_weights
from ..inference.export import (
    DEFAULT_OPSET,
    INPUT_NAME,
    NOISE_NAME,
    OUTPUT_NAME,
    ExportPipeline,
    check_dtmodel_graph,
    dtmodel_config,
    export_dtmodel,
    export_onnx,
    export_torchscript,
    inputs_of,
    min_side,
    pipeline,
    read_dtmodel,
    standalone_pipeline,
)
from ..inference.noise import NoiseEstimate, measure_noise
from ..io.atomic import make_parent
from ..io.images import read_image

ONNX_HINT = "pip install onnx onnxruntime"
FORMATS = {".onnx": "onnx", ".pt": "torchscript", ".dtmodel": "dtmodel"}

PAPER = ("Pan et al., Random Sub-Samples Generation for Self-Supervised Real Image Denoising (SDAP), ICCV 2023")
TRAINING_DATA = {
    "student": "distilled from SDAP blind-spot teachers (trained on noisy images only) on 652 real noisy sRGB images "
               "(512 SIDD validation-set training blocks, 8 SIDD-Medium crops, 97 DND crops, 15 CC15 and 12 NC12 "
               "images) and 20 clean photos (8 SIDD ground-truth crops, 12 CC15 means) with synthetic noise "
               "(weights/README.md, the student's model card)",
    "teacher": "noisy images only: 8 SIDD-Medium crops, 33 DND crops, 15 CC15 noisy images (weights/README.md)",
}
DATA_TERMS = ("research, non-commercial use with citation: SIDD (Abdelhamed, Lin, Brown, CVPR 2018), DND (Ploetz "
              "and Roth, CVPR 2017), CC (Nam et al., CVPR 2016; PolyU non-commercial terms), NC12 (Lebrun et al.)")


@dataclass
class ExportResult:
    path: Path
    format: str                     # 'onnx' | 'torchscript' | 'dtmodel'
    model: str                      # the network's role: 'teacher' | 'student'
    weights: Path
    input_name: str
    output_name: str
    opset: int | None               # None for TorchScript
    min_side: int
    bytes: int
    max_abs_diff: float | None      # of the self-check; None: not run (or onnxruntime absent)
    noise_name: str | None = None   # --maps-input: the second input ((N, 5, H, W) noise maps)
    noise: str = "none"             # 'measured' (inside the graph), 'pinned', 'input' (--maps-input), 'none'
    told: dict | None = None        # the pinned estimate (NoiseEstimate.told() and sigma)
    tile: int | None = None         # .dtmodel: the tile side darktable is told to use

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def _pinned(photo: Path) -> NoiseEstimate:
    """``measure_noise`` of a photo, read as `sdap denoise` reads it (a gray one as its three channels)."""
    px = read_image(photo).pixels
    return measure_noise(np.broadcast_to(px, px.shape[:2] + (3,)) if px.shape[2] == 1 else px)


def _card(role: str, weights: Path, shipped: bool, noise: str, tile: int) -> dict:
    how = ("measures the noise of each tile inside the graph" if noise == "measured" else
           "is told the noise pinned at export (sdap export --noise-from)" if noise == "pinned" else
           "makes the same pass on every tile")
    return {"author": "sdap-cli contributors", "source": f"sdap-cli {__version__}, sdap export; weights "
            f"{weights.name}", "paper": PAPER,
            "license": "MIT (sdap-cli); the weights were learned from research datasets whose terms "
                       "(training_data_license) may restrict use: non-commercial use is the safe reading",
            "training_data": TRAINING_DATA[role] if shipped else f"unknown to sdap: the weights file {weights.name}",
            "training_data_license": DATA_TERMS if shipped else "unknown: see the weights' own record",
            "notes": f"sRGB in [0, 1] in, the full denoised image out (clamped). The graph {how}; darktable "
                     f"tiles at {tile} px with 64 px of overlap. Made with sdap-cli {__version__}."}


def _write(cfg: ExportConfig, fmt: str, pipe: ExportPipeline, role: str, weights: Path, shipped: bool,
           noise: str) -> None:
    if fmt == "onnx":
        export_onnx(cfg.output, pipe, opset=cfg.opset)
    elif fmt == "torchscript":
        export_torchscript(cfg.output, pipe)
    else:
        name = f"sdap {role}" + (" (noise pinned)" if noise == "pinned" else "")
        desc = ("Real camera noise removal: SDAP's distilled one-pass network, told the noise it measures"
                if role == "student" else "Real camera noise removal: the SDAP blind-spot network, PD-2 + E")
        config = dtmodel_config(cfg.output.stem, cfg.tile, __version__, name, desc,
                                _card(role, weights, shipped, noise, cfg.tile))
        export_dtmodel(cfg.output, pipe, config, opset=cfg.opset)


def _self_check(path: Path, fmt: str, pipe: ExportPipeline) -> float | None:
    """A .dtmodel: darktable's package and graph checks first. Then the largest |file - torch| on a seeded
    odd-sized image (37 x 53, or larger for big alignments); None where onnxruntime is absent."""
    data = None
    if fmt == "dtmodel":
        data = read_dtmodel(path)[1]
        check_dtmodel_graph(data)
    if fmt != "torchscript" and importlib.util.find_spec("onnxruntime") is None:
        return None
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, max(37, pipe.align + 1), max(53, pipe.align + 3), generator=g)
    args = (x,)
    if len(inputs_of(pipe)) == 2:               # the maps `sdap denoise` would tell it
        y = x[0].permute(1, 2, 0).numpy()
        args += (torch.from_numpy(measure_noise(y).condition(y)).permute(2, 0, 1)[None],)
    with torch.no_grad():
        ref = pipe(*args)
        if fmt == "torchscript":
            out = torch.jit.load(str(path))(*args)
        else:
            import onnxruntime as ort

            sess = ort.InferenceSession(data or str(path), providers=["CPUExecutionProvider"])
            feed = dict(zip(inputs_of(pipe), (a.numpy() for a in args)))
            out = torch.from_numpy(sess.run([OUTPUT_NAME], feed)[0])
    return float((out - ref).abs().max())


def run(cfg: ExportConfig) -> ExportResult:
    """Export as ``cfg`` says.

    Raises:
        SdapError: no ``onnx`` package for a .onnx or .dtmodel output; a .dtmodel that fails darktable's checks.
        ConfigError: a weights file of the other kind than ``model``; --noise-from or --maps-input with a
            network that is not noise-conditional. InputError: an unreadable --noise-from photo.
        CheckpointError: missing or unreadable weights.
        OutputError: the output exists (without ``overwrite``) or cannot be written.
    """
    fmt = FORMATS[cfg.output.suffix.lower()]
    if fmt != "torchscript" and importlib.util.find_spec("onnx") is None:
        raise SdapError(f"{cfg.output}: ONNX export needs the onnx package: {ONNX_HINT}")
    if cfg.output.exists() and not cfg.overwrite:
        raise OutputError(f"{cfg.output}: exists; pass --overwrite to replace it")
    loaded = choose_weights(cfg.weights, InferenceConfig(model=cfg.model), torch.device("cpu"))
    model = loaded.model.float().eval()
    conditional = bool(getattr(model, "cond_ch", 0))
    if (cfg.noise_from or cfg.maps_input) and not conditional:
        raise ConfigError(f"{loaded.path.name}: not a noise-conditional student; --noise-from and --maps-input "
                          "apply to one")
    est = _pinned(cfg.noise_from) if cfg.noise_from else None
    pipe = pipeline(model, loaded.input_scale) if cfg.maps_input else \
        standalone_pipeline(model, loaded.input_scale, noise=est)
    noise = "input" if cfg.maps_input else "pinned" if est else "measured" if conditional else "none"
    make_parent(cfg.output, "the export")
    shipped = cfg.weights is None
    try:
        _write(cfg, fmt, pipe, model.role.name, loaded.path, shipped, noise)
    except OSError as e:
        raise OutputError(f"{cfg.output}: cannot write ({e.strerror or e})") from None
    try:
        diff = _self_check(cfg.output, fmt, pipe) if cfg.check else None
    except ValueError as e:
        raise SdapError(f"{cfg.output}: written, but darktable would refuse it: {e}") from None
    told = {**est.told(), "sigma": round(est.sigma, 3)} if est else None
    return ExportResult(cfg.output, fmt, model.role.name, loaded.path, INPUT_NAME, OUTPUT_NAME,
                        cfg.opset if fmt != "torchscript" else None, min_side(model), cfg.output.stat().st_size,
                        diff, NOISE_NAME if cfg.maps_input else None, noise, told,
                        cfg.tile if fmt == "dtmodel" else None)


__all__ = ["run", "ExportResult", "ONNX_HINT", "DEFAULT_OPSET"]
