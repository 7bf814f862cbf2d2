"""Denoise files on a Dask cluster: :func:`denoise_files_dask`, the batch of :func:`denoise_files` split
into shards, one Dask task per shard.

Each task runs ``denoise_files(..., shard="K/N", skip_existing=True)`` in a worker process, so it loads the
network once and writes its outputs itself (atomically, as `sdap denoise` does): inputs and outputs must be
on a file system every worker sees. A task that fails or a worker that dies leaves finished outputs in
place; running the same call again resumes. Dask (``pip install 'sdap-cli[dask]'``) is imported when the
function is called, never by ``import sdap_cli``. See docs/cluster.md.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

from ..errors import ConfigError
from .files import FileResult, denoise_config, denoise_files

__all__ = ["denoise_files_dask"]

_INSTALL = "pip install 'sdap-cli[dask]'"


def _absolute(path: str | os.PathLike) -> str:
    """``path`` as the client sees it, so a worker with another working directory finds the same file."""
    text = os.fspath(path)
    if text == "-":
        raise ConfigError("denoise_files_dask: stdin and stdout ('-') are not files a worker can read or write")
    return os.path.abspath(os.path.expanduser(text))


def _run_shard(inputs: list[str], output: str | None, shard: str, options: dict[str, Any]) -> list[dict]:
    """One Dask task: the files of part ``shard`` of the batch, denoised, as plain dicts (picklable by any
    version of sdap on the client)."""
    return [asdict(r) for r in denoise_files(inputs, output, shard=shard, **options)]


def denoise_files_dask(inputs: str | os.PathLike | list, output: str | os.PathLike | None = None, *,
                       client: Any = None, shards: int | None = None, **options: Any) -> list[FileResult]:
    """Denoise image files as `sdap denoise` does, on the workers of a Dask cluster.

    The inputs are split into ``shards`` parts exactly as ``sdap denoise --shard K/N`` splits them; each part
    is one Dask task calling :func:`~sdap_cli.api.denoise_files` with ``skip_existing=True`` (unless
    ``overwrite=True``), so the outputs are the files `sdap denoise` writes, and a second call after an
    interruption only does what is left.

    Args:
        inputs: files, folders or glob patterns, as for :func:`~sdap_cli.api.denoise_files`; relative paths
            are made absolute here (the workers must see the same file system).
        output: an output folder (or None: beside each input, with the suffix '_denoised').
        client: a ``dask.distributed.Client``; None: the current one (``distributed.get_client()``).
        shards: how many tasks; None: one per worker thread the cluster has now (at least 1). Give it when
            the cluster scales up later (dask-jobqueue), e.g. a few per worker you expect.
        **options: those of :func:`~sdap_cli.api.denoise_files` (``device``, ``weights``, ``recursive``,
            ``model``, ...), except ``shard`` (this function sets it) and ``progress``.

    Returns:
        The :class:`~sdap_cli.api.FileResult` of every input, shard 1's first, each shard's in its order.

    Raises:
        ConfigError: Dask is not installed, there is no client, a bad option or value (before any task runs).
        SdapError: what stopped a shard (weights, device), re-raised from its worker.

    Example:
        >>> from dask.distributed import Client, LocalCluster                        # doctest: +SKIP
        >>> with LocalCluster(n_workers=2, threads_per_worker=1) as cluster:          # doctest: +SKIP
        ...     with Client(cluster) as client:
        ...         results = denoise_files_dask("photos/", "clean/", client=client, device="cpu")
    """
    try:
        import distributed
    except ImportError:
        raise ConfigError(f"denoise_files_dask needs Dask: {_INSTALL}") from None

    for name in ("shard", "progress"):
        if options.get(name) is not None:
            raise ConfigError(f"denoise_files_dask: {name}= is not an option here (shards= sets the split)")
    if shards is not None and (isinstance(shards, bool) or not isinstance(shards, int) or shards < 1):
        raise ConfigError(f"shards must be a whole number of at least 1, not {shards!r}")
    if not options.get("overwrite"):
        options.setdefault("skip_existing", True)
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    paths = [_absolute(x) for x in items]
    out = None if output is None else _absolute(output)
    if isinstance(options.get("weights"), (str, os.PathLike)) and os.path.exists(options["weights"]):
        options["weights"] = _absolute(options["weights"])
    denoise_config(paths, out, shard=f"1/{shards or 1}", **options)   # a bad option: raised here, at once

    if client is None:
        try:
            client = distributed.get_client()
        except ValueError:
            raise ConfigError("denoise_files_dask: no Dask client; pass client= or create a "
                              "dask.distributed.Client first") from None
    if shards is None:
        shards = max(1, sum(client.nthreads().values()))
    futures = [client.submit(_run_shard, paths, out, f"{k}/{shards}", options, pure=False,
                             key=f"sdap-shard-{k}-of-{shards}-{os.urandom(4).hex()}")
               for k in range(1, shards + 1)]
    try:
        parts = client.gather(futures)
    finally:
        for f in futures:
            f.release()
    return [FileResult(**d) for part in parts for d in part]
