r"""The CPU default without torch: the one-pass student's tiles run by OpenVINO or ONNX Runtime from a cached graph.

The CPU default (measure the noise, the clean path, the one-pass student told the noise, its Wiener blend) is
numpy around one network call per tile. Here that call runs :class:`~sdap_cli.inference.export.TilePipeline`
(the maps, the student's correction g), a graph made from the torch module itself, on another runtime; the
rest is the torch path's code (``noise.measure_noise``, ``adaptive.AdaptiveDenoiser``, ``tiling.run_tiles``),
and :math:`\mathrm{clamp}(y + g)` is added in float32 as torch's bf16 path does. A process that finds the graph
in the cache imports no torch (1.6-1.8 s here; onnxruntime 0.12-0.16 s, openvino about 0.1 s).

Runtimes (:data:`RUNTIMES`): ONNX Runtime computes in fp32 on x86 (no bf16 arithmetic): torch's fp32 result
within float rounding. OpenVINO (optional extra) computes in bf16 where the CPU has it (AVX512-BF16, AMX), as
torch's default precision does, else fp32; it is not supported on every CPU (AMD), so it is first tried once in
a child process (:func:`probe_openvino`). Tiled == whole image holds on both (tests).

The cache: the graph is built with torch on first use and written atomically to the user's cache folder
(``$SDAP_CACHE_DIR``, else ``$XDG_CACHE_HOME/sdap``, else ``~/.cache/sdap``; never beside the package), named
by a digest of its key (the weights' SHA-256, sdap's version, ``GRAPH_VERSION``), with its facts beside it:
the key, the graph's SHA-256, what tiling needs, and a check (an input tile and torch's fp32 output). Each
process runs the check (milliseconds) against ``CHECK_TOLERANCE``; an entry that is missing, damaged, of
another key or fails the check is rebuilt, never trusted; a fresh graph that fails it is not used (torch runs).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
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
from .denoisers import auto_active, teacher_options
from .noise import NoiseEstimate, measure_noise
from .tiling import auto_tile, fit_tile, run_tiles, tile_margin, tile_shape

__all__ = ["RuntimeDenoiser", "runtime_denoiser", "runtime_refusal", "open_graph", "cache_dir", "graph_key",
           "cache_path", "build_graph", "probe_openvino", "GRAPH_VERSION", "CHECK_TOLERANCE", "RUNTIMES"]

GRAPH_VERSION = 2
"""Bumped when the graph :func:`build_graph` makes changes, so older cache entries are not used."""
CHECK_TOLERANCE = {"fp32": 1e-4, "bf16": 0.05}
"""Largest difference from torch's fp32 correction on the check tile: float rounding gives 1e-6 in fp32; bf16
arithmetic 0.01 (a wrong graph or runtime is off by far more)."""
CHECK_SHAPE = (40, 56)                      # the check tile's sides (multiples of 8)
RUNTIMES = ("openvino", "onnxruntime")
"""What ``--runtime auto`` tries, in order: OpenVINO when installed (the ``[openvino]`` extra; bf16 where the CPU
has it) and safe here (:func:`probe_openvino`), else ONNX Runtime (a dependency; fp32)."""


class RuntimeUnavailable(Exception):
    """The runtime cannot run the graph here (not installed, fails its check); the message says why."""


def cache_dir() -> Path:
    """Where compiled graphs are kept: ``$SDAP_CACHE_DIR``, else ``$XDG_CACHE_HOME/sdap``, else ``~/.cache/sdap``."""
    if os.environ.get("SDAP_CACHE_DIR"):
        return Path(os.environ["SDAP_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sdap"


def graph_key(weights: Path) -> dict:
    """What a cached graph is made from: the weights file's SHA-256, sdap's version and ``GRAPH_VERSION``."""
    digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()
    return {"weights_sha256": digest, "sdap": __version__, "graph": GRAPH_VERSION}


def cache_path(weights: Path, key: dict) -> Path:
    """The cached graph of ``key``: ``<cache_dir>/<weights stem>-<16 hex digits of the key>.onnx``, its facts
    beside it with the suffix ``.json``."""
    name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / f"{Path(weights).stem}-{name}.onnx"


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, np.float32).tobytes()).decode()


def _unb64(s: str, shape) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), np.float32).reshape(shape)


def build_graph(weights: Path, key: dict) -> tuple[bytes, dict]:
    """The ONNX graph of the student in ``weights`` (``export.TilePipeline``, fp32, height and width dynamic)
    and its facts: ``key``, the tiling facts (``info``) and the check (an input tile and torch's fp32 output).
    Imports torch.

    Raises:
        RuntimeUnavailable: torch or onnx missing; the file does not hold a noise-conditional one-pass student
            at input scale 1.
    """
    import io
    import warnings
    try:
        import onnx  # noqa: F401 - torch.onnx writes the graph with it
        import torch
    except ImportError as e:
        raise RuntimeUnavailable(f"{e.name} is not installed") from None

    from .checkpoints import load_weights
    from .export import DEFAULT_OPSET, OUTPUT_NAME, TilePipeline

    loaded = load_weights(weights)
    model = loaded.model
    if not (model.role.one_pass and getattr(model, "cond_ch", 0) and loaded.input_scale == 1.0):
        raise RuntimeUnavailable(f"{weights}: not a noise-conditional one-pass student")
    pipe = TilePipeline(model.float()).requires_grad_(False)
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
    data = buf.getvalue()
    info = {"radius": model.receptive_radius, "align": model.align,
            "bytes_per_pixel": model.activation_bytes_per_pixel, "macs_per_pixel": model.macs_per_pixel()}
    check = {"tile": _b64(tile), "table": _b64(table), "rho": _b64(rho), "expected": _b64(expected)}
    return data, {"key": key, "graph_sha256": hashlib.sha256(data).hexdigest(), "info": info, "check": check}


class _OpenVINO:
    """An OpenVINO CPU compiled model of the graph at ``path`` with ONNX Runtime's ``run(None, feeds)``;
    ``precision`` 'bf16' lets OpenVINO compute in bf16 where the CPU has it (its default), 'fp32' forbids it."""

    def __init__(self, path: Path, threads: int | None, precision: str) -> None:
        import openvino as ov

        core = ov.Core()
        config = {"INFERENCE_NUM_THREADS": threads or 0, "PERFORMANCE_HINT": "LATENCY"}
        if precision == "fp32":
            config["INFERENCE_PRECISION_HINT"] = "f32"
        try:                          # with its blob cache beside the graph: compiling 0.07 -> 0.015 s here
            compiled = core.compile_model(str(path), "CPU", {**config, "CACHE_DIR": str(path.parent / "openvino")})
        except RuntimeError:          # a cache it cannot write (a read-only shared cache): without it
            compiled = core.compile_model(str(path), "CPU", config)
        self.request, self.lock = compiled.create_infer_request(), threading.Lock()    # one request: one call at a time
        self.precision = "bf16" if compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.bf16 else "fp32"

    def run(self, _, feeds: dict) -> list[np.ndarray]:
        """The graph's outputs for ``feeds`` (valid until the next call: ``forward`` adds into a new array)."""
        with self.lock:
            return [self.request.infer([feeds["tile"], feeds["table"], feeds["rho"]])[0]]


def _onnxruntime(data: bytes, threads: int | None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or 0          # 0: one per physical core, as torch
    so.inter_op_num_threads, so.log_severity_level = 1, 3
    # no spin-waiting: the main thread's numpy work and the writer get the cores (2.4 MP tile 1.11 -> 0.95 s, busy CPU)
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    sess.precision = "fp32"
    return sess


def _check(sess, facts: dict) -> None:
    """Run the check tile through ``sess``; RuntimeUnavailable if its correction is further from torch's than
    ``CHECK_TOLERANCE`` allows for the session's precision."""
    c = facts["check"]
    tile = _unb64(c["tile"], (*CHECK_SHAPE, 3))
    out = sess.run(None, {"tile": tile, "table": _unb64(c["table"], (3, 8)), "rho": _unb64(c["rho"], (2,))})[0]
    diff = float(np.abs(out - _unb64(c["expected"], tile.shape)).max())
    if not diff <= CHECK_TOLERANCE[sess.precision]:
        raise RuntimeUnavailable(f"its output is {diff:.2g} from torch's on the check tile")


def _open(runtime: str, path: Path, data: bytes, facts: dict, threads: int | None, precision: str):
    """A checked session of ``runtime`` on the graph (``data``, cached at ``path``; OpenVINO probed first)."""
    if runtime == "openvino" and not probe_openvino(path, precision):
        raise _ProbeFailed("OpenVINO failed its first-use check on this machine")
    sess = _OpenVINO(path, threads, precision) if runtime == "openvino" else _onnxruntime(data, threads)
    _check(sess, facts)
    return sess


class _ProbeFailed(RuntimeUnavailable):
    """OpenVINO does not run here: no graph rebuilt would change that."""


def _cached(path: Path, key: dict) -> tuple[bytes, dict]:
    """The cached graph and its facts; OSError when missing, ValueError when damaged or of another key."""
    data, facts = path.read_bytes(), json.loads(path.with_suffix(".json").read_text())
    if facts.get("key") != key or facts.get("graph_sha256") != hashlib.sha256(data).hexdigest():
        raise ValueError("damaged or stale")
    return data, facts


def open_graph(weights: Path, threads: int | None = None, runtime: str = "onnxruntime", precision: str = "auto"):
    """A session of ``weights``' graph on ``runtime`` ('onnxruntime' or 'openvino'; 'auto' precision: bf16
    where OpenVINO computes it, fp32 otherwise) and the graph's tiling facts: the cached graph when it has this
    key and passes its check; else built (:func:`build_graph`, torch), cached (graph, then its facts,
    atomically; a cache folder that cannot be written makes OpenVINO unavailable) and checked.

    Raises:
        RuntimeUnavailable: the runtime is missing, fails its first-use probe, or a fresh graph fails its check.
    """
    try:
        __import__(runtime)
    except ImportError:
        raise RuntimeUnavailable(f"{runtime} is not installed") from None
    key = graph_key(weights)
    path = cache_path(weights, key)
    try:
        data, facts = _cached(path, key)
        return _open(runtime, path, data, facts, threads, precision), facts["info"]
    except _ProbeFailed:
        raise
    except Exception:                               # noqa: BLE001 - missing, damaged or stale: rebuilt
        pass
    try:
        data, facts = build_graph(weights, key)
    except (RuntimeError, ValueError, TypeError) as e:     # the exporter: torch runs the network instead
        raise RuntimeUnavailable(f"the graph could not be made ({type(e).__name__}: {str(e)[:80]})") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda fh: fh.write(data))
        atomic_write(path.with_suffix(".json"), lambda fh: fh.write(json.dumps(facts).encode()))
    except OSError:
        if runtime == "openvino":
            raise RuntimeUnavailable(f"{path.parent}: the cache folder cannot be written") from None
    return _open(runtime, path, data, facts, threads, precision), facts["info"]


def probe_openvino(path: Path, precision: str) -> bool:
    """Whether OpenVINO compiles and runs the graph at ``path`` here, tried once per OpenVINO version and
    precision in a child process (OpenVINO is not supported on every CPU: a compile that crashes the process,
    SIGFPE on some AMD EPYC, must not take sdap down); the answer is kept beside the graph."""
    import openvino

    version = re.sub(r"[^0-9A-Za-z.]+", "_", openvino.__version__)          # '2026.4.1-22982-e213a14-releases/..'
    mark = path.parent / f"{path.stem}.openvino-{version}-{precision}"
    for ok in (True, False):
        if Path(f"{mark}.{'ok' if ok else 'failed'}").exists():
            return ok
    code = ("import json, sys\nfrom pathlib import Path\nfrom sdap_cli.inference import runtime as r\n"
            "p = Path(sys.argv[1])\nfacts = json.loads(p.with_suffix('.json').read_text())\n"
            "r._check(r._OpenVINO(p, None, sys.argv[2]), facts)\n")
    try:
        ok = subprocess.run([sys.executable, "-c", code, str(path), precision], capture_output=True,
                            timeout=300).returncode == 0
    except subprocess.TimeoutExpired:
        ok = False
    try:
        Path(f"{mark}.{'ok' if ok else 'failed'}").touch()
    except OSError:
        pass
    return ok


@dataclass
class RuntimeDenoiser:
    """The one-pass student run by OpenVINO or ONNX Runtime, with the interface of ``Denoiser`` the rest of the library
    uses (``denoise``, ``describe``, ``conditional``, ``device``, ``precision``, ``model.role``).

    Args:
        session: a session of the student's graph (:func:`open_graph`). runtime: its name.
        info: its tiling facts, ``{'radius', 'align', 'bytes_per_pixel', 'macs_per_pixel'}``.
        weights: the weights file, for reports. strength: s in [0, 1], as ``Denoiser``.
    """

    session: object
    info: dict
    weights: str = ""
    strength: float = 1.0
    runtime: str = "onnxruntime"
    device, conditional = "cpu", True
    model = type("RuntimeModel", (), {"role": STUDENT})()
    """What ``AdaptiveDenoiser`` asks of the network: its role (a one-pass student)."""

    @property
    def align(self) -> int:
        return int(self.info["align"])

    @property
    def precision(self) -> str:
        """The network's arithmetic: 'fp32', or 'bf16' (OpenVINO on a CPU with bf16 units)."""
        return self.session.precision

    @property
    def margin(self) -> int:
        """Overlap each tile needs so tiled == whole image (the student's receptive radius, aligned)."""
        return tile_margin(int(self.info["radius"]), 1, "none", self.align)

    def tile_shape(self, h: int, w: int, tile: int | None = None) -> tuple[int, int]:
        """Shape of the tiles :meth:`denoise` feeds the network for an h x w image, as ``Denoiser.tile_shape``."""
        tile = tile or auto_tile("cpu", float(self.info["bytes_per_pixel"]), self.margin, self.align)
        return tile_shape(h, w, tile, self.margin, self.align)

    def forward(self, y: np.ndarray, noise: NoiseEstimate) -> np.ndarray:
        r"""One tile ``(H, W, 3)`` float32 in [0, 1] (H, W multiples of ``align``) -> :math:`\mathrm{clamp}_{[0,
        1]}(y + g)`, the graph's correction g added in float32 (``export.TilePipeline``)."""
        table = noise.condition_table()
        table = table[[min(c, len(table) - 1) for c in range(3)]]
        rho = np.array([noise.rho1, noise.rho2], np.float32)
        y = np.ascontiguousarray(y, np.float32)
        x = np.add(self.session.run(None, {"tile": y, "table": table, "rho": rho})[0], y)
        return np.clip(x, 0.0, 1.0, out=x)

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
    if sys.platform == "darwin" or os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return sys.platform == "darwin"
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")


def runtime_refusal(inf: InferenceConfig, weights: Path | None) -> str | None:
    """Why ``inf`` does not run on a runtime of :data:`RUNTIMES` (None: it does): they serve the shipped student
    on the CPU at the default precision (an explicit ``--precision fp32``, or bf16 on OpenVINO, too when
    ``--runtime`` names the runtime), without --compile or --adapt; the teacher, other weights, CUDA/MPS,
    explicit precisions otherwise run on torch."""
    if inf.runtime == "torch":
        return "--runtime torch"
    if weights is not None:
        return "--weights: a file other than the shipped student"
    if inf.model == "teacher" or teacher_options(inf):
        return "the teacher runs on torch"
    if inf.device not in ("auto", "cpu") or (inf.device == "auto" and _gpu_present()):
        return "a GPU: torch"
    allowed = {"auto": ("auto",), "onnxruntime": ("auto", "fp32"), "openvino": ("auto", "fp32", "bf16")}
    if inf.precision not in allowed[inf.runtime]:
        return f"--precision {inf.precision}: torch"
    if inf.compile:
        return "--compile: torch"
    if shipped_student_path() is None:
        return "no shipped student"
    return None


def runtime_denoiser(inf: InferenceConfig, weights: Path | None
                     ) -> tuple[RuntimeDenoiser | AdaptiveDenoiser | None, str]:
    """The CPU default on the first runtime of :data:`RUNTIMES` that is installed and passes its checks (the
    one ``--runtime`` names), wrapped in an ``AdaptiveDenoiser`` when ``--auto`` is in effect, as
    ``denoisers.build_denoiser`` wraps the torch student; or None and why not: the caller then builds the
    torch network. ``--runtime auto`` falls back silently; a named runtime raises.

    Raises:
        ConfigError: ``--runtime onnxruntime|openvino`` and the settings or this machine do not allow it.
    """
    why = runtime_refusal(inf, weights)
    reasons = []
    for runtime in (RUNTIMES if inf.runtime == "auto" else (inf.runtime,)) if why is None else ():
        try:
            path = shipped_student_path()
            sess, info = open_graph(path, inf.threads, runtime, inf.precision)
            den = RuntimeDenoiser(sess, info, str(path), inf.strength, runtime)
            return (AdaptiveDenoiser(den, den) if auto_active(inf) else den), ""
        except RuntimeUnavailable as e:
            reasons.append(f"{runtime}: {e}" if inf.runtime == "auto" else str(e))
    why = why or "; ".join(reasons)
    if inf.runtime in RUNTIMES:
        raise ConfigError(f"--runtime {inf.runtime}: {why}")
    return None, why
