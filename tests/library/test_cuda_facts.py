"""The CUDA choices of ``inference`` (issue 37), tested on the CPU with the CUDA facts simulated: the compute
capability and ``is_bf16_supported`` (precision), the allocator's report (tile size), and the TF32 switches
(fp32 means IEEE fp32)."""

import pytest
import torch

from sdap_cli.inference.device import pick_device, pick_precision
from sdap_cli.inference.tiling import auto_tile

CUDA = torch.device("cuda")
GiB = 1 << 30


@pytest.fixture
def gpu(monkeypatch):
    """A CUDA GPU of a given compute capability, as far as the code can ask; ``is_bf16_supported`` says yes,
    as it does since torch 2.4 on GPUs that only emulate bf16."""
    state = {"capability": (8, 0)}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: state["capability"])
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    return state


@pytest.fixture
def tf32_flags():
    """Put PyTorch's process-wide TF32 switches back after the test."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.mark.parametrize("capability, expected", [
    ((9, 0), "bf16"), ((8, 6), "bf16"), ((8, 0), "bf16"),     # H100, RTX 30xx, A100: bf16 tensor cores
    ((7, 5), "fp16"), ((7, 0), "fp16"),                       # T4 / RTX 20xx, V100: bf16 only emulated
    ((6, 1), "fp32"),                                         # GTX 10xx: no tensor cores, slow fp16
])
def test_auto_precision_on_cuda_follows_the_compute_capability(gpu, tf32_flags, capability, expected):
    gpu["capability"] = capability
    assert pick_precision("auto", CUDA) == expected
    assert pick_precision("fp32", CUDA) == "fp32"             # an explicit choice is kept


def test_auto_precision_on_cpu_does_not_ask_cuda(monkeypatch):
    def no_gpu(*a, **k):
        raise AssertionError("the CPU choice asked CUDA")

    monkeypatch.setattr(torch.cuda, "get_device_capability", no_gpu)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", no_gpu)
    assert pick_precision("auto", torch.device("cpu")) in ("bf16", "fp32")


@pytest.mark.parametrize("choice", [lambda: pick_device("auto"), lambda: pick_device("cuda"),
                                    lambda: pick_precision("fp32", CUDA), lambda: pick_precision("auto", CUDA),
                                    lambda: pick_precision("bf16", CUDA)])
def test_fp32_on_cuda_is_ieee_not_tf32(gpu, tf32_flags, choice):
    """cuDNN convolutions default to TF32 on Ampere and newer; choosing CUDA (the device, or a precision on
    it) turns it off, so fp32 (and the float32 output layers of bf16/fp16, ``precise_layers``) is fp32."""
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cuda.matmul.allow_tf32 = True
    choice()
    assert torch.backends.cudnn.allow_tf32 is False
    assert torch.backends.cuda.matmul.allow_tf32 is False


def test_cpu_precision_leaves_the_tf32_switches_alone(tf32_flags):
    torch.backends.cudnn.allow_tf32 = True
    pick_precision("fp32", pick_device("cpu"))
    assert torch.backends.cudnn.allow_tf32 is True


def _allocator(monkeypatch, free: int, reserved: int, allocated: int) -> None:
    """What the driver and PyTorch's caching allocator report."""
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, 16 * GiB))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: reserved)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: allocated)


def test_cuda_free_memory_counts_what_the_allocator_holds_unused(monkeypatch):
    from sdap_cli.inference.memory import cuda_free_memory

    _allocator(monkeypatch, free=4 * GiB, reserved=7 * GiB, allocated=1 * GiB)
    assert cuda_free_memory(CUDA) == 10 * GiB


def test_auto_tile_on_cuda_is_the_same_for_the_second_image(monkeypatch):
    """The first image's activations stay in the allocator's cache (reserved, not allocated): the driver's
    free memory shrinks, what the allocator can give does not, so the tile (and cuDNN's tuning, and a
    compiled graph) stays the same."""
    bpp, margin = 4000.0, 88
    _allocator(monkeypatch, free=10 * GiB, reserved=1 * GiB, allocated=1 * GiB)      # before the first image
    first = auto_tile(CUDA, bpp, margin, 2)
    _allocator(monkeypatch, free=4 * GiB, reserved=7 * GiB, allocated=1 * GiB)       # after it
    second = auto_tile(CUDA, bpp, margin, 2)
    assert 256 < first < 2048 and first % 2 == 0
    assert second == first
