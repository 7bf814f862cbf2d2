"""The refinement table is the one list of modes: the config's choices, the networks' and the
benchmark's MAC count (passes) are derived from it or checked against it here."""

import typing

import numpy as np
import pytest

from sdap_cli.config import BenchmarkConfig, InferenceConfig, RefineMode
from sdap_cli.inference.denoiser import Denoiser
from sdap_cli.inference.tiling import required_margin
from sdap_cli.method.dbsnl import DBSNl
from sdap_cli.method.refine import REFINEMENTS
from sdap_cli.training_config import DistillConfig


def _choices(annotation) -> tuple:
    while typing.get_origin(annotation) is list:
        annotation = typing.get_args(annotation)[0]
    return typing.get_args(annotation)


def test_config_choices_are_the_table():
    table = set(REFINEMENTS)
    assert set(typing.get_args(RefineMode)) == table
    assert set(_choices(InferenceConfig.model_fields["refine"].annotation)) == table
    assert set(_choices(DistillConfig.model_fields["teacher_refine"].annotation)) == table
    assert set(_choices(BenchmarkConfig.model_fields["refine"].annotation)) == table
    assert set(DBSNl.role.refines) == table


@pytest.mark.parametrize("refine, passes", [("none", 1), ("e", 2), ("r3", 1 + 3)])
def test_passes_count_the_network_calls(tiny_model, refine, passes):
    """What the benchmark multiplies the MACs by is the number of network calls per (one-tile) image."""
    den = Denoiser(tiny_model, refine=refine, r3_t=3, precision="fp32")
    calls = []
    real = den.network
    den.network = lambda x: calls.append(x.shape) or real(x)
    den.denoise(np.random.default_rng(0).random((12, 14, 3), dtype=np.float32))
    assert den.passes == passes == len(calls)


def test_margin_comes_from_the_table():
    assert [required_margin(9, 2, r) for r in ("none", "e", "r3")] == [58, 88, 90]
    r = DBSNl(base_ch=8, num_module=2).receptive_radius
    for name, mode in REFINEMENTS.items():
        den = Denoiser(DBSNl(base_ch=8, num_module=2), refine=name, pd=2)
        assert den.margin == -(-(2 * r + mode.margin(r)) // 2) * 2
