from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
HAS_CUDA = torch.cuda.is_available()
"""Asked once, before any test hides the GPU: the CUDA runtime reads ``CUDA_VISIBLE_DEVICES`` when first
asked, so the fixture below setting it for subprocesses leaves this process's CUDA as it is."""
os.environ.setdefault("SDAP_CACHE_DIR", tempfile.mkdtemp(prefix="sdap-test-cache-"))
"""The runtime's cached graphs (``inference/runtime.py``) go to a folder of this test process (and the commands
it starts), not the user's cache: built once per process on first use."""
CUDA_REQUIRED = os.environ.get("SDAP_TEST_DEVICE") == "cuda"
"""``SDAP_TEST_DEVICE=cuda`` (``scripts/device_check.sh``): the CUDA tests must run; without a GPU they fail
instead of being skipped."""


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: runs on a CUDA GPU (skipped without one, failed with "
                                       "SDAP_TEST_DEVICE=cuda); every other test runs as on a CPU machine")


def _wants_cuda(item) -> bool:
    """The test is marked ``cuda``, or is the 'cuda' case of the ``device`` fixture."""
    callspec = getattr(item, "callspec", None)
    return item.get_closest_marker("cuda") is not None or \
        (callspec is not None and callspec.params.get("device") == "cuda")


@pytest.fixture(autouse=True)
def cpu_unless_cuda(request, monkeypatch):
    """Tests run as on a CPU machine: on a GPU machine `--device auto` would pick CUDA, where `--model auto`
    means the teacher, and tests of the CPU defaults would fail with correct code. So CUDA (and MPS) look
    absent, in this process and in the ones it starts (``CUDA_VISIBLE_DEVICES``), unless the test asks for
    CUDA (``_wants_cuda``)."""
    if _wants_cuda(request.node):
        if not HAS_CUDA:
            if CUDA_REQUIRED:
                pytest.fail("SDAP_TEST_DEVICE=cuda, but PyTorch sees no CUDA GPU")
            pytest.skip("needs a CUDA GPU")
        return
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if getattr(torch.backends, "mps", None) is not None:
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")


@pytest.fixture(autouse=True)
def keep_threads():
    """Commands run in-process set torch's thread count for the whole process (``--threads``); put it
    back after each test, so that no test inherits another's (bitwise comparisons depend on it)."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(params=["cpu"] + (["cuda"] if HAS_CUDA or CUDA_REQUIRED else []))
def device(request) -> torch.device:
    """Each device a test is meant to run on: the CPU, and CUDA where there is a GPU."""
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
