"""Denoise images held in memory: :class:`Denoiser` (load once, denoise many) and :func:`denoise` (one call).

An array goes through the same steps as a file in `sdap denoise`: it becomes the decoded
:class:`~sdap_cli.io.samples.Image` a file of the same samples would give (``io.images.image_from_array``:
gray, alpha, out-of-range floats), is denoised by the same network with the same per-image step
(``inference.denoisers.denoise_image``: the ``--auto`` measurement and path, tiling, precision) and comes
back as the samples that file's output would hold (``io.encoding.output_samples``: alpha untouched, the
sample type kept). So ``denoise(a, **options)`` equals what ``sdap denoise`` writes for ``a`` saved
losslessly, with the same options.

Options are the fields of :class:`~sdap_cli.config.InferenceConfig`, checked by it; as on the command
line, giving ``model``, ``refine``, ``pd``, ``r3_t``, ``r3_p``, ``strength`` or ``adapt`` fixes the path
(no ``--auto``). torch is imported when the first network is built, not when this module is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ValidationError

from ..config import InferenceConfig
from ..errors import ConfigError, InputError
from ..io.encoding import output_samples
from ..io.images import Image, image_from_array

if TYPE_CHECKING:
    from ..inference.adaptive import AdaptiveDenoiser
    from ..inference.denoiser import Denoiser as Network

__all__ = ["Denoiser", "ImageResult", "denoise", "array_image", "inference_config", "option_error"]

TileProgress = Callable[[int, int], None]
"""``progress(done, total)`` after each tile of an image; it may raise to cancel (the exception propagates)."""


def option_error(e: ValidationError, unknown: Sequence[str] = ()) -> ConfigError:
    """A pydantic validation error as a one-line ConfigError naming each option (``pd: ...; tile: ...``);
    an unknown option's message lists ``unknown`` (the valid names)."""
    parts = []
    for err in e.errors():
        name = ".".join(str(x) for x in err["loc"] if x != "inference")
        if err["type"] == "extra_forbidden":
            msg = "unknown option" + (f" (options: {', '.join(unknown)})" if unknown else "")
        else:
            msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{name}: {msg}" if name else msg)
    return ConfigError("; ".join(parts))


def _given(options: dict[str, Any]) -> dict[str, Any]:
    """The options actually given: None means 'not given' (the default), as for the command line's flags."""
    return {k: v for k, v in options.items() if v is not None}


def inference_config(**options: Any) -> InferenceConfig:
    """The :class:`InferenceConfig` of ``options`` (None values left at their defaults).

    Raises:
        ConfigError: an unknown option or a bad value, on one line.

    Example:
        >>> inference_config(pd=3, tile=None).model_fields_set
        {'pd'}
    """
    try:
        return InferenceConfig(**_given(options))
    except ValidationError as e:
        raise option_error(e, list(InferenceConfig.model_fields)) from None


def array_image(image: np.ndarray) -> Image:
    """The :class:`Image` a lossless file of ``image``'s samples decodes to (gray, alpha, out-of-range floats).

    Args:
        image: ``(H, W)`` gray, ``(H, W, 1)`` gray, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA; uint8 (0-255),
            uint16 (0-65535), float16 or float32 (nominally [0, 1]); any strides. It is never modified.

    Raises:
        InputError: not such an array (another type, dtype or shape, 2 or 5+ channels, no pixels), one line.

    Example:
        >>> array_image(np.zeros((4, 5), np.uint8)).channels, array_image(np.zeros((4, 5, 4), np.float32)).alpha.shape
        (1, (4, 5))
    """
    if not isinstance(image, np.ndarray):
        raise InputError(f"image: expected a numpy array (H, W[, 3 or 4]), got {type(image).__name__}")
    if image.dtype == bool:
        raise InputError("image: unsupported sample type bool (uint8, uint16, float16 and float32 are supported)")
    if image.ndim == 3 and image.shape[2] == 2:
        raise InputError(f"image: unsupported image layout {image.shape}: give gray as (H, W), colour as "
                         "(H, W, 3) RGB or (H, W, 4) RGBA")
    return image_from_array(image, "image", "tiff")


@dataclass(frozen=True, eq=False)
class ImageResult:
    """What :meth:`Denoiser.run` gives for one image.

    Attributes:
        image: the denoised image, of the input's shape and dtype (floats clipped to [0, 1], except samples
            outside [0, 1] or NaN, which are returned as given; alpha as given).
        noise: with ``--auto``, the measurement and path: ``{'path': 'clean' | 'light' | 'heavy' |
            'one-pass', 'sigma': noise std in 8-bit units (>= 0), 'rho1', 'rho2': neighbour correlations
            in [-1, 1]}``; None when the path is fixed. The same dict as ``FileResult.noise``.
        network: what ran: ``{'model': 'teacher' | 'student', 'weights': file, 'pd': 1-8, 'refine': 'none' |
            'e' | 'r3', 'strength': 0-1}`` plus ``'blend'`` (0-1) with ``--auto``; None when nothing ran
            (the clean path). The same dict as ``FileResult.network``.
        seconds: the time the call took.
    """

    image: np.ndarray
    noise: dict | None
    network: dict | None
    seconds: float


class Denoiser:
    """A network loaded once (weights, device, precision, path rules) to denoise many images.

    Args:
        weights: a weights file (``.safetensors`` or a checkpoint); None: the shipped network ``model`` picks
            (the one-pass student on every device, the SDAP teacher with teacher options).
        device: 'auto', 'cpu', 'cuda' or 'mps'. precision: 'auto', 'fp32', 'bf16' or 'fp16'.
        adapt_on: with ``adapt=True``, the images (arrays as :meth:`run` takes) to fine-tune a copy of the
            weights on first (``--adapt``).
        **options: the other fields of :class:`~sdap_cli.config.InferenceConfig`: ``model``, ``refine``,
            ``pd`` (1-8), ``tile`` (>= 16, None: from free memory), ``tile_overlap``, ``r3_t``, ``r3_p``,
            ``seed``, ``threads``, ``strength`` (0-1), ``compile``, ``adapt``, ``adapt_iters``, ``adapt_lr``,
            ``auto``.

    Calling it (``den(image)``) returns the denoised array; :meth:`run` returns an :class:`ImageResult`
    with what was decided for the image, and ``den.last`` holds the last call's (one object per thread:
    ``last`` is shared). A Denoiser pickles as its options and rebuilds its network where it is unpickled
    (a Dask or Ray worker).

    Raises:
        ConfigError: an unknown option, a bad value or combination, or a device that is absent.
        CheckpointError: a weights file that is missing or not a network sdap knows.

    Example:
        >>> den = Denoiser(device="cpu")                                      # doctest: +SKIP
        >>> den(noisy).shape == noisy.shape, den.last.noise["path"]           # doctest: +SKIP
        (True, 'one-pass')
    """

    def __init__(self, weights: str | PathLike | None = None, device: str = "auto", precision: str = "auto", *,
                 adapt_on: Sequence[np.ndarray] | None = None, **options: Any) -> None:
        config = inference_config(device=device, precision=precision, **options)
        if isinstance(adapt_on, np.ndarray):
            adapt_on = [adapt_on]
        if config.adapt and not adapt_on:
            raise ConfigError("adapt: give the images to fine-tune on (adapt_on=[...]); denoise() and "
                              "denoise_files() adapt to their own inputs")
        if adapt_on and not config.adapt:
            raise ConfigError("adapt_on: needs adapt=True")
        self._state = {"weights": weights, "config": config, "adapt_on": adapt_on}
        images = [array_image(a).rgb for a in adapt_on] if adapt_on else []
        self._setup(config, None if weights is None else Path(weights), lambda: images)

    @classmethod
    def from_config(cls, config: InferenceConfig, weights: Path | None = None, *,
                    adapt_images: Callable[[], list[np.ndarray]] | None = None, save_adapted: Path | None = None,
                    on_adapt_step: Callable[[int, int, float], None] | None = None) -> Denoiser:
        """The Denoiser of a validated config (as `sdap denoise` builds it); with ``config.adapt``,
        ``adapt_images()`` gives the float ``(H, W, 3)`` images to fine-tune on (called once, after the
        weights loaded), the adapted weights are saved to ``save_adapted`` if given, and ``on_adapt_step(step,
        steps, loss)`` follows the fine-tuning."""
        if config.adapt and adapt_images is None:
            raise ConfigError("adapt: give adapt_images, the images to fine-tune on")
        self = cls.__new__(cls)
        self._state = {"weights": weights, "config": config, "adapt_on": None}
        self._setup(config, weights, adapt_images, save_adapted, on_adapt_step)
        return self

    def _setup(self, config: InferenceConfig, weights: Path | None, adapt_images, save_adapted=None,
               on_adapt_step=None) -> None:
        from ..inference.denoisers import build_denoiser, choose_weights, inference_device
        from ..inference.runtime import runtime_denoiser

        self.config, self.last = config, None
        network, self.runtime_note = runtime_denoiser(config, weights)
        if network is not None:             # the CPU default on ONNX Runtime: no torch (inference/runtime.py)
            self._network = network
            return
        device = inference_device(config)
        loaded = choose_weights(weights, config, device)
        if config.adapt:
            from ..training.adapt import adapt_weights           # training (and scipy) only for adapt

            adapt_weights(loaded, config, adapt_images(), device, save_adapted, on_step=on_adapt_step)
        self._network: Network | AdaptiveDenoiser = build_denoiser(loaded, config, device, given=weights is not None)

    @property
    def device(self) -> str:
        """Where the network runs: 'cpu', 'cuda:0', 'mps'."""
        return str(self._network.device)

    @property
    def precision(self) -> str:
        """The network's arithmetic: 'fp32', 'bf16' or 'fp16'."""
        return self._network.precision

    @property
    def runtime(self) -> str:
        """What runs the network: 'onnxruntime' (the CPU default, ``inference.runtime``) or 'torch'; when torch
        runs the default, :attr:`runtime_note` says why."""
        return getattr(getattr(self._network, "heavy", self._network), "runtime", "torch")

    @property
    def auto(self) -> bool:
        """Whether each image's path is chosen from its measured noise (``--auto`` in effect)."""
        from ..inference.denoisers import auto_active

        return auto_active(self.config)

    @property
    def network(self) -> dict | None:
        """Without ``--auto``: what runs on every image (as :attr:`ImageResult.network`); None with it (per image)."""
        return None if self.auto else self._network.describe()

    def denoise_samples(self, img: Image, progress: TileProgress | None = None
                        ) -> tuple[np.ndarray, dict | None, dict | None]:
        """The per-image step of `sdap denoise` on a decoded image: its colour samples denoised (``(H, W, 1 or
        3)`` in its sample type), the noise and path (``ImageResult.noise``) and what ran (``ImageResult.network``).

        Raises:
            OutOfMemory: even the smallest tile did not fit. Whatever ``progress`` raised.
        """
        from ..inference.denoisers import denoise_image

        return denoise_image(self._network, img.colour, self.config, progress, out=img.output_buffer())

    def run(self, image: np.ndarray, progress: TileProgress | None = None) -> ImageResult:
        """Denoise one image; the result and what was decided for it (also kept as ``self.last``).

        Args:
            image: ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` (alpha last, returned unchanged);
                uint8, uint16, float16 or float32 in [0, 1]; any strides. It is not modified.
            progress: ``progress(done, total)`` after each tile (not called when nothing runs: the clean
                path); whatever it raises propagates and nothing is returned (cancel).

        Raises:
            InputError: ``image`` is not such an array. OutOfMemory: not even the smallest tile fits.
        """
        t0 = time.perf_counter()
        img = array_image(image)
        colour, noise, network = self.denoise_samples(img, progress)
        out = output_samples(colour, img)
        out = (out[..., 0] if image.ndim == 2 else out).astype(image.dtype, copy=False)
        self.last = ImageResult(out, noise, network, time.perf_counter() - t0)
        return self.last

    def __call__(self, image: np.ndarray, progress: TileProgress | None = None) -> np.ndarray:
        """:meth:`run`'s image: the denoised array, of ``image``'s shape and dtype."""
        return self.run(image, progress).image

    def __getstate__(self) -> dict:
        if self.config.adapt and not self._state["adapt_on"]:
            raise TypeError("a Denoiser adapted to files cannot be pickled: save the adapted weights "
                            "(save_adapted=) and pass them as weights=")
        state = dict(self._state)
        state["config"] = _given_fields(state["config"])
        return state

    def __setstate__(self, state: dict) -> None:
        options = state["config"]
        self.__init__(state["weights"], adapt_on=state["adapt_on"], **options)

    def __repr__(self) -> str:
        return f"Denoiser(device={self.device!r}, precision={self.precision!r}, auto={self.auto})"


def _given_fields(config: BaseModel) -> dict[str, Any]:
    """The fields set on ``config``, so a rebuilt config marks the same ones as given."""
    return {k: getattr(config, k) for k in config.model_fields_set}


def denoise(image: np.ndarray, *, weights: str | PathLike | None = None, progress: TileProgress | None = None,
            **options: Any) -> np.ndarray:
    """Denoise one image held in memory: what `sdap denoise` writes for it, as an array.

    Builds a :class:`Denoiser` for this one call; to denoise several images, build one and call it.

    Args:
        image: ``(H, W)`` gray, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA (``(H, W, 1)`` too); uint8 (0-255),
            uint16 (0-65535), float16 or float32 (in [0, 1]); any strides (Fortran order, transposed or
            reversed views). It is not modified.
        weights: a weights file; None: the shipped network.
        progress: ``progress(done, total)`` after each tile; whatever it raises propagates (cancel).
        **options: ``device``, ``precision`` and the other :class:`Denoiser` options; ``adapt=True``
            fine-tunes a copy of the weights on ``image`` first.

    Returns:
        The denoised image: same shape and dtype (floats in [0, 1]; samples given outside [0, 1] or NaN
        unchanged; alpha unchanged).

    Raises:
        InputError: ``image`` is not such an array. ConfigError: an unknown option or a bad value.
        CheckpointError: bad weights. OutOfMemory: not even the smallest tile fits.
    """
    array_image(image)                              # a bad image is refused before a network is loaded
    adapt_on = [image] if options.get("adapt") else None
    return Denoiser(weights, adapt_on=adapt_on, **options)(image, progress)
