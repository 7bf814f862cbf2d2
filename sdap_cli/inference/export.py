r"""Export a network with its whole inference pipeline inside one graph (ONNX or TorchScript).

:class:`ExportPipeline` wraps a loaded network so that one call computes what
:class:`~sdap_cli.inference.denoiser.Denoiser` computes on a whole image (no tiling), in fp32:

* a teacher (blind-spot DBSNl): reflect-pad bottom/right to a multiple of :math:`a = \mathrm{lcm}(f,
  \text{align})`, :math:`\hat x = \mathrm{PD}_f^{-1}(f_\theta(\mathrm{PD}_f(y)))`, the E pass
  :math:`\hat x_E = f_\theta(\hat x)`, crop to H x W, clamp to [0, 1] (``sdap denoise --model teacher``);
* a one-pass student: reflect-pad to a multiple of its ``align`` (8), :math:`\hat x = g_\phi(y)`, crop, clamp;
* a noise-conditional student (the CPU default), :class:`OnePassPipeline`: what ``sdap denoise`` does around
  it (``adaptive.AdaptiveDenoiser``): measure the noise inside the graph (``graph_noise.NoiseMeter``) or
  tell every input a pinned estimate, the one pass told the maps, the residual Wiener blend, the clean path.

Input ``noisy``: ``(N, 3, H, W)`` float32 RGB in [0, 1], any H and W of at least :func:`min_side` (reflect
padding needs a side longer than the pad: 2 for the teacher, 8 for the student); output ``denoised``: the
same shape, in [0, 1]. :func:`standalone_pipeline` builds these (one input, what ``sdap export`` writes);
:func:`pipeline` gives a noise-conditional student a second input instead, ``noise``: ``(N, 5, H, W)``, the maps
``sdap denoise`` tells it (``NoiseEstimate.condition`` of the image's ``measure_noise``): the measurement
stays outside (``sdap export --maps-input``).

A host that tiles the image (darktable) runs the graph on each tile: a measured graph then reads each tile's
noise (the tiles' estimates differ a little); a pinned one (``noise``) gives every tile the same, and tiled
equals whole up to the network's receptive field.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..io.atomic import atomic_write
from ..method.pd import pd_down, pd_up
from .adaptive import SIGMA_CLEAN
from .graph_noise import NoiseMeter, PinnedNoise, blend_amount, blend_beta, condition_maps, level_at, sigma_map, wiener_blend
from .noise import NoiseEstimate

__all__ = ["ExportPipeline", "min_side", "export_onnx", "export_torchscript", "INPUT_NAME", "OUTPUT_NAME",
           "NOISE_NAME", "DEFAULT_OPSET", "ConditionedPipeline", "OnePassPipeline", "pipeline",
           "standalone_pipeline", "inputs_of", "onnx_bytes", "TilePipeline"]

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


class OnePassPipeline(ExportPipeline):
    r"""The CPU default around a noise-conditional student (``adaptive.AdaptiveDenoiser``, its one-pass path) as
    one graph with one input: measure the noise (:class:`~.graph_noise.NoiseMeter`, or the pinned estimate of
    :class:`~.graph_noise.PinnedNoise`), tell the student its maps, one pass, crop, clamp, the residual Wiener
    blend (amount ``onepass_blend_weight``, :math:`\beta` ``onepass_blend_beta``), and the input itself where the image
    reads clean:

    .. math::
        x = \begin{cases} y & \sigma < \sigma_\text{clean} \\
        y - w \odot (y - \mathrm{clamp}(g_\phi(y, m(y)))) & \text{otherwise} \end{cases}

    Args:
        model: a one-pass student with ``cond_ch`` noise maps.
        input_scale: as :class:`ExportPipeline`.
        noise: pin this estimate (every input is told it) instead of measuring each input.

    Shapes: ``(N, 3, H, W) -> (N, 3, H, W)``, float32 in [0, 1]; H, W >= 8 (:func:`min_side`).
    """

    def __init__(self, model: nn.Module, input_scale: float = 1.0, noise: NoiseEstimate | None = None) -> None:
        super().__init__(model, input_scale)
        self.meter = NoiseMeter() if noise is None else PinnedNoise(noise)

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        y = torch.where(torch.isnan(noisy), torch.zeros_like(noisy), noisy).clamp(0.0, 1.0)    # samples.to_unit
        nlf, rho1, rho2, sigma, measured = self.meter(y)
        h, w = noisy.shape[2], noisy.shape[3]
        a = self.align
        yp = F.pad(y, [0, (a - w % a) % a, 0, (a - h % a) % a], mode="reflect")
        cond = condition_maps(yp, nlf, rho1, rho2)
        out = self.net(yp * self.scale, cond) / self.scale if self.scale != 1.0 else self.net(yp, cond)
        x = out[:, :, :h, :w].clamp(0.0, 1.0)
        x = wiener_blend(y, x, sigma_map(x, nlf), blend_amount(sigma, measured, rho1, rho2), blend_beta(rho1, rho2))
        clean = (measured & (sigma < SIGMA_CLEAN)).view(-1, 1, 1, 1)
        return torch.where(clean, y, x)


class TilePipeline(nn.Module):
    r"""One tile of the CPU default as ``Denoiser.denoise_hwc`` computes it for a noise-conditional student, the
    graph another runtime runs (``inference.runtime``): the maps from the tile and the noise, and the student's
    correction (``StudentUNet.correction``; the runtime adds it to the tile in float32 and clamps, as torch's
    bf16 path keeps the residual add in float32):

    .. math::
        g = g_\phi(y, [s_c(y_c)]_{c=1..3}, \rho_1, \rho_2), \qquad x = \mathrm{clamp}_{[0, 1]}(y + g)

    with :math:`s_c` the level function ``table`` (``NoiseEstimate.condition_table``: already scaled as the maps
    carry it) interpolated as ``NoiseEstimate.condition_tensor`` does (``graph_noise.level_at``).

    Inputs: ``tile`` ``(H, W, 3)`` float32 in [0, 1] (H, W multiples of ``align``), ``table`` ``(3, BINS)``,
    ``rho`` ``(2,)``; output :math:`g`, ``(H, W, 3)`` float32.

    Example:
        >>> from sdap_cli.method.student import StudentUNet
        >>> TilePipeline(StudentUNet(ch=(8, 8, 8), blocks=(1, 1, 1), cond_ch=5))(
        ...     torch.rand(16, 24, 3), torch.rand(3, 8), torch.rand(2)).shape
        torch.Size([16, 24, 3])
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.net = model.eval()

    def forward(self, tile: torch.Tensor, table: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        y = tile.permute(2, 0, 1).unsqueeze(0)
        h, w = y.shape[2], y.shape[3]
        cond = torch.cat([level_at(y, table.unsqueeze(0)), rho.view(1, 2, 1, 1).expand(1, 2, h, w)], 1)
        return self.net.correction(y, cond)[0].permute(1, 2, 0)


def pipeline(model: nn.Module, input_scale: float = 1.0, pd: int = 2) -> ExportPipeline:
    """The whole-image pipeline of ``model`` given what ``sdap`` gives it: a :class:`ConditionedPipeline`
    (noise maps as a second input) for a noise-conditional network."""
    return (ConditionedPipeline if _cond(model) else ExportPipeline)(model, input_scale, pd)


def standalone_pipeline(model: nn.Module, input_scale: float = 1.0, pd: int = 2,
                        noise: NoiseEstimate | None = None) -> ExportPipeline:
    """The pipeline with one input, the noisy image (what ``sdap export`` writes): a :class:`OnePassPipeline`
    for a noise-conditional network (``noise``: pinned), else :func:`pipeline`."""
    return OnePassPipeline(model, input_scale, noise) if _cond(model) else pipeline(model, input_scale, pd)


def _as_pipeline(net: nn.Module, input_scale: float, pd: int) -> ExportPipeline:
    return net if isinstance(net, ExportPipeline) else pipeline(net, input_scale, pd)


def inputs_of(pipe: ExportPipeline) -> list[str]:
    """The graph's input names: ``noisy``, and ``noise`` for a :class:`ConditionedPipeline`."""
    return [INPUT_NAME, NOISE_NAME] if isinstance(pipe, ConditionedPipeline) else [INPUT_NAME]


def _examples(pipe: ExportPipeline, h: int, w: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(1, 3, h, w, generator=g),)
    return x + ((torch.rand(1, pipe.net.cond_ch, h, w, generator=g),) if len(inputs_of(pipe)) == 2 else ())


def _frozen(pipe: ExportPipeline) -> ExportPipeline:
    for p in pipe.parameters():         # an inference graph: its outputs must not ask for gradients
        p.requires_grad_(False)
    return pipe


def _dynamic_pipeline(pipe: ExportPipeline) -> torch.jit.ScriptModule:
    """A TorchScript module that takes any size. A :class:`OnePassPipeline` is traced whole (its shape
    arithmetic is traced as shape operations, it has no Python branch on sizes or data); the others are
    scripted (shape arithmetic stays symbolic) around the network traced (it has no shape-dependent Python)."""
    _frozen(pipe)
    side = 4 * pipe.align
    with torch.no_grad():
        if isinstance(pipe, OnePassPipeline):
            return torch.jit.trace(pipe, _examples(pipe, side + 1, side + 3), check_trace=False)
        pipe.net = torch.jit.trace(pipe.net.eval(), _examples(pipe, side, side))
    return torch.jit.script(pipe)


def _cond(model: nn.Module) -> int:
    """Noise-map channels a network takes (0: none)."""
    return int(getattr(model, "cond_ch", 0))


def export_torchscript(path: str | Path, net: nn.Module, input_scale: float = 1.0, pd: int = 2) -> Path:
    """Write a pipeline as a TorchScript file (``torch.jit.load(path)(noisy)``; any H, W >= min side),
    atomically. ``net``: a built pipeline (:func:`standalone_pipeline`, :func:`pipeline`; ``input_scale`` and
    ``pd`` unused), or a network, exported as :func:`pipeline` builds it."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # torch.jit is deprecated (still the .pt format); tracer warnings
        scripted = _dynamic_pipeline(_as_pipeline(net, input_scale, pd))
        return atomic_write(path, lambda fh: torch.jit.save(scripted, fh))


def onnx_bytes(pipe: ExportPipeline, opset: int = DEFAULT_OPSET, batch: bool = True) -> bytes:
    """``pipe`` as an ONNX model (TorchScript-based exporter): height and width dynamic (named ``height``
    and ``width``), and the batch (``batch``; else fixed at 1).

    Raises:
        ModuleNotFoundError: when the ``onnx`` package is not installed.
    """
    import io
    import warnings

    import onnx  # noqa: F401 - the exporter needs it; fail early with its name

    _frozen(pipe)
    side = 4 * pipe.align + 1
    axes = {**({0: "batch"} if batch else {}), 2: "height", 3: "width"}
    names = inputs_of(pipe)
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")          # tracer warnings about shape arithmetic are expected
        torch.onnx.export(pipe, _examples(pipe, side, side + 2), buf, dynamo=False, opset_version=opset,
                          input_names=names, output_names=[OUTPUT_NAME],
                          dynamic_axes={**{n: axes for n in names}, OUTPUT_NAME: axes})
    if batch:
        return buf.getvalue()
    model = onnx.load_from_string(buf.getvalue())
    for v in (*model.graph.input, *model.graph.output):     # the exporter names an inferred batch of 1
        v.type.tensor_type.shape.dim[0].dim_value = 1
    return model.SerializeToString()


def export_onnx(path: str | Path, net: nn.Module, input_scale: float = 1.0, pd: int = 2,
                opset: int = DEFAULT_OPSET) -> Path:
    """Write a pipeline (``net`` as in :func:`export_torchscript`) as ONNX (:func:`onnx_bytes`), atomically.

    Raises:
        ModuleNotFoundError: when the ``onnx`` package is not installed.
    """
    data = onnx_bytes(_as_pipeline(net, input_scale, pd), opset)
    return atomic_write(path, lambda fh: fh.write(data))


DT_OVERLAP, DT_MAX_OPSET, DT_MIN_TILE = 64, 20, 129
"""darktable 5.6 "neural restore": the overlap per side of its tiles, the newest opset its ONNX Runtime loads,
and the smallest tile side it takes (T must exceed 128)."""
DT_CARD_KEYS = ("author", "source", "paper", "license", "training_data", "training_data_license", "notes")


def dtmodel_config(model_id: str, tile: int, version: str, name: str, description: str, card: dict) -> dict:
    """The ``config.json`` of a darktable model package: id, name, description, task 'denoise', backend
    'onnx', version (a string), ``attributes.input_sizes`` (the tile side darktable is told to use) and the
    model card (``DT_CARD_KEYS``)."""
    missing = [k for k in DT_CARD_KEYS if not card.get(k)]
    if missing:
        raise ValueError(f"model card lacks {', '.join(missing)}")
    return {"id": model_id, "name": name, "description": description, "task": "denoise", "backend": "onnx",
            "version": str(version), "attributes": {"input_sizes": [int(tile)]},
            "model_card": {k: card[k] for k in DT_CARD_KEYS}}


def export_dtmodel(path: str | Path, pipe: ExportPipeline, config: dict, opset: int = DEFAULT_OPSET) -> Path:
    """Write a darktable model package, atomically: a ZIP holding ``<id>/config.json`` (``config``, from
    :func:`dtmodel_config`) and ``<id>/model.onnx`` (``pipe`` with one input and one output, batch 1, height
    and width dynamic), ``<id>`` first.

    Raises:
        ValueError: an opset darktable cannot load, or a pipeline with a second input.
    """
    import json
    import zipfile

    if opset > DT_MAX_OPSET:
        raise ValueError(f"darktable loads ONNX opsets up to {DT_MAX_OPSET}, not {opset}")
    if len(inputs_of(pipe)) != 1:
        raise ValueError("darktable feeds one input (a second one gets a constant map): export the one-input graph")
    data = onnx_bytes(pipe, opset, batch=False)
    mid = config["id"]

    def write(fh) -> None:
        with zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(f"{mid}/", b"")
            z.writestr(f"{mid}/config.json", json.dumps(config, indent=2) + "\n")
            z.writestr(f"{mid}/model.onnx", data)
    return atomic_write(path, write)


def read_dtmodel(path: str | Path) -> tuple[dict, bytes]:
    """Open a darktable model package as darktable 5.6 imports it and repeat its checks (``ai_models.c``,
    ``backend_common.c``, darktable-ai's ``validate.py``): one top-level folder, named by the first entry, no
    ``..``; ``config.json`` and ``model.onnx`` directly inside; the config's six required keys, task 'denoise',
    backend 'onnx', string id, name and version, ``input_sizes`` above 128. Returns the config and the ONNX bytes.

    Raises:
        ValueError: naming the first check that fails.
    """
    import json
    import zipfile

    if not zipfile.is_zipfile(path):
        raise ValueError("not a ZIP file")
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        if not names:
            raise ValueError("empty package")
        mid = names[0].split("/")[0]
        for n in names:
            parts = n.split("/")
            if n.startswith("/") or ".." in parts or parts[0] != mid:
                raise ValueError(f"entry {n!r}: outside the one folder {mid!r}")
        for need in ("config.json", "model.onnx"):
            if f"{mid}/{need}" not in names:
                raise ValueError(f"no {mid}/{need}")
        config, onnx_data = json.loads(z.read(f"{mid}/config.json")), z.read(f"{mid}/model.onnx")
    for key in ("id", "name", "description", "task", "backend", "version"):
        if key not in config:
            raise ValueError(f"config.json lacks {key!r}")
    if not all(isinstance(config[k], str) for k in ("id", "name", "version")) or config["id"] != mid:
        raise ValueError("config.json: id, name and version must be strings, the id the folder's name")
    if config["task"] != "denoise" or config["backend"] != "onnx":
        raise ValueError("config.json: task must be 'denoise' and backend 'onnx'")
    sizes = config.get("attributes", {}).get("input_sizes", [])
    if any(not isinstance(t, int) or t < DT_MIN_TILE for t in sizes):
        raise ValueError(f"input_sizes {sizes}: tile sides must be integers above 128")
    return config, onnx_data


def check_dtmodel_graph(onnx_data: bytes) -> None:
    """darktable's checks of the graph (``backend_onnx.c``, ``restore_rgb.c``): a valid model of an opset up to
    ``DT_MAX_OPSET``, exactly one input and one output ("IO count mismatch" otherwise), both float32
    ``[1, 3, H, W]`` with H and W fixed or named ``height`` and ``width``.

    Raises:
        ValueError: naming the first check that fails.
    """
    import onnx

    m = onnx.load_from_string(onnx_data)
    opset = max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    if opset > DT_MAX_OPSET:
        raise ValueError(f"opset {opset}: darktable loads up to {DT_MAX_OPSET}")
    try:
        onnx.checker.check_model(m)
    except Exception as e:                                  # noqa: BLE001 - the checker's own error class
        raise ValueError(f"not a valid ONNX model: {e}") from None
    weights = {i.name for i in m.graph.initializer}
    ios = [i for i in m.graph.input if i.name not in weights], list(m.graph.output)
    if [len(x) for x in ios] != [1, 1]:
        raise ValueError(f"IO count mismatch: {len(ios[0])} inputs, {len(ios[1])} outputs (darktable: 1 and 1)")
    for v in (ios[0][0], ios[1][0]):
        t = v.type.tensor_type
        dims = [d.dim_param or d.dim_value for d in t.shape.dim]
        if t.elem_type != onnx.TensorProto.FLOAT or len(dims) != 4 or dims[:2] != [1, 3] \
                or any(isinstance(d, str) and d != n for d, n in zip(dims[2:], ("height", "width"))):
            raise ValueError(f"{v.name}: {dims}, not float32 [1, 3, height, width]")
