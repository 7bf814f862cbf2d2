"""What runs on CUDA first (issue 37), tested on the CPU by simulating the CUDA facts: fp16 training with loss
scaling, multi-process runs that neither time out nor hang (a two-process gloo group on 127.0.0.1), tiled
validation, and a test suite that runs as on a CPU machine unless a test asks for CUDA. The tests marked
``cuda`` run on a GPU only (``scripts/device_check.sh``)."""

import copy
import multiprocessing as mp
import os
import queue
import socket
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch

from sdap_cli.errors import SdapError
from sdap_cli.evaluation.evalsets import PairedSet
from sdap_cli.method.dbsnl import DBSNl
from sdap_cli.training.loop import Recipe, Setup, fit
from sdap_cli.training.trainer import autocast_context
from sdap_cli.training_config import DistillConfig, TrainConfig
from tests.helpers import noisy_rgb, tiny_weights, write_png

REPO = Path(__file__).resolve().parents[1]
TINY = {"model": {"base_ch": 8, "num_module": 1}, "batch": 2, "patch": 20, "workers": 0, "device": "cpu",
        "log_every": 1, "val_every": 1000, "checkpoint_every": 1000}


class _Crops(torch.utils.data.Dataset):
    """Random (3, 20, 20) crops, a pure function of the index."""

    def __len__(self) -> int:
        return 1 << 20

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.rand(3, 20, 20, generator=torch.Generator().manual_seed(i))


def _tiny_net() -> DBSNl:
    torch.manual_seed(0)
    return DBSNl(base_ch=8, num_module=1)


def _small_loss(net, y, gen, precision="fp16"):
    """A loss whose gradients (~1e-9 per output value) are zero in fp16 unless the loss is scaled."""
    with autocast_context(y.device, precision):
        out = net(y)
    return out.float().mean() * 1e-5


# -- 2. fp16 training scales the loss ---------------------------------------------------------------------

def test_fp16_training_scales_the_loss_so_small_gradients_survive(tmp_path):
    model = _tiny_net()
    before = copy.deepcopy(model.state_dict())
    cfg = TrainConfig(data=["unused"], out=str(tmp_path / "run"), iterations=1, precision="fp16", **TINY)
    fit(cfg, Recipe(model, _Crops(), _small_loss), Setup(0, 1, torch.device("cpu"), "fp16"))
    assert not torch.equal(model.state_dict()["head.0.weight"], before["head.0.weight"]), \
        "the first layer did not learn: its fp16 gradients underflowed"
    st = torch.load(tmp_path / "run" / "state.pt", weights_only=False)
    assert st["scaler"]["scale"] > 1                      # resumed with the scale it had reached


def test_fp32_and_bf16_training_are_not_scaled(tmp_path):
    for precision in ("fp32", "bf16"):
        cfg = TrainConfig(data=["unused"], out=str(tmp_path / precision), iterations=1, precision=precision, **TINY)
        fit(cfg, Recipe(_tiny_net(), _Crops(), lambda n, y, g, p=precision: _small_loss(n, y, g, p)),
            Setup(0, 1, torch.device("cpu"), precision))
        st = torch.load(tmp_path / precision / "state.pt", weights_only=False)
        assert not st["scaler"]                           # a disabled scaler: nothing to save


def test_fp16_adapt_scales_the_loss(monkeypatch):
    import sdap_cli.training.adapt as adapt_mod

    monkeypatch.setattr(adapt_mod, "sdap_loss", lambda net, y, p, generator=None, precision="fp32":
                        _small_loss(net, y, generator, precision))
    model = _tiny_net()
    img = noisy_rgb(40, 40).astype(np.float32) / 255
    tuned = adapt_mod.adapt(model, [img], iterations=1, patch=20, batch=2, precision="fp16")
    assert not torch.equal(tuned.head[0].weight, model.head[0].weight)


# -- 3. multi-process runs: a long process-group timeout, shared teacher work, a NaN stops every rank -------

def test_process_group_timeout_outlasts_a_cold_teacher_cache(monkeypatch):
    import sdap_cli.training.loop as loop

    calls = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda *a, **k: calls.append((a, k)))
    env = loop.setup(TrainConfig(data=["unused"], **TINY))
    assert (env.rank, env.world) == (0, 2)
    (args, kwargs), = calls
    assert kwargs.get("timeout") is not None and kwargs["timeout"] >= timedelta(hours=2)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _join(rank: int, port: int) -> None:
    """Be rank ``rank`` of a two-process group on 127.0.0.1 (as torchrun would set it up)."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    torch.set_num_threads(1)


def _leave(release) -> None:
    release.wait(60)              # stay in the group until every rank has reported (or the test gave up)
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _nan_rank(rank: int, port: int, out: str, results, release) -> None:
    _join(rank, port)

    def loss(net, y, gen):
        value = net(y).float().mean()
        return value * float("nan") if rank == 1 else value

    cfg = TrainConfig(data=["unused"], out=out, iterations=3, precision="fp32", **TINY)
    try:
        from sdap_cli.training.loop import setup

        env = setup(cfg)
        fit(cfg, Recipe(_tiny_net(), _Crops(), loss), env)
        results.put((rank, "finished"))
    except SdapError as e:
        results.put((rank, f"SdapError: {e}"))
    except Exception as e:       # noqa: BLE001 - reported to the test
        results.put((rank, f"{type(e).__name__}: {e}"))
    _leave(release)


def _distill_rank(rank: int, port: int, root: str, results, release) -> None:
    _join(rank, port)
    import sdap_cli.training.distill as distill_mod
    import sdap_cli.training.targets as targets_mod

    computed = []
    real = targets_mod.target_image
    targets_mod.target_image = lambda *a, **k: computed.append(1) or real(*a, **k)
    cfg = DistillConfig(data=[f"{root}/data"], teacher=f"{root}/teacher.safetensors", out=f"{root}/run",
                        cache=f"{root}/cache", iterations=1, batch=2, patch=32, workers=0, precision="fp32",
                        device="cpu", student={"ch": (8, 8, 8), "blocks": (1, 1, 1)}, checkpoint_every=1000)
    try:
        res = distill_mod.distill(cfg)
        results.put((rank, len(computed), res.iterations))
    except Exception as e:       # noqa: BLE001 - reported to the test
        results.put((rank, len(computed), f"{type(e).__name__}: {e}"))
    _leave(release)


def _two_ranks(target, *args, limit: float = 150.0) -> dict:
    """Run ``target(rank, port, *args, results, release)`` in two spawned processes; each rank's report,
    as far as they came within ``limit`` seconds. The processes are ended (by their handles) either way."""
    ctx = mp.get_context("spawn")
    results, release = ctx.Queue(), ctx.Event()
    port = _free_port()
    procs = [ctx.Process(target=target, args=(rank, port, *args, results, release), daemon=True)
             for rank in range(2)]
    for p in procs:
        p.start()
    got: dict = {}
    deadline = time.monotonic() + limit
    try:
        while len(got) < 2 and time.monotonic() < deadline:
            try:
                r = results.get(timeout=1.0)
                got[r[0]] = r[1:]
            except queue.Empty:
                if not any(p.is_alive() for p in procs):
                    break
    finally:
        release.set()
        for p in procs:
            p.join(15)
            if p.is_alive():
                p.kill()
                p.join()
    return got


@pytest.mark.slow
def test_a_non_finite_loss_on_one_rank_stops_every_rank(tmp_path):
    got = _two_ranks(_nan_rank, str(tmp_path / "run"))
    assert set(got) == {0, 1}, f"a rank is still waiting in the gradient all-reduce: {got}"
    assert got[1][0].startswith("SdapError: loss became nan at step 1"), got
    assert got[0][0].startswith("SdapError: loss became non-finite on another process at step 1"), got


@pytest.mark.slow
def test_ranks_share_the_teacher_targets(tmp_path):
    for i in range(4):
        write_png(tmp_path / "data" / f"n{i}.png", noisy_rgb(40, 48, seed=i))
    tiny_weights(tmp_path / "teacher.safetensors")
    got = _two_ranks(_distill_rank, str(tmp_path))
    assert set(got) == {0, 1}, got
    assert [got[r][1] for r in (0, 1)] == [1, 1], got            # both ranks trained their one step
    assert [got[r][0] for r in (0, 1)] == [2, 2], got            # 4 images: 2 teacher outputs each
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 4


# -- 6. validation during training is tiled ----------------------------------------------------------------

def test_validation_tiles_full_size_photos(monkeypatch):
    """A GPU that holds tiles but not the whole image (out of memory above 70 x 70 pixels per pass):
    validation finishes, with the scores of the untiled run."""
    from sdap_cli.training.validation import validate

    rng = np.random.default_rng(0)
    clean = [noisy_rgb(96, 96, seed=s).astype(np.float32) / 255 for s in (1, 2)]
    noisy = [np.clip(c + rng.normal(0, 0.08, c.shape), 0, 1).astype(np.float32) for c in clean]
    val = PairedSet(["a", "b"], noisy, clean)
    model = _tiny_net()
    with torch.no_grad():
        model.tail[-1].bias.fill_(0.5)
    whole = validate(model, val, torch.device("cpu"), "fp32")
    real = DBSNl.forward

    def small_gpu(self, x):
        if x.shape[-2] * x.shape[-1] > 70 * 70:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.50 GiB")
        return real(self, x)

    monkeypatch.setattr(DBSNl, "forward", small_gpu)
    tiled = validate(model, val, torch.device("cpu"), "fp32")
    assert model.training                                    # the model is left as it was
    for k in ("psnr", "ssim", "psnr_e", "ssim_e"):
        assert tiled[k] == pytest.approx(whole[k], abs=0.02 if k.startswith("psnr") else 2e-4), k


# -- 7. the suite runs as on a CPU machine unless a test asks for CUDA ---------------------------------------

def test_tests_run_as_on_a_cpu_machine_unless_they_ask_for_cuda(tmp_path):
    """An inner pytest run with our conftest on a (simulated) GPU machine: a test that leaves the device unset
    gets the CPU (in process and in the processes it starts); a test marked ``cuda`` gets the GPU."""
    (tmp_path / "conftest.py").write_text(textwrap.dedent("""
        import torch
        torch.cuda.is_available = lambda: True       # a GPU machine, as far as the code can ask
        from tests.conftest import *                 # noqa: F401,F403 - the fixtures and hooks under test
    """))
    (tmp_path / "test_inner.py").write_text(textwrap.dedent("""
        import os
        import pytest
        from sdap_cli.inference.device import pick_device

        def test_unset_device_is_the_cpu():
            assert pick_device("auto").type == "cpu"
            assert os.environ.get("CUDA_VISIBLE_DEVICES") == ""      # and in subprocesses

        @pytest.mark.cuda
        def test_marked_cuda_gets_the_gpu():
            assert pick_device("auto").type == "cuda"
    """))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("SDAP_TEST_DEVICE", None)
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W",
                        "error::pytest.PytestUnknownMarkWarning", str(tmp_path)],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    assert "2 passed" in p.stdout


# -- on a GPU only (scripts/device_check.sh) ----------------------------------------------------------------

@pytest.mark.cuda
def test_cuda_precision_and_tf32_follow_the_device():
    from sdap_cli.inference.device import pick_precision

    cuda = torch.device("cuda")
    major, _ = torch.cuda.get_device_capability(cuda)
    assert pick_precision("auto", cuda) == ("bf16" if major >= 8 else "fp16" if major >= 7 else "fp32")
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32


@pytest.mark.cuda
def test_cuda_fp32_matches_the_cpu_and_tiles_match_the_whole_image(tiny_model):
    """With TF32 off, fp32 on CUDA is fp32: within 1e-5 of the CPU. Tiled == whole holds to 1e-5 (cuDNN picks
    its algorithm per shape, so not bit for bit)."""
    from sdap_cli.inference.denoiser import Denoiser
    from sdap_cli.inference.device import pick_precision

    cuda = torch.device("cuda")
    img = np.random.default_rng(0).random((160, 200, 3), dtype=np.float32)
    cpu = Denoiser(copy.deepcopy(tiny_model), refine="e").denoise(img)
    den = Denoiser(copy.deepcopy(tiny_model), refine="e", device=cuda, precision=pick_precision("fp32", cuda))
    whole = den.denoise(img, tile=4096)
    tiled = den.denoise(img, tile=2 * den.margin + 32)
    assert np.abs(whole - cpu).max() < 1e-5
    assert np.abs(tiled - whole).max() < 1e-5


@pytest.mark.cuda
def test_cuda_auto_tile_is_the_same_for_every_image(tiny_model):
    from sdap_cli.inference.denoiser import Denoiser

    den = Denoiser(tiny_model, refine="e", device=torch.device("cuda"), precision="bf16")
    img = np.random.default_rng(1).random((1024, 1024, 3), dtype=np.float32)
    shapes = []
    for _ in range(3):
        shapes.append(den.tile_shape(*img.shape[:2]))
        den.denoise(img)
    assert len(set(shapes)) == 1, shapes


@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cuda_training_steps_are_finite(tmp_path, precision):
    from sdap_cli.training.trainer import sdap_loss

    if precision == "bf16" and torch.cuda.get_device_capability()[0] < 8:
        pytest.skip("bf16 is emulated below compute capability 8.0")
    cfg = TrainConfig(data=["unused"], out=str(tmp_path), iterations=5, precision=precision,
                      **{**TINY, "device": "cuda"})
    res = fit(cfg, Recipe(_tiny_net(), _Crops(), lambda n, y, g: sdap_loss(n, y, 5, generator=g, precision=precision)),
              Setup(0, 1, torch.device("cuda"), precision))
    assert res.iterations == 5


def test_device_check_script_dry_run_names_every_step():
    p = subprocess.run(["bash", str(REPO / "scripts" / "device_check.sh"), "--dry-run"], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    steps = {line[1:line.index(",")]: line for line in p.stdout.splitlines() if line.startswith("[")}
    assert list(steps) == ["env", "tests", "roofline", "benchmark", "data", "train_bf16", "train_fp16",
                           "distill_bf16", "distill_fp16", "denoise", "summary"]
    assert "SDAP_TEST_DEVICE=cuda" in steps["tests"] and "-m pytest" in steps["tests"]
    assert "benchmark --device cuda" in steps["benchmark"]
    for prec in ("bf16", "fp16"):
        assert f"--precision {prec} --device cuda" in steps[f"train_{prec}"]
        assert f"--precision {prec} --device cuda" in steps[f"distill_{prec}"]
    assert "4000x3000" in steps["data"] and "denoise" in steps["denoise"]
