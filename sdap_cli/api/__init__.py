"""sdap as a library: the facade a notebook, a Dask or Ray worker and the CLI share.

* :func:`denoise` -- one image held in memory (a numpy array), denoised as `sdap denoise` would denoise
  it saved as a file: same shape and dtype back.
* :class:`Denoiser` -- the network loaded once, called on many images; :meth:`Denoiser.run` also says what
  was decided for each (:class:`ImageResult`).
* :func:`denoise_files` -- files, folders and globs, exactly as `sdap denoise` (which runs it): an iterator
  of :class:`FileResult`, one per file; :class:`FileBatch` is the same batch for a ready
  :class:`~sdap_cli.config.DenoiseConfig`.

Importing this package does not import torch; the first network built does. Errors are the typed
:mod:`sdap_cli.errors` (``InputError``, ``ConfigError``, ``CheckpointError``, ``OutputError``,
``OutOfMemory``), each with a one-line message. See docs/python-api.md.
"""

from .arrays import Denoiser, ImageResult, denoise
from .cluster import denoise_files_dask  # Dask itself is imported when it is called (docs/cluster.md)
from .files import DenoiseResult, FileBatch, FileResult, Progress, denoise_files

__all__ = ["denoise", "Denoiser", "ImageResult", "denoise_files", "FileBatch", "FileResult", "DenoiseResult",
           "Progress"]
