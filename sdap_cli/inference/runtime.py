r"""The CPU default without torch: the one-pass student's tiles run by ONNX Runtime from a cached graph.

The CPU default (measure the noise, the clean path, the one-pass student told the noise, its Wiener blend)
is numpy around one network call per tile. Here that call is ONNX Runtime running
:class:`~sdap_cli.inference.export.TilePipeline` (the maps, the student, the clamp), a graph made from the
torch module itself, and everything around it is the code the torch path runs (``noise.measure_noise``,
``adaptive.AdaptiveDenoiser``, ``tiling.run_tiles``), so tiles, blend and output conversion are the same.
A process that finds the graph in the cache imports no torch (1.6-1.8 s here, against 0.12-0.16 s for
onnxruntime).

The cache. The graph is built with torch on first use and written atomically to the user's cache folder
(``$SDAP_CACHE_DIR``, else ``$XDG_CACHE_HOME/sdap``, else ``~/.cache/sdap``; never beside the package),
named by a digest of its key: the weights file's SHA-256, sdap's version, onnxruntime's version and
``GRAPH_VERSION``. The graph carries its key, what tiling needs (receptive radius, alignment, activation
bytes per pixel) and a check: an input tile and torch's output for it. Each process that opens it runs
the check (a few milliseconds) and compares with ``CHECK_TOLERANCE``; an entry that does not open, holds
another key or fails the check is rebuilt, never trusted. A graph that fails the check just after it was
built (this runtime computes something else on this machine) is not used: the caller falls back to torch.

Precision: ONNX Runtime's CPU provider computes in fp32 (it has no bf16 arithmetic on x86), so the
result is torch's fp32 result within float rounding (``CHECK_TOLERANCE``; tests), 16-bit outputs keep
their precision, and tiled == whole image holds as in torch.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__
from ..config import InferenceConfig
from ..errors import ConfigError
from ..io.atomic import atomic_write
from ..method.roles import STUDENT
from .adaptive import AdaptiveDenoiser
from .checkpoints import shipped_student_path
from .denoisers import TEACHER_OPTIONS, auto_active
from .noise import NoiseEstimate, measure_noise
from .tiling import auto_tile, fit_tile, run_tiles, tile_margin

__all__ = ["RuntimeDenoiser", "runtime_denoiser", "runtime_refusal", "open_graph", "cache_dir", "graph_key",
           "cache_path", "build_graph", "GRAPH_VERSION", "CHECK_TOLERANCE", "RuntimeUnavailable"]

GRAPH_VERSION = 1
"""Raised when the graph :func:`build_graph` makes changes, so older cache entries are not used."""
CHECK_TOLERANCE = 1e-4
"""Largest difference from torch's fp32 output the check allows (fp32 rounding gives 1e-6 here)."""
CHECK_SHAPE = (40, 56)
"""The check tile's side (multiples of 8)."""


class RuntimeUnavailable(Exception):
    """The runtime cannot run the graph here (not installed, the graph fails its check); the message says why."""


def cache_dir() -> Path:
    """Where compiled graphs are kept: ``$SDAP_CACHE_DIR``, else ``$XDG_CACHE_HOME/sdap``, else ``~/.cache/sdap``.

    Example:
        >>> os.environ["SDAP_CACHE_DIR"] = "/tmp/x"; str(cache_dir())
        '/tmp/x'
        >>> del os.environ["SDAP_CACHE_DIR"]
    """
    if os.environ.get("SDAP_CACHE_DIR"):
        return Path(os.environ["SDAP_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sdap"


def graph_key(weights: Path) -> dict:
    """What a cached graph was made from: the weights file's SHA-256, sdap's and onnxruntime's versions and
    ``GRAPH_VERSION``. Raises RuntimeUnavailable without onnxruntime."""
    try:
        import onnxruntime
    except ImportError:
        raise RuntimeUnavailable("onnxruntime is not installed") from None
    digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()
    return {"weights_sha256": digest, "sdap": __version__, "onnxruntime": onnxruntime.__version__,
            "graph": GRAPH_VERSION}


def cache_path(weights: Path, key: dict) -> Path:
    """The cache file of ``key``: ``<cache_dir>/<weights stem>-<16 hex digits of the key>.onnx``."""
    name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / f"{Path(weights).stem}-{name}.onnx"


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, np.float32).tobytes()).decode()


def _unb64(s: str, shape) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), np.float32).reshape(shape)


def build_graph(weights: Path, key: dict) -> bytes:
    """The ONNX graph of the student in ``weights`` (``export.TilePipeline``, fp32, height and width dynamic)
    with ``key``, the tiling facts and the check (an input tile and torch's output) as metadata. Imports torch.

    Raises:
        RuntimeUnavailable: the file does not hold a noise-conditional one-pass student at input scale 1.
    """
    import io
    import warnings

    try:
        import onnx
        import torch
    except ImportError as e:
        raise RuntimeUnavailable(f"{e.name} is not installed") from None

    from .checkpoints import load_weights
    from .export import DEFAULT_OPSET, OUTPUT_NAME, TilePipeline

    loaded = load_weights(weights)
    model = loaded.model
    if not (model.role.one_pass and getattr(model, "cond_ch", 0) and loaded.input_scale == 1.0):
        raise RuntimeUnavailable(f"{weights}: not a noise-conditional one-pass student")
    pipe = TilePipeline(model.float())
    for p in pipe.parameters():
        p.requires_grad_(False)
    rng = np.random.default_rng(0)
    tile = rng.random((*CHECK_SHAPE, 3), dtype=np.float32)
    table = (rng.random((3, 8)) * 0.6).astype(np.float32)
    rho = np.array([0.4, 0.05], np.float32)
    hw = {0: "height", 1: "width"}
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")          # the legacy exporter's deprecation and tracer warnings
        expected = pipe(*(torch.from_numpy(a) for a in (tile, table, rho))).numpy()
        torch.onnx.export(pipe, tuple(torch.from_numpy(a) for a in (tile, table, rho)), buf, dynamo=False,
                          opset_version=DEFAULT_OPSET, input_names=["tile", "table", "rho"],
                          output_names=[OUTPUT_NAME], dynamic_axes={"tile": hw, OUTPUT_NAME: hw})
    graph = onnx.load_from_string(buf.getvalue())
    info = {"radius": model.receptive_radius, "align": model.align,
            "bytes_per_pixel": model.activation_bytes_per_pixel}
    check = {"tile": _b64(tile), "table": _b64(table), "rho": _b64(rho), "expected": _b64(expected)}
    for k, v in (("sdap.key", key), ("sdap.info", info), ("sdap.check", check)):
        graph.metadata_props.add(key=k, value=json.dumps(v, sort_keys=True))
    return graph.SerializeToString()


def _session(data: bytes, threads: int | None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or 0          # 0: one per physical core, as torch
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def _checked(data: bytes, key: dict, threads: int | None):
    """A session of ``data`` and its ``sdap.info``, after checking its key and its output on the check tile.

    Raises:
        RuntimeUnavailable: another key, no metadata, or the check's output more than ``CHECK_TOLERANCE``
            from torch's. Whatever ONNX Runtime raises on bytes it cannot load.
    """
    sess = _session(data, threads)
    meta = sess.get_modelmeta().custom_metadata_map
    if "sdap.key" not in meta or json.loads(meta["sdap.key"]) != key:
        raise RuntimeUnavailable("the graph was made from other weights or versions")
    c = json.loads(meta["sdap.check"])
    tile = _unb64(c["tile"], (*CHECK_SHAPE, 3))
    out = sess.run(None, {"tile": tile, "table": _unb64(c["table"], (3, 8)), "rho": _unb64(c["rho"], (2,))})[0]
    diff = float(np.abs(out - _unb64(c["expected"], tile.shape)).max())
    if not diff <= CHECK_TOLERANCE:
        raise RuntimeUnavailable(f"onnxruntime's output is {diff:.2g} from torch's on the check tile")
    return sess, json.loads(meta["sdap.info"])


def open_graph(weights: Path, threads: int | None = None):
    """An ONNX Runtime session of ``weights``' graph and its tiling facts: the cached graph when it opens,
    has this key and passes its check; else built (:func:`build_graph`, torch), checked and cached (a cache
    folder that cannot be written is skipped).

    Raises:
        RuntimeUnavailable: onnxruntime is missing, or a freshly built graph fails its check.
    """
    key = graph_key(weights)
    path = cache_path(weights, key)
    try:
        return _checked(path.read_bytes(), key, threads)
    except Exception:                               # noqa: BLE001 - missing, damaged or stale: rebuilt
        pass
    data = build_graph(weights, key)
    sess, info = _checked(data, key, threads)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda fh: fh.write(data))
    except OSError:
        pass
    return sess, info


@dataclass
class RuntimeDenoiser:
    """The one-pass student run by ONNX Runtime, with the interface of ``Denoiser`` the rest of the library
    uses (``denoise``, ``describe``, ``conditional``, ``device``, ``precision``, ``model.role``).

    Args:
        session: an ONNX Runtime session of the student's graph (:func:`open_graph`).
        info: its tiling facts, ``{'radius', 'align', 'bytes_per_pixel'}``.
        weights: the weights file, for reports. strength: s in [0, 1], as ``Denoiser``.
    """

    session: object
    info: dict
    weights: str = ""
    strength: float = 1.0
    device = "cpu"
    precision = "fp32"
    runtime = "onnxruntime"
    conditional = True
    model = type("RuntimeModel", (), {"role": STUDENT})()
    """What ``AdaptiveDenoiser`` asks of the network: its role (a one-pass student)."""

    @property
    def align(self) -> int:
        return int(self.info["align"])

    @property
    def margin(self) -> int:
        """Overlap each tile needs so tiled == whole image (the student's receptive radius, aligned)."""
        return tile_margin(int(self.info["radius"]), 1, "none", self.align)

    def forward(self, y: np.ndarray, noise: NoiseEstimate) -> np.ndarray:
        """One tile ``(H, W, 3)`` float32 in [0, 1] (H, W multiples of ``align``) -> denoised, clamped to [0, 1]."""
        table = noise.condition_table()
        table = table[[min(c, len(table) - 1) for c in range(3)]]
        rho = np.array([noise.rho1, noise.rho2], np.float32)
        return self.session.run(None, {"tile": np.ascontiguousarray(y, np.float32), "table": table, "rho": rho})[0]

    def denoise(self, image: np.ndarray, *, tile: int | None = None, overlap: int | None = None,
                on_tile: Callable[[int, int], None] | None = None, out: np.ndarray | None = None,
                post: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None, post_halo: int = 0,
                noise: NoiseEstimate | None = None) -> np.ndarray:
        """``Denoiser.denoise`` with this runtime: the same arguments, tiles and result (an out-of-memory
        error is not retried with smaller tiles: the activations are ONNX Runtime's)."""
        a = self.align
        margin = self.margin if overlap is None else overlap
        if margin % a:
            raise ValueError(f"tile overlap {margin} must be a multiple of the PD factor {a}")
        if tile is None:
            tile = auto_tile("cpu", float(self.info["bytes_per_pixel"]), -(-(margin + post_halo) // a) * a, a)
        margin, tile = fit_tile(tile, margin, post_halo, a)
        if out is None:
            out = np.empty((*image.shape[:2], 3), np.float32)
        noise = measure_noise(image) if noise is None else noise
        run_tiles(image, out, tile, margin, a, lambda y, origin: self.forward(y, noise), self.strength, post,
                  on_tile)
        return out

    def describe(self) -> dict:
        """What runs, as ``Denoiser.describe``: the student, PD 1, no refinement."""
        return {"model": STUDENT.name, "weights": self.weights, "pd": 1, "refine": "none", "strength": self.strength}


def _gpu_present() -> bool:
    """A GPU torch would pick with ``--device auto`` may be here (an NVIDIA driver, Apple silicon)."""
    if sys.platform == "darwin":
        return True
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")


def runtime_refusal(inf: InferenceConfig, weights: Path | None) -> str | None:
    """Why ``inf`` does not run on ONNX Runtime (None: it does): the runtime serves the shipped student on
    the CPU with the default precision (``--precision fp32`` too when ``--runtime onnxruntime`` asks),
    without --compile or --adapt; the teacher, other weights, CUDA/MPS and bf16/fp16 run on torch."""
    if inf.runtime == "torch":
        return "--runtime torch"
    if weights is not None:
        return "--weights: a file other than the shipped student"
    teacher = [o for o in TEACHER_OPTIONS if o in inf.model_fields_set and getattr(inf, o)]
    if inf.model == "teacher" or teacher:
        return "the teacher runs on torch"
    if inf.device not in ("auto", "cpu") or (inf.device == "auto" and _gpu_present()):
        return "a GPU: torch"
    if inf.precision not in (("auto", "fp32") if inf.runtime == "onnxruntime" else ("auto",)):
        return f"--precision {inf.precision}: torch"
    if inf.compile:
        return "--compile: torch"
    if shipped_student_path() is None:
        return "no shipped student"
    return None


def runtime_denoiser(inf: InferenceConfig, weights: Path | None
                     ) -> tuple[RuntimeDenoiser | AdaptiveDenoiser | None, str]:
    """The CPU default on ONNX Runtime for ``inf`` (wrapped in an ``AdaptiveDenoiser`` when ``--auto`` is in
    effect, as ``denoisers.build_denoiser`` wraps the torch student), or None and why not: the caller then
    builds the torch network. ``--runtime auto`` falls back silently; ``--runtime onnxruntime`` raises.

    Raises:
        ConfigError: ``--runtime onnxruntime`` and the settings or this machine do not allow it.
    """
    why = runtime_refusal(inf, weights)
    if why is None:
        try:
            path = shipped_student_path()
            sess, info = open_graph(path, inf.threads)
            den = RuntimeDenoiser(sess, info, str(path), inf.strength)
            return (AdaptiveDenoiser(den, den) if auto_active(inf) else den), ""
        except RuntimeUnavailable as e:
            why = str(e)
    if inf.runtime == "onnxruntime":
        raise ConfigError(f"--runtime onnxruntime: {why}")
    return None, why
