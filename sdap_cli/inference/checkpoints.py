"""Weight files: ours (safetensors with metadata) and the official SDAP / AP-BSN ``.pth`` files.

Formats, detected from the content (not the suffix):

* ``sdap-cli`` safetensors: a DBSNl state_dict without the constant ``mask`` buffers, and string
  metadata ``format``, ``arch`` (JSON of the DBSNl arguments), ``input_scale`` and ``training`` (JSON);
  ``network`` is ``dbsnl`` (absent in older files) or ``student`` (a distilled ``StudentUNet``, whose
  ``arch`` holds its arguments).
* official SDAP ``.pth``: a plain ``DBSNl.state_dict()``, input range [0, 1].
* official AP-BSN ``.pth``: ``{'model_weight': {'denoiser': APBSN.state_dict()}}``, keys prefixed
  ``bsn.``, input range [0, 255].

The network always receives ``x * input_scale`` and its output is divided by ``input_scale``, so the
rest of the core works on [0, 1].
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CheckpointError, first_line
from ..io.atomic import atomic_write

if TYPE_CHECKING:       # torch and the networks are imported by the functions that load or save (not by
    import torch        # default_weights_path and shipped_student_path: the torch-free runtime path)

    from ..method.dbsnl import DBSNl
    from ..method.student import StudentUNet

__all__ = ["LoadedWeights", "load_weights", "save_weights", "default_weights_path", "shipped_student_path",
           "arch_from_state_dict", "FORMAT_TAG", "STUDENT_WEIGHTS_NAME"]

FORMAT_TAG = "sdap-cli/1"
DEFAULT_WEIGHTS_NAME = "sdap_default.safetensors"
STUDENT_WEIGHTS_NAME = "sdap_student.safetensors"



@dataclass
class LoadedWeights:
    """A ready network (a DBSNl teacher or a distilled StudentUNet) plus what is known about it."""

    model: DBSNl | StudentUNet
    input_scale: float
    source: str                     # 'sdap-cli' | 'sdap' | 'apbsn'
    path: Path
    metadata: dict = field(default_factory=dict)


def default_weights_path(name: str = DEFAULT_WEIGHTS_NAME) -> Path:
    """A shipped weights file (the teacher by default, or ``STUDENT_WEIGHTS_NAME``): installed package
    data, else ``weights/`` of a source checkout."""
    try:
        p = resources.files("sdap_cli.weights").joinpath(name)
        if p.is_file():
            return Path(str(p))
    except (ModuleNotFoundError, FileNotFoundError, TypeError):
        pass
    p = Path(__file__).resolve().parents[2] / "weights" / name
    if p.is_file():
        return p
    raise CheckpointError(f"{name}: shipped weights are not installed; pass --weights FILE")


def shipped_student_path() -> Path | None:
    """The shipped student weights, or None when this installation has none."""
    try:
        return default_weights_path(STUDENT_WEIGHTS_NAME)
    except CheckpointError:
        return None


def arch_from_state_dict(sd: dict[str, torch.Tensor]) -> dict:
    """DBSNl arguments read off the tensor shapes (head width, block count, channels)."""
    try:
        base_ch, in_ch = sd["head.0.weight"].shape[:2]
        out_ch = sd["tail.6.weight"].shape[0]
    except KeyError as e:
        raise CheckpointError(f"not a DBSNl state_dict (missing {e.args[0]})") from None
    blocks = {int(m.group(1)) for k in sd if (m := re.match(r"branch1\.body\.(\d+)\.body\.0\.weight$", k))}
    return {"in_ch": int(in_ch), "out_ch": int(out_ch), "base_ch": int(base_ch), "num_module": len(blocks)}


def _build(cls: type[torch.nn.Module], sd: dict[str, torch.Tensor], arch: dict, path: Path) -> torch.nn.Module:
    """``cls(**arch)`` with the weights ``sd``; the constant ``mask`` buffers may be absent (our files
    drop them), every other tensor must fit exactly."""
    name = cls.__name__
    try:
        model = cls(**arch)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: unusable {name} architecture {arch} ({e})") from None
    try:
        missing, unexpected = model.load_state_dict(sd, strict=False)
    except RuntimeError as e:                       # shape mismatches
        detail = next((l.strip() for l in str(e).splitlines() if "size mismatch" in l), "shape mismatch")
        raise CheckpointError(f"{path}: weights do not fit {name}{tuple(arch.values())} ({detail[:120]})") from None
    missing = [k for k in missing if not k.endswith(".mask")]
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise CheckpointError(f"{path}: weights do not fit {name}{tuple(arch.values())} ({what})")
    return model.eval()


def load_weights(path: str | os.PathLike | None = None) -> LoadedWeights:
    """Load any supported weights file onto the CPU in fp32.

    Raises:
        CheckpointError: missing file, unreadable file, or a layout that is not DBSNl.
    """
    path = Path(path) if path is not None else default_weights_path()
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file not found")
    with open(path, "rb") as fh:
        head = fh.read(9)
    # safetensors: a little-endian u64 header length, then the JSON header ('{'); its first byte can be
    # anything (0x80 too), so test for it before the torch signatures (zip 'PK', pickle 0x80)
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000:
        return _load_safetensors(path)
    if head[:2] == b"PK" or head[:1] == b"\x80":
        return _load_pth(path)
    return _load_safetensors(path)


def _load_safetensors(path: Path) -> LoadedWeights:
    from safetensors import SafetensorError, safe_open

    from ..method.dbsnl import DBSNl
    from ..method.networks import NETWORKS

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            sd = {k: f.get_tensor(k).float() for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not a weights file we can read ({first_line(e, 80)})") from None
    if meta.get("format") == FORMAT_TAG:
        kind = meta.get("network", DBSNl.kind)
        if kind not in NETWORKS:
            raise CheckpointError(f"{path}: unknown network {kind!r} (this version knows {sorted(NETWORKS)})")
        arch = json.loads(meta["arch"])
        scale = float(meta.get("input_scale", "1"))
        training = json.loads(meta.get("training", "{}"))
    else:                                                  # a bare DBSNl state_dict in safetensors
        kind, arch, scale, training = DBSNl.kind, arch_from_state_dict(sd), 1.0, {}
    model = _build(NETWORKS[kind], sd, arch, path)
    metadata = {"arch": arch, "training": training} | ({"network": kind} if "network" in meta else {})
    return LoadedWeights(model, scale, "sdap-cli", path, metadata)


def _load_pth(path: Path) -> LoadedWeights:
    import torch

    from ..method.dbsnl import DBSNl

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise CheckpointError(f"{path}: not a readable PyTorch file ({first_line(e, 80)})") from None
    except Exception as e:                                  # unpickling errors come in many types
        raise CheckpointError(f"{path}: not a readable PyTorch file ({type(e).__name__})") from None
    if isinstance(obj, dict) and isinstance(obj.get("model_weight"), dict) and "denoiser" in obj["model_weight"]:
        sd = {k.removeprefix("bsn."): v for k, v in obj["model_weight"]["denoiser"].items()}
        source, scale = "apbsn", 255.0
    elif isinstance(obj, dict) and "head.0.weight" in obj:
        sd, source, scale = obj, "sdap", 1.0
    elif isinstance(obj, dict) and isinstance(obj.get("model"), dict) and "head.0.weight" in obj["model"]:
        sd, source, scale = obj["model"], "sdap", 1.0   # our own training checkpoints (last.pt / best.pt)
    else:
        raise CheckpointError(f"{path}: not an SDAP or AP-BSN checkpoint (no DBSNl weights inside)")
    if not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{path}: not an SDAP or AP-BSN checkpoint (non-tensor entries)")
    sd = {k: v.float() for k, v in sd.items()}
    arch = arch_from_state_dict(sd)
    model = _build(DBSNl, sd, arch, path)
    return LoadedWeights(model, scale, source, path, {"arch": arch, "training": {}})


def save_weights(path: str | os.PathLike, model: torch.nn.Module, *, training: dict | None = None,
                 input_scale: float = 1.0, dtype: torch.dtype | None = None) -> Path:
    """Write ``model`` as sdap-cli safetensors (masks dropped, tensors cast to ``dtype``: float16 (None), or
    bfloat16 for networks trained under bf16 autocast), atomically."""
    import torch
    from safetensors.torch import save

    dtype = torch.float16 if dtype is None else dtype

    path = Path(path)
    sd = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()
          if not k.endswith(".mask")}
    meta = {"format": FORMAT_TAG, "network": model.kind, "arch": json.dumps(model.arch),
            "input_scale": repr(float(input_scale)),
            "dtype": str(dtype).removeprefix("torch."), "training": json.dumps(training or {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: fh.write(save(sd, metadata=meta)))
    return path
