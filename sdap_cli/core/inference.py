r"""SDAP inference: PD-2 blind-spot denoising, the E refinement (SDAP) or R3 (AP-BSN), and tiling.

Passes, on an image :math:`y` in [0, 1] padded (reflect) to a multiple of the PD factor f:

* ``none``: :math:`\hat x = \mathrm{PD}_f^{-1}(f_\theta(\mathrm{PD}_f(y)))`
* ``e`` (SDAP(E), "denoise twice"): :math:`\hat x_E = f_\theta(\hat x)`, a second full-resolution pass
  (SDAP ``test.py``).
* ``r3`` (AP-BSN's random-replacing refinement): for t = 1..T, replace a random fraction p of
  :math:`\hat x` by :math:`y`, run :math:`f_\theta` at full resolution (reflect-padded by 2), and average
  the T results.

Tiling: tiles overlap by a margin of at least the pipeline's receptive radius
(``required_margin``) and start on multiples of f, so each tile's core is computed exactly as in
the whole image; cores are stitched without blending, and the tiled result equals the whole-image
result (up to float summation order). R3's random masks come from a counter-based hash of the
absolute pixel coordinates, so they too are identical tiled or not.

Output: float32 in [0, 1], shape as the input.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .dbsnl import DBSNl, receptive_radius
from .pd import pad_to_multiple, pd_down, pd_up
from .student import StudentUNet

__all__ = ["Denoiser", "StudentDenoiser", "make_denoiser", "required_margin", "tile_boxes", "r3_mask",
           "pick_device", "pick_precision", "is_oom", "auto_tile"]

REFINES = ("none", "e", "r3")
R3_PAD = 2


def required_margin(num_module: int, pd: int, refine: str) -> int:
    r"""Context a tile needs on each side: :math:`r f` for the PD pass, plus :math:`r` for E or
    :math:`r + 2` for R3 (r = DBSNl's receptive radius), rounded up to a multiple of f.

    Example:
        >>> required_margin(9, 2, "none"), required_margin(9, 2, "e")
        (58, 88)
    """
    r = receptive_radius(num_module)
    m = r * pd + {"none": 0, "e": r, "r3": r + R3_PAD}[refine]
    return int(math.ceil(m / pd) * pd)


def tile_boxes(h: int, w: int, tile: int, margin: int, f: int) -> list[tuple[tuple[int, int, int, int],
                                                                          tuple[int, int, int, int]]]:
    """Cover an (h, w) image (multiples of f) with tiles of side <= ``tile``, all of one shape.

    Returns ``[(tile_box, core_box), ...]`` with boxes ``(y0, y1, x0, x1)``; cores partition the image,
    each tile holds its core grown by ``margin`` (clipped to the image) and all corners are multiples of
    f. Along each axis the image is split into the fewest cores that fit (``ceil(n / (tile - 2 margin))``)
    of equal size (up to rounding to f), and every tile is ``core + 2 margin`` long: tiles at the border
    slide inwards instead of shrinking. So compiled graphs, CUDA graphs and cuDNN's autotuner see one
    input shape per image, at the cost of one margin of extra work per border tile.

    Example:
        >>> len(tile_boxes(100, 100, 100, 10, 2)), len(tile_boxes(100, 100, 60, 10, 2))
        (1, 9)
        >>> {(t[1] - t[0], t[3] - t[2]) for t, _ in tile_boxes(100, 90, 60, 10, 2)}
        {(54, 50)}
    """
    if h <= tile and w <= tile:
        return [((0, h, 0, w), (0, h, 0, w))]
    core_max = (tile - 2 * margin) // f * f
    if core_max < f:
        raise ValueError(f"tile {tile} is too small for the overlap {margin}: need tile > {2 * margin + f}")

    def split(n: int) -> tuple[int, int]:               # (core, tile length) along one axis
        if n <= tile:
            return n, n
        parts = -(-n // core_max)
        core = -(-n // (parts * f)) * f
        return core, min(core + 2 * margin, n)

    (core_y, th), (core_x, tw) = split(h), split(w)
    boxes = []
    for cy in range(0, h, core_y):
        for cx in range(0, w, core_x):
            cb = (cy, min(cy + core_y, h), cx, min(cx + core_x, w))
            y0 = min(max(cy - margin, 0), h - th)
            x0 = min(max(cx - margin, 0), w - tw)
            boxes.append(((y0, y0 + th, x0, x0 + tw), cb))
    return boxes


def compile_network(model: torch.nn.Module, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """``torch.compile`` for inference, one graph per input shape (``dynamic=False``; tiles share a shape).

    On CPU, inductor's *freezing* folds the weights into constants and fuses conv + ReLU and conv + add
    into oneDNN kernels; on CUDA, mode ``reduce-overhead`` also records a CUDA graph per tile shape.
    The first call per shape compiles (seconds to a minute); it pays off on large images and batches
    of one size. The weights must not change afterwards (``--adapt`` runs before this).
    """
    if device.type == "cuda":
        return torch.compile(model, mode="reduce-overhead", dynamic=False)
    return torch.compile(model, dynamic=False, options={"freezing": True})


def r3_mask(shape: tuple[int, int, int], y0: int, x0: int, t: int, p: float, seed: int,
            device: torch.device) -> torch.Tensor:
    """Bernoulli(p) mask ``(C, h, w)`` for R3 round t, a pure function of absolute coordinates.

    A 32-bit integer hash (lowbias32) of (seed, t, c, y, x) gives a uniform value per element, so
    tiles draw the same mask as the whole image.
    """
    c, h, w = shape
    cc = torch.arange(c, device=device, dtype=torch.int64).view(c, 1, 1)
    yy = torch.arange(y0, y0 + h, device=device, dtype=torch.int64).view(1, h, 1)
    xx = torch.arange(x0, x0 + w, device=device, dtype=torch.int64).view(1, 1, w)
    v = (((seed * 8191 + t) * 4 + cc) * 1_000_003 + yy) * 1_000_033 + xx
    m32 = 0xFFFFFFFF
    v = v & m32
    v = ((v ^ (v >> 16)) * 0x7FEB352D) & m32
    v = ((v ^ (v >> 15)) * 0x846CA68B) & m32
    v = v ^ (v >> 16)
    return (v.double() / 2**32) < p


def pick_device(name: str) -> torch.device:
    """'auto' -> cuda, then mps, then cpu; explicit names are checked for availability."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA GPU is visible to PyTorch")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("--device mps: Apple MPS is not available")
    return torch.device(name)


def pick_precision(name: str, device: torch.device) -> str:
    """'auto' -> bf16 where the hardware computes it natively (CUDA with bf16, CPUs with AVX512-BF16/AMX),
    fp16 on MPS, fp32 otherwise."""
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "mps":
        return "fp16"
    try:
        return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
    except (AttributeError, RuntimeError):
        return "fp32"


def is_oom(e: BaseException) -> bool:
    """True for CUDA/MPS/CPU allocation failures."""
    if isinstance(e, (MemoryError, getattr(torch.cuda, "OutOfMemoryError", MemoryError))):
        return True
    msg = str(e).lower()
    return isinstance(e, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg)


# Peak bytes per tile pixel of one DBSNl pass at base_ch 128 (measured on CPU with inference_mode:
# ~2,600 B/px fp32, 1,300-2,300 bf16), with a margin; scaled linearly with the width.
_BYTES_PER_PIXEL_128_FP32 = 3200
_BYTES_PER_PIXEL_STUDENT_FP32 = 300          # StudentUNet (32, 64, 128): measured ~240 B/px, half-resolution
# 1 GiB of tile activations keeps a 24 MP photo under 2 GiB of process RSS (torch ~0.3 GiB, the float
# input and output images ~0.3 GiB each) at a few percent of extra overlap work
_CPU_ACTIVATION_BUDGET = 1 << 30


def auto_tile(device: torch.device, bytes_per_pixel: float, margin: int, f: int) -> int:
    """Largest tile side whose activations (``bytes_per_pixel`` per tile pixel) fit the budget: half the
    free GPU memory on CUDA; on CPU a quarter of MemAvailable, at most 1 GiB, so a 24 MP photo stays under
    2 GiB of RSS. Clamped to
    [max(256, 2*margin + 64), 2048] and rounded to a multiple of f."""
    free = None
    if device.type == "cuda":
        budget = torch.cuda.mem_get_info(device)[0] / 2
    else:
        with contextlib.suppress(OSError, ValueError):
            with open("/proc/meminfo") as fh:
                for line in fh:
                    if line.startswith("MemAvailable:"):
                        free = int(line.split()[1]) * 1024
        budget = min((free if free is not None else 8 << 30) / 4, _CPU_ACTIVATION_BUDGET)
    side = int(math.sqrt(budget / bytes_per_pixel))
    lo = max(256, 2 * margin + 64)
    side = max(lo, min(side, 2048))
    return side // f * f


@dataclass
class Denoiser:
    r"""A loaded DBSNl ready to denoise whole images with PD-f inference and a refinement.

    Args:
        model: the blind-spot network (any width/depth).
        input_scale: the network sees ``x * input_scale`` (1 for SDAP weights, 255 for AP-BSN's).
        refine: 'none', 'e' or 'r3'.
        pd: PD factor at inference (2 in SDAP and AP-BSN).
        r3_t, r3_p, seed: R3 rounds, replacement probability and seed.
        device: torch device; precision: 'fp32', 'bf16' or 'fp16'; channels_last: NHWC activations
            (faster with oneDNN and cuDNN).
        compile: run the network through :func:`compile_network`.
        strength: s in [0, 1]; the result is :math:`y + s\,(\hat x - y)` (1: the network's output, 0: the
            input). Below 1 it keeps detail the network smooths away on light noise.

    Example:
        >>> d = Denoiser(DBSNl(base_ch=8, num_module=1), refine="none")
        >>> d.denoise(np.zeros((9, 7, 3), np.float32)).shape
        (9, 7, 3)
    """

    model: DBSNl
    input_scale: float = 1.0
    refine: str = "e"
    pd: int = 2
    r3_t: int = 8
    r3_p: float = 0.16
    seed: int = 0
    device: torch.device = torch.device("cpu")
    precision: str = "fp32"
    channels_last: bool = True
    compile: bool = False
    strength: float = 1.0

    def __post_init__(self) -> None:
        if self.refine not in REFINES:
            raise ValueError(f"refine must be one of {REFINES}, got {self.refine!r}")
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {self.strength}")
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]
        self.dtype = dtype
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.model = self.model.eval().to(self.device, dtype).to(memory_format=self.memory_format)
        for p in self.model.parameters():
            p.requires_grad_(False)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.network = compile_network(self.model, self.device) if self.compile else self.model

    @property
    def margin(self) -> int:
        """Overlap each tile needs so tiled == whole image."""
        return required_margin(self.model.num_module, self.pd, self.refine)

    @property
    def bytes_per_pixel(self) -> float:
        """Estimated peak activation bytes per tile pixel (drives the automatic tile size)."""
        half = 0.5 if self.precision in ("bf16", "fp16") else 1.0
        return _BYTES_PER_PIXEL_128_FP32 * self.model.base_ch / 128 * half

    def tile_shape(self, h: int, w: int, tile: int | None = None) -> tuple[int, int]:
        """Shape of the tiles :meth:`denoise` feeds the network for an h x w image (all tiles share it)."""
        hp, wp = -(-h // self.pd) * self.pd, -(-w // self.pd) * self.pd
        if tile is None:
            tile = auto_tile(self.device, self.bytes_per_pixel, self.margin, self.pd)
        (y0, y1, x0, x1), _ = tile_boxes(hp, wp, tile, self.margin, self.pd)[0]
        return y1 - y0, x1 - x0

    def _net(self, x: torch.Tensor) -> torch.Tensor:
        s = self.input_scale
        x = x.to(self.dtype).contiguous(memory_format=self.memory_format)
        out = self.network(x * s if s != 1 else x)
        if self.compile and self.device.type == "cuda":
            out = out.clone()       # a CUDA graph's output buffer is reused by its next replay
        return out.float() / s if s != 1 else out.float()

    def denoise_tensor(self, y: torch.Tensor, origin: tuple[int, int] = (0, 0)) -> torch.Tensor:
        """Denoise ``(1, C, H, W)`` on the model's device, H and W multiples of ``pd``; float32, unclamped.

        ``origin`` is the tile's top-left corner in the whole image (R3 masks depend on it).
        """
        x_hat = pd_up(self._net(pd_down(y, self.pd)), self.pd)
        if self.refine == "e":
            return self._net(x_hat)
        if self.refine == "r3":
            acc = torch.zeros_like(x_hat)
            for t in range(self.r3_t):
                m = r3_mask(tuple(y.shape[1:]), origin[0], origin[1], t, self.r3_p, self.seed, y.device)
                mixed = torch.where(m.unsqueeze(0), y.float(), x_hat)
                padded = F.pad(mixed, (R3_PAD,) * 4, mode="reflect")
                acc += self._net(padded)[..., R3_PAD:-R3_PAD, R3_PAD:-R3_PAD]
            return acc / self.r3_t
        return x_hat

    @torch.inference_mode()
    def denoise(self, image: np.ndarray, *, tile: int | None = None, overlap: int | None = None,
                on_tile: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Denoise an ``(H, W, C)`` float image in [0, 1]; returns float32 ``(H, W, C)`` in [0, 1].

        Args:
            tile: tile side in pixels (None: automatic from free memory; larger than the image: one tile).
            overlap: margin per side (None: ``self.margin``; smaller values break tiled == whole).
            on_tile: called as ``on_tile(done, total)`` after each tile.

        On an out-of-memory error the whole image is retried with half the tile side, down to the
        smallest tile the margin allows; then the error propagates.
        """
        y = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)
        y, (h0, w0) = pad_to_multiple(y, self.pd, mode="reflect")
        margin = self.margin if overlap is None else overlap
        if margin % self.pd:
            raise ValueError(f"tile overlap {margin} must be a multiple of the PD factor {self.pd}")
        if tile is None:
            tile = auto_tile(self.device, self.bytes_per_pixel, margin, self.pd)
        while True:
            try:
                out = self._denoise_tiled(y, tile, margin, on_tile)[:h0, :w0]
                break
            except Exception as e:                      # noqa: BLE001 - only OOM is retried
                smallest = 2 * margin + 2 * self.pd
                if not is_oom(e) or tile // 2 < smallest:
                    raise
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                tile = max(tile // 2 // self.pd * self.pd, smallest)
        if self.strength != 1.0:                        # y + s (x_hat - y), in place
            np.subtract(out, image, out=out, casting="unsafe")
            out *= self.strength
            np.add(out, image, out=out, casting="unsafe")
        return out

    def _denoise_tiled(self, y: torch.Tensor, tile: int, margin: int, on_tile) -> np.ndarray:
        H, W = y.shape[-2:]
        boxes = tile_boxes(H, W, tile, margin, self.pd)
        out = np.empty((H, W, y.shape[1]), np.float32)
        for i, ((ty0, ty1, tx0, tx1), (cy0, cy1, cx0, cx1)) in enumerate(boxes):
            t = y[..., ty0:ty1, tx0:tx1].to(self.device)
            d = self.denoise_tensor(t, origin=(ty0, tx0)).clamp_(0, 1)
            core = d[0, :, cy0 - ty0:cy1 - ty0, cx0 - tx0:cx1 - tx0]
            out[cy0:cy1, cx0:cx1] = core.permute(1, 2, 0).cpu().numpy()
            if on_tile is not None:
                on_tile(i + 1, len(boxes))
        return out


@dataclass
class StudentDenoiser(Denoiser):
    r"""The distilled student (``student.StudentUNet``): one pass :math:`\hat x = g_\phi(y)` at full
    resolution, no PD and no refinement. Tiling, precision and OOM handling are the Denoiser's; tiles
    are aligned to the student's 8-pixel grid (``pd`` holds that alignment) and overlap by its
    receptive radius, so tiled == whole image.

    Example:
        >>> d = StudentDenoiser(StudentUNet(ch=(8, 8, 8), blocks=(1, 1, 1)))
        >>> d.denoise(np.zeros((9, 7, 3), np.float32)).shape
        (9, 7, 3)
    """

    model: StudentUNet = None
    refine: str = "none"

    def __post_init__(self) -> None:
        if self.refine != "none":
            raise ValueError("the student makes one pass: refine must be 'none' (E and R3 are for DBSNl)")
        self.pd = self.model.align
        super().__post_init__()

    @property
    def margin(self) -> int:
        r = self.model.receptive_radius
        return int(math.ceil(r / self.pd) * self.pd)

    @property
    def bytes_per_pixel(self) -> float:
        half = 0.5 if self.precision in ("bf16", "fp16") else 1.0
        return _BYTES_PER_PIXEL_STUDENT_FP32 * self.model.arch["ch"][0] / 32 * half

    def denoise_tensor(self, y: torch.Tensor, origin: tuple[int, int] = (0, 0)) -> torch.Tensor:
        return self._net(y)


def make_denoiser(model: torch.nn.Module, *, input_scale: float = 1.0, refine: str = "e", pd: int = 2,
                  r3_t: int = 8, r3_p: float = 0.16, seed: int = 0, device: torch.device = torch.device("cpu"),
                  precision: str = "fp32", channels_last: bool = True, compile: bool = False,
                  strength: float = 1.0) -> Denoiser:
    """A Denoiser for a DBSNl teacher (PD-f + ``refine``) or a StudentDenoiser for a student (the
    PD and refinement arguments do not apply to it and are ignored)."""
    if isinstance(model, StudentUNet):
        return StudentDenoiser(model, input_scale=input_scale, device=device, precision=precision,
                               channels_last=channels_last, compile=compile, strength=strength)
    return Denoiser(model, input_scale=input_scale, refine=refine, pd=pd, r3_t=r3_t, r3_p=r3_p, seed=seed,
                    device=device, precision=precision, channels_last=channels_last, compile=compile,
                    strength=strength)
