"""Build the :class:`~sdap_cli.inference.denoiser.Denoiser` a command asks for, from its InferenceConfig.

One rule for `sdap denoise` and `sdap evaluate`: choose the weights (``--weights``, else the shipped
network ``--model`` picks), optionally adapt them to the images first (``--adapt``), then wrap them
with the device, precision, PD factor, refinement and strength of the config. With ``--auto`` (the
default, unless an option in ``FIXED_OPTIONS`` was given) that Denoiser is the heavy path of an
:class:`~sdap_cli.inference.adaptive.AdaptiveDenoiser`. Its light path (light, white or still-correlated
noise, and the over-read "noise" of clean detailed photos) is, for a teacher, the shipped noise-conditional
student told the measured noise (:func:`light_path_network`; issue 32: it keeps what the teacher at PD-1
smooths away: Kodak24's kodim13, clean, 31.4 dB -> 48.8 with the student of 2026-12-07 I), else a teacher at
PD-1 without refinement; for a student passed with ``--weights``, that student. The heavy path's images below
``adaptive.SIGMA_HEAVY`` go to that student too (``AdaptiveDenoiser.student_light``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config import InferenceConfig
from ..errors import ConfigError, OutOfMemory
from .adaptive import AdaptiveDenoiser
from .checkpoints import LoadedWeights, load_weights, shipped_student_path

if TYPE_CHECKING:       # torch is imported where a torch network is built, not by the runtime path's imports
    import torch

    from .denoiser import Denoiser

__all__ = ["TEACHER_OPTIONS", "FIXED_OPTIONS", "auto_active", "teacher_options", "choose_weights", "build_denoiser",
           "denoise_image", "count_paths", "inference_device", "light_path_denoiser", "light_path_network"]

TEACHER_OPTIONS = ("refine", "pd", "r3_t", "r3_p", "adapt")
# options that choose the path themselves: given on the command line, they switch --auto off
FIXED_OPTIONS = TEACHER_OPTIONS + ("strength", "model")


def auto_active(inf: InferenceConfig) -> bool:
    """--auto is on and no option of FIXED_OPTIONS was given (``--model auto`` does not count)."""
    given = [o for o in FIXED_OPTIONS if o in inf.model_fields_set]
    return inf.auto and all(o == "model" and inf.model == "auto" for o in given)


def teacher_options(inf: InferenceConfig) -> list[str]:
    """The options of :data:`TEACHER_OPTIONS` given (on the command line or in a config) and set."""
    return [o for o in TEACHER_OPTIONS if o in inf.model_fields_set and getattr(inf, o)]


def choose_weights(weights: Path | None, inf: InferenceConfig, device: torch.device) -> LoadedWeights:
    """Load ``weights`` (checked against ``inf.model``) or the shipped network ``inf.model`` picks.

    'auto' without a weights file: the shipped student on every device if there is one, unless a teacher
    option (--refine, --pd, --r3-t, --r3-p, --adapt) was given; the teacher otherwise. (Until issue 32 the
    teacher's paths were CUDA's default; the student beats them on every set measured, detailed clean
    photos most: Kodak24 worst 35.70 dB against 31.37.)
    """
    teacher_opts = teacher_options(inf)
    if weights is None:
        student = shipped_student_path()
        if inf.model == "student" and student is None:
            raise ConfigError("--model student: this installation ships no student weights; pass --weights FILE")
        use_student = inf.model == "student" or (inf.model == "auto" and student is not None and not teacher_opts)
        loaded = load_weights(student if use_student else None)
    else:
        loaded = load_weights(weights)
    is_student = loaded.model.role.one_pass
    if inf.model == "teacher" and is_student:
        raise ConfigError(f"{loaded.path}: --model teacher, but this file holds a distilled student")
    if inf.model == "student" and not is_student:
        raise ConfigError(f"{loaded.path}: --model student, but this file holds a blind-spot teacher (DBSNl)")
    if is_student and teacher_opts:
        flags = ", ".join("--" + o.replace("_", "-") for o in teacher_opts)
        raise ConfigError(f"{flags}: options of the blind-spot teacher; the student ({loaded.path.name}) makes "
                          "one plain pass. Use --model teacher")
    return loaded


def inference_device(inf: InferenceConfig) -> torch.device:
    """The device ``inf`` asks for (a one-line ConfigError when it is absent); sets the CPU thread
    count when ``inf.threads`` is given."""
    import torch

    from .device import choose_device

    device = choose_device(inf.device)
    if inf.threads:
        torch.set_num_threads(inf.threads)
    return device


def light_path_denoiser(loaded: LoadedWeights, *, device: torch.device, precision: str,
                        compile: bool = False) -> Denoiser:
    """The light path's network: a teacher at PD-1 without refinement (the Wiener blend after it is
    ``AdaptiveDenoiser``'s); the one rule for `sdap denoise`, `evaluate` and ``distill --targets auto``."""
    from .denoiser import make_denoiser

    return make_denoiser(loaded.model, input_scale=loaded.input_scale, refine="none", pd=1, device=device,
                         precision=precision, compile=compile, weights=str(loaded.path))


def light_path_network(loaded: LoadedWeights, *, device: torch.device, precision: str,
                       compile: bool = False) -> Denoiser:
    """The light path of a teacher's automatic paths (`sdap denoise -w TEACHER`): the shipped
    noise-conditional student, told each image's measured noise and Wiener-blended as on its own one-pass
    path (``adaptive.onepass_blend_weight``), where this installation ships one; else the teacher at PD-1
    (:func:`light_path_denoiser`). The student learned the light path's outputs from the shipped teacher and
    clean detailed photos beside them, so it keeps the texture the teacher at PD-1 takes for noise when the
    measurement over-reads it (issue 32). Distillation's ``--targets auto`` keeps the teacher's own
    light path (:func:`light_path_denoiser`): a student does not learn from a student."""
    from .denoiser import make_denoiser

    path = shipped_student_path()
    student = load_weights(path) if path is not None else None
    if student is None or not getattr(student.model, "cond_ch", 0):
        return light_path_denoiser(loaded, device=device, precision=precision, compile=compile)
    return make_denoiser(student.model, input_scale=student.input_scale, device=device, precision=precision,
                         compile=compile, weights=str(student.path))


def build_denoiser(loaded: LoadedWeights, inf: InferenceConfig, device: torch.device, *, given: bool = True
                   ) -> Denoiser | AdaptiveDenoiser:
    """Wrap loaded (and, with ``--adapt``, already adapted: ``training.adapt.adapt_weights``) weights in
    a Denoiser (a StudentDenoiser for a one-pass student), or in an AdaptiveDenoiser when
    :func:`auto_active`. Its light path: for a teacher, :func:`light_path_network` (the shipped conditional
    student, else the teacher at PD-1); for a student, the teacher at PD-1 of the shipped teacher, or the
    student itself when it is conditional or was ``given`` with ``--weights``."""
    from .denoiser import make_denoiser
    from .device import pick_precision

    den = make_denoiser(loaded.model, input_scale=loaded.input_scale, refine=inf.refine, pd=inf.pd,
                        r3_t=inf.r3_t, r3_p=inf.r3_p, seed=inf.seed, device=device,
                        precision=pick_precision(inf.precision, device), compile=inf.compile,
                        strength=inf.strength, weights=str(loaded.path))
    if not auto_active(inf):
        return den
    if loaded.model.role.one_pass and (given or den.conditional):   # a conditional student: no light path
        return AdaptiveDenoiser(den, den)
    if loaded.model.role.one_pass:
        return AdaptiveDenoiser(den, light_path_denoiser(load_weights(None), device=device, precision=den.precision,
                                                         compile=den.compile))
    return AdaptiveDenoiser(den, light_path_network(loaded, device=device, precision=den.precision,
                                                    compile=den.compile))


def denoise_image(den: Denoiser | AdaptiveDenoiser, image: np.ndarray, inf: InferenceConfig, on_tile=None,
                  out: np.ndarray | None = None) -> tuple[np.ndarray, dict | None, dict | None]:
    """The per-image step: ``(H, W, 3)`` samples (float in [0, 1], or the file's integers) -> denoised
    (``out`` filled, else float32), tiled as ``inf`` says; then (``--auto``) the measured noise and the
    path taken (``{'path', 'sigma', 'rho1', 'rho2'}``, else None), and what ran (``Denoiser.describe()``,
    plus ``blend`` under ``--auto``; None where nothing ran: the clean path)."""
    try:
        if isinstance(den, AdaptiveDenoiser):
            x, decision = den.denoise(image, tile=inf.tile, overlap=inf.tile_overlap, on_tile=on_tile, out=out)
            return x, decision.to_dict(), decision.network
        x = den.denoise(image, tile=inf.tile, overlap=inf.tile_overlap, on_tile=on_tile, out=out)
        return x, None, den.describe()
    except MemoryError:                                     # numpy: the whole-image buffers
        raise OutOfMemory(f"out of memory while denoising ({image.shape[1]}x{image.shape[0]} pixels)") from None
    except Exception as e:                                  # noqa: BLE001 - only out-of-memory is translated
        if "torch" in sys.modules and _torch_oom(e):         # the network's, after the tile retries
            raise OutOfMemory("out of memory even at the smallest tile; try --device cpu or --precision bf16") \
                from None
        raise


def _torch_oom(e: BaseException) -> bool:
    from .device import is_oom

    return is_oom(e)


def count_paths(taken: list[tuple[str, dict | None]]) -> dict[str, int]:
    """How many images took each --auto path, in the order clean, light, heavy (paths not taken left out).

        >>> count_paths([("heavy", None), ("light", None), ("heavy", None)])
        {'light': 1, 'heavy': 2}
    """
    paths = [p for p, _ in taken]
    return {p: paths.count(p) for p in ("clean", "light", "heavy", "one-pass") if p in paths}
