r"""SDAP inference: PD-2 blind-spot denoising, the E refinement (SDAP) or R3 (AP-BSN), and tiling.

Passes, on an image :math:`y` in [0, 1] padded (reflect) to a multiple of the PD factor f:

* ``none``: :math:`\hat x = \mathrm{PD}_f^{-1}(f_\theta(\mathrm{PD}_f(y)))`
* ``e`` (SDAP(E), "denoise twice"): :math:`\hat x_E = f_\theta(\hat x)`, a second full-resolution pass
  (SDAP ``test.py``).
* ``r3`` (AP-BSN's random-replacing refinement): for t = 1..T, replace a random fraction p of
  :math:`\hat x` by :math:`y`, run :math:`f_\theta` at full resolution (reflect-padded by 2), and average
  the T results.

The refinement modes live in one table, ``refine.REFINEMENTS`` (margin, passes, function).

Tiling: tiles overlap by a margin of at least the pipeline's receptive radius
(``tile_margin``) and start on multiples of f (and of the network's alignment), so each tile's core is computed exactly as in
the whole image; cores are stitched without blending, and the tiled result equals the whole-image
result (up to float summation order). R3's random masks come from a counter-based hash of the
absolute pixel coordinates, so they too are identical tiled or not.

Output: float32 in [0, 1], shape as the input.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..method.dbsnl import DBSNl  # noqa: F401 - the doctests
from ..method.pd import pd_down, pd_up
from ..method.refine import REFINEMENTS
from ..method.fused import can_fuse
from ..method.student import StudentUNet  # noqa: F401 - the doctests
from .device import DTYPES, is_oom
from .noise import NoiseEstimate, measure_noise
from .tiling import MIN_CORE, auto_tile, fit_tile, run_tiles, tile_margin, tile_shape

__all__ = ["Denoiser", "StudentDenoiser", "make_denoiser", "compile_network", "MIN_CORE"]

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


@dataclass
class Denoiser:
    r"""A loaded network ready to denoise whole images: PD-f pass, a refinement, exact tiling.

    The network answers for itself (``dbsnl.DBSNl``, ``student.StudentUNet``): its receptive radius,
    tile alignment, activation memory, and which refinements and PD factors it supports. A blind-spot
    teacher runs PD-f plus ``refine``; a one-pass student supports only PD 1 and 'none', so the same
    code makes its single pass.

    Args:
        model: the network (any width/depth).
        input_scale: the network sees ``x * input_scale`` (1 for SDAP weights, 255 for AP-BSN's).
        refine: 'none', 'e' or 'r3' (``refine.REFINEMENTS``), among ``model.role.refines``.
        pd: PD factor at inference (2 in SDAP and AP-BSN), among ``model.role.pd_factors``.
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

    model: torch.nn.Module
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
    weights: str = ""
    """The weights file, for reports (:meth:`describe`)."""

    def __post_init__(self) -> None:
        role = self.model.role
        refines = role.refines
        if self.refine not in refines:
            if len(refines) == 1:
                raise ValueError(f"the {role} makes one pass: refine must be {refines[0]!r} "
                                 f"(got {self.refine!r})")
            raise ValueError(f"refine must be one of {refines}, got {self.refine!r}")
        if self.pd not in role.pd_factors:
            raise ValueError(f"pd must be one of {role.pd_factors} for the {role}, got {self.pd}")
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {self.strength}")
        self.dtype = DTYPES[self.precision]
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.model = self.model.eval().to(self.device, self.dtype).to(memory_format=self.memory_format)
        for name in self.model.precise_layers:          # the output stays float32 (16-bit and float files)
            self.model.get_submodule(name).float()
        for p in self.model.parameters():
            p.requires_grad_(False)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.network = compile_network(self.model, self.device) if self.compile else self.model
        # a one-pass network with a fast path runs it (the same function) in the decoded layout
        # (student.forward_hwc); compiled networks and scaled inputs take net(). On the CPU the networks fuse
        # each convolution's ReLU or residual add into it (method.fused); compiled ones are fused by inductor.
        self.hwc = hasattr(self.model, "forward_hwc") and not self.compile and self.input_scale == 1
        if hasattr(self.model, "fused"):
            self.model.fused = not self.compile and can_fuse(self.device, self.dtype)

    @property
    def align(self) -> int:
        """Tile origins and padded sides are multiples of this: lcm(PD factor, the network's alignment)."""
        return math.lcm(self.pd, self.model.align)

    @property
    def margin(self) -> int:
        """Overlap each tile needs so tiled == whole image."""
        return tile_margin(self.model.receptive_radius, self.pd, self.refine, self.align)

    @property
    def passes(self) -> int:
        """Full-resolution network passes per image (the analytic MAC count is this x MACs per pixel)."""
        return REFINEMENTS[self.refine].passes(self)

    @property
    def bytes_per_pixel(self) -> float:
        """Estimated peak activation bytes per tile pixel (drives the automatic tile size)."""
        half = 0.5 if self.precision in ("bf16", "fp16") else 1.0
        return self.model.activation_bytes_per_pixel * half

    def tile_shape(self, h: int, w: int, tile: int | None = None) -> tuple[int, int]:
        """Shape of the tiles :meth:`denoise` feeds the network for an h x w image (all tiles share it)."""
        if tile is None:
            tile = auto_tile(self.device, self.bytes_per_pixel, self.margin, self.align)
        return tile_shape(h, w, tile, self.margin, self.align)

    @property
    def conditional(self) -> bool:
        """The network is told each image's measured noise (a noise-conditional student)."""
        return bool(getattr(self.model, "cond_ch", 0))

    def net(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """One pass of the network on float32 ``x`` (input scale and memory format applied); float32.

        The network casts its input to its body's precision itself and keeps its output layer (and a
        residual add) in float32 (``precise_layers``), so bf16/fp16 do not round the output to 8-11 bits.
        """
        s = self.input_scale
        x = x.float().contiguous(memory_format=self.memory_format)
        x = x * s if s != 1 else x
        out = self.network(x) if cond is None else self.network(x, cond.contiguous(memory_format=self.memory_format))
        if self.compile and self.device.type == "cuda":
            out = out.clone()       # a CUDA graph's output buffer is reused by its next replay
        return out.float() / s if s != 1 else out.float()

    def denoise_tensor(self, y: torch.Tensor, origin: tuple[int, int] = (0, 0), cond: torch.Tensor | None = None
                       ) -> torch.Tensor:
        """Denoise ``(1, C, H, W)`` on the model's device, H and W multiples of ``align``; float32, unclamped.

        ``origin`` is the tile's top-left corner in the whole image (R3 masks depend on it); ``cond`` the
        tile's noise maps for a conditional network (PD 1, no refinement).
        """
        x_hat = pd_up(self.net(pd_down(y, self.pd), cond), self.pd)
        return REFINEMENTS[self.refine].apply(self, y, x_hat, origin)

    def denoise_hwc(self, y: torch.Tensor, origin: tuple[int, int] = (0, 0), noise: NoiseEstimate | None = None
                    ) -> torch.Tensor:
        """:meth:`denoise_tensor` of one ``(H, W, 3)`` float32 tile (H and W multiples of ``align``), in that
        layout: ``(H, W, 3)`` float32, unclamped. ``noise``: the whole image's, for a conditional network
        (its maps are computed here, on the tile's device: ``NoiseEstimate.condition_tensor``)."""
        cond = None if noise is None else noise.condition_tensor(y)
        if self.hwc:
            return self.model.forward_hwc(y, cond)
        c = None if cond is None else cond.permute(2, 0, 1).unsqueeze(0)
        return self.denoise_tensor(y.permute(2, 0, 1).unsqueeze(0), origin, c)[0].permute(1, 2, 0)

    @torch.inference_mode()
    def denoise(self, image: np.ndarray, *, tile: int | None = None, overlap: int | None = None,
                on_tile: Callable[[int, int], None] | None = None, out: np.ndarray | None = None,
                post: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None, post_halo: int = 0,
                noise: NoiseEstimate | None = None) -> np.ndarray:
        """Denoise an ``(H, W, 3)`` image; returns ``out`` filled (by default float32 ``(H, W, 3)`` in [0, 1]).

        Args:
            image: samples of any type of ``samples.SAMPLE_TYPES`` (floats in [0, 1]; a broadcast gray
                view is fine). Each tile is converted to float on its own (``samples.to_unit``), so
                no float copy of the whole image is made.
            tile: tile side in pixels (None: automatic from free memory; larger than the image: one tile;
                one too small to hold the overlap ``margin + post_halo`` on both sides is raised to twice
                that plus ``MIN_CORE``: the result does not depend on it).
            overlap: margin per side (None: ``self.margin``; smaller values break tiled == whole).
            on_tile: called as ``on_tile(done, total)`` after each tile.
            out: ``(H, W, 1 or 3)`` array of any sample type to write the result into
                (``samples.from_unit``; one channel: the channel mean).
            post: ``post(y, x_hat) -> x`` on float tiles (the input and the denoised tile, both cut to
                the image): a step that looks at most ``post_halo`` pixels around each pixel, so tiles
                overlap by that much more and tiled == whole image still holds.
            noise: the image's measured noise, which a conditional network is told (``noise.measure_noise``
                of the whole image when None); ignored by the others.

        On an out-of-memory error the whole image is retried with half the tile side, down to the
        smallest tile the margin allows; then the error propagates.
        """
        a = self.align
        h0, w0 = image.shape[:2]
        margin = self.margin if overlap is None else overlap
        if margin % a:
            raise ValueError(f"tile overlap {margin} must be a multiple of the PD factor {a}")
        if tile is None:
            tile = auto_tile(self.device, self.bytes_per_pixel, -(-(margin + post_halo) // a) * a, a)
        margin, tile = fit_tile(tile, margin, post_halo, a)
        if out is None:
            out = np.empty((h0, w0, 3), np.float32)
        if self.conditional and noise is None:
            noise = measure_noise(image)
        while True:
            try:
                self._denoise_tiled(image, out, tile, margin, post, on_tile, noise if self.conditional else None)
                return out
            except Exception as e:                      # noqa: BLE001 - only OOM is retried
                smallest = 2 * margin + 2 * a
                if not is_oom(e) or tile // 2 < smallest:
                    raise
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                tile = max(tile // 2 // a * a, smallest)

    def _denoise_tiled(self, image: np.ndarray, out: np.ndarray, tile: int, margin: int, post, on_tile,
                       noise: NoiseEstimate | None) -> None:
        def forward(y: np.ndarray, origin: tuple[int, int]) -> np.ndarray:
            return self.denoise_hwc(torch.from_numpy(y).to(self.device), origin, noise).clamp_(0, 1).cpu().numpy()

        run_tiles(image, out, tile, margin, self.align, forward, self.strength, post, on_tile)

    def describe(self) -> dict:
        """What this denoiser runs, as reports show it: ``{'model': 'teacher' | 'student', 'weights':
        the file, 'pd': 1-8, 'refine': 'none' | 'e' | 'r3', 'strength': 0-1}`` (a one-pass student: PD 1,
        refine 'none')."""
        return {"model": self.model.role.name, "weights": self.weights, "pd": self.pd, "refine": self.refine,
                "strength": self.strength}


@dataclass
class StudentDenoiser(Denoiser):
    r"""A :class:`Denoiser` with the defaults of a one-pass network (the distilled
    ``student.StudentUNet``): :math:`\hat x = g_\phi(y)` at full resolution, PD 1, no refinement.
    Tiles are aligned to the network's grid (8 pixels for the student) and overlap by its receptive
    radius, so tiled == whole image.

    Example:
        >>> d = StudentDenoiser(StudentUNet(ch=(8, 8, 8), blocks=(1, 1, 1)))
        >>> d.denoise(np.zeros((9, 7, 3), np.float32)).shape
        (9, 7, 3)
    """

    model: torch.nn.Module = None
    refine: str = "none"
    pd: int = 1


def make_denoiser(model: torch.nn.Module, *, input_scale: float = 1.0, refine: str = "e", pd: int = 2,
                  r3_t: int = 8, r3_p: float = 0.16, seed: int = 0, device: torch.device = torch.device("cpu"),
                  precision: str = "fp32", channels_last: bool = True, compile: bool = False,
                  strength: float = 1.0, weights: str = "") -> Denoiser:
    """A Denoiser for a network that takes PD and a refinement (a DBSNl teacher), or a StudentDenoiser
    for a one-pass network (a student: the PD and refinement arguments do not apply and are ignored).
    ``weights``: the file it came from, for reports."""
    if model.role.one_pass:
        return StudentDenoiser(model, input_scale=input_scale, device=device, precision=precision,
                               channels_last=channels_last, compile=compile, strength=strength, weights=weights)
    return Denoiser(model, input_scale=input_scale, refine=refine, pd=pd, r3_t=r3_t, r3_p=r3_p, seed=seed,
                    device=device, precision=precision, channels_last=channels_last, compile=compile,
                    strength=strength, weights=weights)
