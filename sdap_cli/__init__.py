"""sdap: self-supervised real-noise removal with SDAP (Pan et al., ICCV 2023).

The Python API (``sdap_cli.api``) is reachable from here and imported on first use, so ``import sdap_cli``
imports neither torch nor Typer nor rich::

    from sdap_cli import denoise, Denoiser, denoise_files
    from sdap_cli.errors import InputError, ConfigError
"""

import os as _os

# OpenCV refuses to decode images over 2^30 pixels (a gigapixel panorama) unless this is raised before
# cv2 is first imported; sdap checks each image's size against the memory available instead
# (sdap_cli/inference/memory.py). A value the user set is kept.
_os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(1 << 40))

__version__ = "0.1.0"

_API = ("denoise", "Denoiser", "ImageResult", "denoise_files", "FileBatch", "FileResult", "DenoiseResult")
__all__ = ["__version__", *_API]


def version_line() -> str:
    """``sdap X (torch Y)``, the torch version read from the installed package's metadata (no import)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        torch_version = "not installed"
    return f"sdap {__version__} (torch {torch_version})"


def __getattr__(name: str):
    """The public API (``sdap_cli.api``) and ``errors``, imported when first asked for."""
    if name in _API:
        from . import api

        return getattr(api, name)
    if name == "errors":
        from . import errors

        return errors
    raise AttributeError(f"module 'sdap_cli' has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(_API) | {"errors"})
