from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def keep_threads():
    """Commands run in-process set torch's thread count for the whole process (``--threads``); put it
    back after each test, so that no test inherits another's (bitwise comparisons depend on it)."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(params=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def device(request) -> torch.device:
    return torch.device(request.param)


@pytest.fixture
def tiny_model():
    """A DBSNl narrow enough for millisecond tests (random init, seeded)."""
    from sdap_cli.method.dbsnl import DBSNl

    torch.manual_seed(0)
    net = DBSNl(base_ch=8, num_module=2).eval()
    with torch.no_grad():                      # centre the random output inside [0, 1] so clamping is rare
        net.tail[-1].bias.fill_(0.5)
    return net


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data; the test is skipped when it is absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared data not available: {p}")
    return p
