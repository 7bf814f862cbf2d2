"""`sdap benchmark`: warm-up plus timed runs of the denoiser over sizes, refinements and precisions.

Each setting runs in a fresh child process (spawn), so its peak memory (CPU: peak RSS of the child;
CUDA: ``max_memory_allocated``) is its own and nothing it allocates leaks into the next setting.
Achieved MAC/s uses the analytic count (the network's ``macs_per_pixel()`` x pixels x the passes of
its refinement, ``refine.REFINEMENTS``; tile overlap is extra work and not counted). Several networks (``--model
default,student``) are timed in one run, so their ratio is measured under the same conditions. Before the
settings, a child process measures this machine's convolution roofline per precision (``inference.roofline``),
and each row reports its MAC/s as a fraction of it (``roof``).
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import platform
import resource
import time
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace

import numpy as np
import torch

from ..config import BenchmarkConfig, InferenceConfig
from ..errors import ConfigError, first_line
from ..inference.checkpoints import load_weights, shipped_student_path
from ..inference.denoiser import make_denoiser
from ..inference.device import choose_device, pick_device, pick_precision
from ..inference.memory import reuse_freed_memory
from ..inference.roofline import roofline
from ..inference.runtime import runtime_denoiser, runtime_refusal
from ..method.dbsnl import DBSNl
from ..method.refine import REFINEMENTS

SIZES = {"12mp": (3000, 4000), "24mp": (4000, 6000)}


@dataclass
class Row:
    model: str
    size: str
    height: int
    width: int
    refine: str
    precision: str
    channels_last: bool
    compile: bool
    runtime: str = "torch"
    """What ran the network: 'torch', 'onnxruntime' or 'openvino' (``inference.runtime``; 'auto' until it ran)."""
    ms: float = 0.0
    ms_min: float = 0.0
    mpix_per_s: float = 0.0
    gmac_per_s: float = 0.0
    peak_mib: float = 0.0
    tiles: int = 0
    roof: float | None = None
    """gmac_per_s over this machine's best 3x3 convolution rate in the row's precision (``inference.roofline``)."""
    error: str | None = None


@dataclass
class BenchmarkResult:
    rows: list[Row] = field(default_factory=list)
    env: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"env": self.env, "rows": [asdict(r) for r in self.rows]}


def network_macs(model: torch.nn.Module) -> float:
    """Analytic MACs per pixel of one pass of a network (each network counts its own)."""
    return float(model.macs_per_pixel())


def environment(device: torch.device, threads: int | None, networks: dict[str, torch.nn.Module]) -> dict:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((l.split(":", 1)[1].strip() for l in fh if l.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": threads or torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "torch": torch.__version__, "device": str(device),
            "networks": {name: {"kind": m.kind, "arch": m.arch, "parameters": sum(p.numel() for p in m.parameters()),
                                "macs_per_pixel_per_pass": network_macs(m)} for name, m in networks.items()}}


def _hw(size: str) -> tuple[int, int]:
    return SIZES[size] if size in SIZES else (int(size), int(size))


def _model(cfg: BenchmarkConfig, name: str) -> torch.nn.Module:
    """'weights' (the --weights file), 'default' (the shipped teacher), 'student' (the shipped student) or
    'full' (the paper's DBSNl, random weights)."""
    if name == "weights":
        return load_weights(cfg.weights).model
    if name == "full":
        torch.manual_seed(0)
        return DBSNl()
    if name == "student":
        path = shipped_student_path()
        if path is None:
            raise ConfigError("--model student: this installation ships no student weights; use --weights FILE")
        return load_weights(path).model
    return load_weights(None).model


def _measure(cfg: BenchmarkConfig, row: Row) -> Row:
    """Runs in the child process, set up as `sdap denoise` sets itself up."""
    reuse_freed_memory()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    if row.runtime != "torch":              # the CPU default as `sdap denoise` runs it (inference/runtime.py)
        inf = InferenceConfig(model="student", runtime=row.runtime, threads=cfg.threads, auto=False)
        den, _ = runtime_denoiser(inf, None)
        macs = den.info["macs_per_pixel"]
        row.runtime, row.precision = den.runtime, den.precision
    else:
        model = _model(cfg, row.model)
        den = make_denoiser(model, refine=row.refine, device=device, precision=row.precision,
                            channels_last=row.channels_last, compile=row.compile)
        macs = network_macs(model)
    h, w = row.height, row.width
    rng = np.random.default_rng(0)
    img = rng.random((h, w, 3), dtype=np.float32)
    big = h * w >= 4_000_000
    warm = img
    if big:     # warm up on one tile of the frame's tile shape (compiled graphs and oneDNN caches are per shape)
        th, tw = den.tile_shape(h, w, cfg.tile)
        warm = img[:th, :tw]
    ntiles = []
    for _ in range(cfg.warmup):
        den.denoise(warm, tile=cfg.tile)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(1 if big else cfg.runs):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            den.denoise(img, tile=cfg.tile, on_tile=lambda d, t: ntiles.append(t))
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end) / 1000)
        else:
            t0 = time.perf_counter()
            den.denoise(img, tile=cfg.tile, on_tile=lambda d, t: ntiles.append(t))
            times.append(time.perf_counter() - t0)
    t = float(np.mean(times))
    passes = getattr(den, "passes", 1)       # from refine.REFINEMENTS (1 for a one-pass network)
    row.ms, row.ms_min = t * 1000, min(times) * 1000
    row.mpix_per_s = h * w / 1e6 / t
    row.gmac_per_s = h * w * macs * passes / t / 1e9
    row.tiles = ntiles[-1] if ntiles else 1
    if device.type == "cuda":
        row.peak_mib = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        row.peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return row


def _roofline(args) -> dict:
    """Runs in a child process: the roofline of each precision (``{precision: ConvRate dict}``)."""
    cfg, precisions = args
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    best, _ = roofline(pick_device(cfg.device), precisions)
    return {p: r.to_dict() for p, r in best.items()}


def _child(args):
    cfg, row = args
    try:
        return _measure(cfg, row)
    except Exception as e:                                   # noqa: BLE001 - reported per row
        row.error = f"{type(e).__name__}: {first_line(e, 120)}"
        return row


def _names(cfg: BenchmarkConfig, device: torch.device) -> list[str]:
    """The networks to time; 'auto' becomes what `sdap denoise` runs by default (the shipped student)."""
    if cfg.weights is not None:
        return ["weights"]
    auto = "default" if shipped_student_path() is None else "student"
    return list(dict.fromkeys(auto if n == "auto" else n for n in cfg.model))


def _runtime(cfg: BenchmarkConfig, name: str, precision: str, compile: bool, device: torch.device) -> str:
    """'torch', or the runtime ``cfg.runtime`` asks for ('auto': the one `sdap denoise` picks) where the row is
    what `sdap denoise` runs on it: the shipped student (``runtime.runtime_refusal``)."""
    if name != "student" or device.type != "cpu":
        return "torch"
    inf = InferenceConfig(model="student", runtime=cfg.runtime, precision=precision, compile=compile, device="cpu")
    return "torch" if runtime_refusal(inf, None) else cfg.runtime


# rough rates (GMAC/s) for the time estimate printed before a run: 2 CPU cores (bf16 / fp32), any GPU
_ROUGH_GMACS = {("cpu", "bf16"): 100.0, ("cpu", "fp32"): 60.0, ("cpu", "fp16"): 20.0}


@dataclass
class Plan:
    """The settings a run will time, the networks, and a rough estimate of its wall time."""

    rows: list[Row]
    networks: dict[str, torch.nn.Module]
    device: torch.device
    seconds: float = 0.0


def plan(cfg: BenchmarkConfig) -> Plan:
    """Every combination of the config's lists (a network without a choice of refinement gets one row
    per size and precision, refine 'none'), and a rough time estimate: per setting 3 s of process start
    plus (warm-up + timed runs) x pixels x MACs x passes at a rough rate (``_ROUGH_GMACS``; 5 TMAC/s
    on a GPU)."""
    device = choose_device(cfg.device)
    names = _names(cfg, device)
    networks = {n: _model(cfg, n) for n in names}
    p = Plan([], networks, device)
    for name in names:
        net = networks[name]
        refines = ["none"] if net.role.one_pass else cfg.refine
        for size, refine, prec, cl, comp in itertools.product(cfg.sizes, refines, cfg.precision,
                                                              cfg.channels_last, cfg.compile):
            h, w = _hw(size)
            row = Row(name, size, h, w, refine, pick_precision(prec, device), cl, comp,
                      _runtime(cfg, name, prec, comp, device))
            p.rows.append(row)
            passes = 1 if net.role.one_pass else REFINEMENTS[refine].passes(
                SimpleNamespace(refine=refine, r3_t=8))
            calls = 1 if h * w >= 4_000_000 else cfg.warmup + cfg.runs     # a big frame warms up on one tile
            rate = 5000.0 if device.type != "cpu" else _ROUGH_GMACS.get(("cpu", row.precision), 60.0)
            p.seconds += 3 + calls * h * w * network_macs(net) * passes / (rate * 1e9)
    if cfg.roofline:
        p.seconds += 3 + 3 * len({r.precision for r in p.rows})
    return p


def run(cfg: BenchmarkConfig, on_row=None, planned: Plan | None = None,
        result: BenchmarkResult | None = None) -> BenchmarkResult:
    """Time every setting of :func:`plan` (``planned``: already made); ``on_row(row)`` after each. The
    rows go into ``result`` (a new one by default) as they finish, so after Ctrl-C it holds those."""
    p = planned or plan(cfg)
    result = result if result is not None else BenchmarkResult()
    result.env = environment(p.device, cfg.threads, p.networks)
    ctx = mp.get_context("spawn")
    if cfg.roofline and p.rows:
        with ctx.Pool(1) as pool:
            result.env["roofline"] = pool.apply(_roofline, ((cfg, [r.precision for r in p.rows]),))
    roof = result.env.get("roofline", {})
    for row in p.rows:
        with ctx.Pool(1) as pool:
            row = pool.apply(_child, ((cfg, row),))
        if not row.error and row.precision in roof:
            row.roof = row.gmac_per_s / roof[row.precision]["gmac_per_s"]
        result.rows.append(row)
        if on_row is not None:
            on_row(row)
    return result
