"""Fast checks of ``benchmarks/train_step.py``.

The benchmark's port of the reference SDAP step is written from the method notes (sdap-method.md,
section 2). These tests check three things:

* the port's 25 sub-images partition each 5x5 cell;
* for the same permutations, the port and ``sdap_loss`` compute the same loss;
* the timing helpers run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import assert_partitions_cells, loaded_script

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "train_step.py"

TINY = dict(base_ch=8, num_module=1, batch=2, patch=20)


@pytest.fixture(scope="module")
def ts():
    with loaded_script(SCRIPT, "sdap_train_step_benchmark") as mod:
        yield mod


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny ops are much slower with several OpenMP threads on a busy machine; use one (conftest's
    keep_threads restores the count)."""
    torch.set_num_threads(1)


def test_port_sub_images_partition_each_cell(ts):
    np.random.seed(0)
    b, c, H, W, p = 2, 3, 20, 15, 5
    y = torch.arange(b * c * H * W, dtype=torch.float32).view(b, c, H, W)     # every pixel unique
    subs = torch.stack(ts.ref_sample(y, p))                                    # numpy shuffle path
    assert_partitions_cells(subs, y, p)
    # channels share the in-cell position: channel offsets are constant
    assert torch.equal(subs[:, :, 1] - subs[:, :, 0], torch.full_like(subs[:, :, 0], H * W))


def test_port_masks_select_one_element_per_cell(ts):
    np.random.seed(1)
    y = torch.zeros(2, 3, 10, 10)
    mask = ts.ref_generate_mask_pair(y, 5)
    assert mask.shape == (25, 2 * 2 * 2 * 25)
    per_cell = mask.view(25, -1, 25)                     # (sub-image, cell, in-cell position)
    assert torch.equal(per_cell.sum(-1), torch.ones(25, 8, dtype=torch.long))   # one pick per cell
    assert torch.equal(per_cell.sum(0), torch.ones(8, 25, dtype=torch.long))    # each position once


def test_port_follows_given_permutation(ts):
    """Sub-image k at cell (i, j) is pixel (5i + perm[k] // 5, 5j + perm[k] % 5)."""
    from sdap_cli.method.sampler import rsg_sample

    g = torch.Generator().manual_seed(3)
    y = torch.rand(2, 3, 10, 15, generator=g)
    perm = torch.rand(2, 2, 3, 25, generator=g).argsort(-1).numpy()
    subs = torch.stack(ts.ref_sample(y, 5, perm))
    k, b, i, j = 7, 1, 1, 2
    pos = perm[b, i, j, k]
    assert torch.equal(subs[k, b, :, i, j], y[b, :, 5 * i + pos // 5, 5 * j + pos % 5])
    assert torch.equal(subs, rsg_sample(y, 5, perm=torch.from_numpy(perm)))


def test_port_loss_equals_sdap_loss_for_same_permutations(ts):
    res = ts.check_equivalence(device="cpu", seed=0, **TINY)
    assert res["rel_err_rsg_perm"] <= 1e-5
    assert res["rel_err_sdap_loss"] <= 1e-5
    assert res["loss_reference"] > 0


def test_check_cli(ts, capsys):
    out = ts.main(["--check"])
    assert out["check"]["rel_err_sdap_loss"] <= 1e-5
    assert "check OK" in capsys.readouterr().out


@pytest.mark.parametrize("variant", ["reference", "ours-fp32", "ours-bf16"])
def test_timing_returns_positive_numbers(ts, variant):
    if variant not in ts.available_variants(torch.device("cpu")):
        pytest.skip("bf16 not supported on this CPU")
    r = ts.time_train_step(variant, device="cpu", warmup=0, steps=1, **TINY)
    assert r["variant"] == variant
    assert r["s_per_step"] > 0 and r["it_per_s"] > 0 and len(r["times"]) == 1
    assert np.isfinite(r["loss"])


@pytest.mark.parametrize("kind", ["reference", "ours"])
def test_sampler_timing_positive(ts, kind):
    r = ts.time_sampler(kind, device="cpu", batch=2, patch=20, repeats=1)
    assert r["s_per_call"] > 0
