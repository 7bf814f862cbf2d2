"""Beyond one machine (issue 33): `sdap denoise --shard K/N --skip-existing` as the tasks of a Slurm job array
write one folder, and :func:`sdap_cli.api.denoise_files_dask` on a local Dask cluster of two worker
processes, each giving exactly the files one `sdap denoise` run writes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sdap_cli.api import denoise_files_dask
from sdap_cli.cli import app
from sdap_cli.errors import ConfigError
from tests.helpers import noisy_rgb, sha, write_png

runner = CliRunner()
HAS_DASK = importlib.util.find_spec("distributed") is not None
needs_dask = pytest.mark.skipif(not HAS_DASK, reason="dask.distributed is not installed (pip install '.[dask]')")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Five small noisy photos of different sizes."""
    root = tmp_path_factory.mktemp("photos")
    for i, (h, w) in enumerate([(40, 48), (36, 36), (48, 40), (32, 44), (44, 32)]):
        write_png(root / f"img{i}.png", noisy_rgb(h, w, seed=i))
    return root


def sdap(*args) -> list[dict]:
    r = runner.invoke(app, ["denoise", *map(str, args), "--device", "cpu", "--json", "-q"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)["files"]


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder``: its relative path -> its bytes' hash."""
    return {str(p.relative_to(folder)): sha(p) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def cli_output(photos, tmp_path_factory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("cli") / "out"
    files = sdap(photos, "-o", out)
    assert [f["status"] for f in files] == ["ok"] * 5
    return tree(out)


def test_slurm_array_tasks_write_what_one_run_writes(photos, cli_output, tmp_path):
    """Two array tasks (--shard 1/2 and 2/2, --skip-existing) into one folder, then task 1 run again (a
    requeue): the first two write disjoint halves, the rerun skips all it had, the folder is one run's."""
    out = tmp_path / "out"
    first = sdap(photos, "-o", out, "--shard", "1/2", "--skip-existing")
    second = sdap(photos, "-o", out, "--shard", "2/2", "--skip-existing")
    assert {f["status"] for f in first + second} == {"ok"}
    assert sorted(f["input"] for f in first + second) == sorted(str(p) for p in photos.glob("*.png"))
    assert len(first) == 3 and len(second) == 2
    rerun = sdap(photos, "-o", out, "--shard", "1/2", "--skip-existing")
    assert [f["status"] for f in rerun] == ["skipped"] * 3
    assert tree(out) == cli_output


@needs_dask
def test_without_a_client_it_says_how_to_make_one(photos, tmp_path):
    with pytest.raises(ConfigError, match="no Dask client"):
        denoise_files_dask(photos, tmp_path / "out", device="cpu")
    with pytest.raises(ConfigError, match="shard"):
        denoise_files_dask(photos, tmp_path / "out", shard="1/2")
    with pytest.raises(ConfigError, match="unknown option"):
        denoise_files_dask(photos, tmp_path / "out", tile_size=64)
    with pytest.raises(ConfigError, match="shards"):
        denoise_files_dask(photos, tmp_path / "out", shards=0)


def test_without_dask_it_says_what_to_install(photos, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name.split(".")[0] in ("dask", "distributed"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    with pytest.raises(ConfigError, match=r"pip install 'sdap-cli\[dask\]'"):
        denoise_files_dask(photos, tmp_path / "out", device="cpu")


@needs_dask
@pytest.mark.slow
def test_dask_on_two_worker_processes_writes_what_the_cli_writes(photos, cli_output, tmp_path):
    from distributed import Client, LocalCluster

    out = tmp_path / "out"
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           host="127.0.0.1")
    try:
        with Client(cluster) as client:
            results = denoise_files_dask(photos, out, client=client, device="cpu")
            assert sorted(r.input for r in results) == sorted(str(p) for p in photos.glob("*.png"))
            assert [r.status for r in results] == ["ok"] * 5
            workers = client.run(lambda: __import__("os").getpid())
            assert len(set(workers.values())) == 2
            assert tree(out) == cli_output
            again = denoise_files_dask(photos, out, client=client, shards=3, device="cpu")   # resumes: all done
            assert sorted(r.status for r in again) == ["skipped"] * 5
    finally:
        cluster.close()
