r"""Time one SDAP training step: a port of the reference step against ``sdap_cli``'s vectorised step.

The variants are timed in one run on one machine. Each gets a fresh ``DBSNl`` built with the same
seed, a fresh ``torch.optim.Adam(lr=1e-4)`` and the same noisy batch:

* ``reference``: a port of the SDAP reference training step (``train.py`` of p1y2z3/SDAP). It is
  **written from the description in** ``../shared/docs/sdap-method.md`` (beside this repository) **section 2, not copied
  from the repository.** Per iteration it:

  - draws a numpy permutation per 5x5 cell in a Python loop
    (``array = np.arange(25); np.random.shuffle(array)``);
  - builds 25 boolean masks over the flattened space_to_depth layout;
  - extracts the 25 sub-images with ``F.unfold`` per channel;
  - runs 25 separate forwards of batch B;
  - sums 25 mean-reduced ``nn.L1Loss`` terms, in fp32 with the default memory format.
* ``ours-fp32``: ``sdap_cli.training.trainer.sdap_loss(precision='fp32')``. It does an argsort RSG and one
  batched forward of 25*B sub-images, with the model in channels_last.
* ``ours-bf16``: the same with ``precision='bf16'`` (autocast). It runs only where bf16 is supported:
  ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` on CPU, and always on CUDA.

One timed step covers zero_grad, loss (sampling included), backward and ``Adam.step``. It is
measured with ``time.perf_counter``, with ``torch.cuda.synchronize()`` before and after on CUDA. The
sampler alone is also timed: the reference masks plus 25 sub-image extractions, against
``rsg_sample`` plus the channels_last batch copy that ``sdap_loss`` makes. That part is pure
overhead: it does no learning.

On a CPU that another process keeps busy, use ``--threads`` no higher than the number of free
cores. Otherwise OpenMP threads wait on each other, and many small ops (the reference's 75
``F.unfold`` calls and 25 small forwards) get slow in erratic spikes. Steps of the same variant
then vary by up to 10x. Compare the ``min`` columns and repeat the run.

Run from the repository root::

    . .venv/bin/activate
    python benchmarks/train_step.py --base-ch 48 --num-module 5 --batch 8 --patch 120 --steps 2
    python benchmarks/train_step.py                       # paper size: base_ch 128, 9 modules, 16 x 160^2
    python benchmarks/train_step.py --device cuda --steps 10 --json out.json
    python benchmarks/train_step.py --check               # port == sdap_loss for identical permutations

``--check`` is the evidence that the port is faithful. It builds the permutations
``(B, H/5, W/5, 25)`` once and feeds them to both sides: to the port instead of its numpy shuffle, and
to ``rsg_sample(y, 5, perm=...)``. It then asserts three things:

* the sub-images are identical;
* the two fp32 losses agree to 1e-5 relative;
* ``sdap_loss`` itself, given a generator that yields the same permutations, agrees too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

try:                                     # run as a script from anywhere in the checkout
    import sdap_cli  # noqa: F401
except ImportError:                      # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdap_cli.method.dbsnl import DBSNl
from sdap_cli.method.loss import cyclic_l1
from sdap_cli.method.sampler import rsg_permutations, rsg_sample
from sdap_cli.training.trainer import sdap_loss

P = 5          # RSG stride factor of SDAP
LR = 1e-4      # SDAP's Adam learning rate (method notes, section 3)

VARIANTS = ("reference", "ours-fp32", "ours-bf16")


# --------------------------------------------------------------------------------------------------
# Port of the reference step (written from sdap-method.md section 2)
# --------------------------------------------------------------------------------------------------

def ref_generate_mask_pair(img: torch.Tensor, p: int = P, perm: np.ndarray | None = None) -> torch.Tensor:
    """The 25 boolean masks of the reference RSG, ``(p*p, n*(H/p)*(W/p)*p*p)`` on ``img``'s device.

    The flat layout is the space_to_depth one: cell ``(b, i, j)`` (row-major) occupies
    ``[cell*p*p, cell*p*p + p*p)``, and in-cell position ``k`` is pixel ``(p*i + k//p, p*j + k%p)``.
    Mask ``m`` selects, in every cell, position ``perm_cell[m]``.

    Args:
        img: the noisy batch ``(n, c, H, W)``.
        p: cell size.
        perm: optional permutations ``(n, H/p, W/p, p*p)``. By default each cell gets its own
            ``np.random.shuffle``, as in the reference.
    """
    n, _, H, W = img.shape
    pp = p * p
    n_cells = n * (H // p) * (W // p)
    if perm is not None:
        perm = np.asarray(perm).reshape(n_cells, pp)
    rd_pair_idx = np.zeros((n_cells, pp), dtype=np.int64)
    for cell in range(n_cells):                      # the per-cell Python loop of the reference
        if perm is None:
            array = np.arange(pp)
            np.random.shuffle(array)
        else:
            array = perm[cell]
        rd_pair_idx[cell] = array + cell * pp
    rd_pair_idx = torch.from_numpy(rd_pair_idx).to(img.device)
    mask = torch.zeros(pp, n_cells * pp, dtype=torch.bool, device=img.device)
    for i in range(pp):
        mask[i][rd_pair_idx[:, i]] = 1
    return mask


def ref_space_to_depth(x: torch.Tensor, p: int = P) -> torch.Tensor:
    """``(n, c, H, W) -> (n, c*p*p, H/p, W/p)`` with ``F.unfold(kernel=p, stride=p)``."""
    n, c, H, W = x.shape
    return F.unfold(x, kernel_size=p, stride=p).view(n, c * p * p, H // p, W // p)


def ref_generate_subimages(img: torch.Tensor, mask: torch.Tensor, p: int = P) -> torch.Tensor:
    """The sub-image that ``mask`` (one row of :func:`ref_generate_mask_pair`) selects: ``(n, c, H/p, W/p)``."""
    n, c, H, W = img.shape
    h, w = H // p, W // p
    sub = torch.zeros(n, c, h, w, dtype=img.dtype, device=img.device)
    for ch in range(c):                              # per channel, as in the reference
        cells = ref_space_to_depth(img[:, ch:ch + 1], p)          # (n, p*p, h, w)
        flat = cells.permute(0, 2, 3, 1).reshape(-1)              # cell-major, in-cell index fastest
        sub[:, ch:ch + 1] = flat[mask].reshape(n, h, w, 1).permute(0, 3, 1, 2)
    return sub


def ref_sample(noisy: torch.Tensor, p: int = P, perm: np.ndarray | None = None) -> list[torch.Tensor]:
    """The reference sampler: masks, then the p*p sub-images, as a list."""
    mask = ref_generate_mask_pair(noisy, p, perm)
    return [ref_generate_subimages(noisy, mask[k], p) for k in range(p * p)]


def ref_loss(model: nn.Module, noisy: torch.Tensor, p: int = P, perm: np.ndarray | None = None):
    """Reference loss: p*p separate forwards, then the sum of p*p mean-reduced L1 terms.

    Returns ``(loss, noisy_sub)``.
    """
    noisy_sub = ref_sample(noisy, p, perm)
    sub_denoised = [model(noisy_sub[j]) for j in range(p * p)]
    l1 = nn.L1Loss()
    loss = 0
    for j in range(p * p):
        loss = loss + l1(sub_denoised[j], noisy_sub[(j + 1) % (p * p)])
    return loss, noisy_sub


# --------------------------------------------------------------------------------------------------
# Steps and timing
# --------------------------------------------------------------------------------------------------

def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:                                # pragma: no cover - very old builds
        return False


def available_variants(device: torch.device) -> list[str]:
    return [v for v in VARIANTS if v != "ours-bf16" or bf16_supported(device)]


def build_model(base_ch: int, num_module: int, seed: int, device: torch.device,
                channels_last: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    model = DBSNl(base_ch=base_ch, num_module=num_module).to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def make_batch(batch: int, patch: int, seed: int, device: torch.device) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed + 1)
    return torch.rand(batch, 3, patch, patch, generator=g).to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _make_step(variant: str, model: nn.Module, opt: torch.optim.Optimizer, device: torch.device):
    if variant == "reference":
        def step(noisy):
            opt.zero_grad()
            loss, _ = ref_loss(model, noisy, P)
            loss.backward()
            opt.step()
            return loss
    elif variant in ("ours-fp32", "ours-bf16"):
        precision = variant.split("-")[1]
        gen = torch.Generator(device=device).manual_seed(1234)

        def step(noisy):
            opt.zero_grad(set_to_none=True)
            loss = sdap_loss(model, noisy, P, generator=gen, precision=precision)
            loss.backward()
            opt.step()
            return loss
    else:
        raise ValueError(f"unknown variant {variant!r}; choose from {VARIANTS}")
    return step


def time_train_step(variant: str, *, device: torch.device | str = "cpu", base_ch: int = 128,
                    num_module: int = 9, batch: int = 16, patch: int = 160, warmup: int = 1,
                    steps: int = 3, seed: int = 0) -> dict:
    """Time ``steps`` training steps of ``variant`` after ``warmup`` untimed ones.

    Returns a dict with ``s_per_step`` (mean), ``it_per_s``, ``times`` (per step) and ``loss`` (last).
    """
    device = torch.device(device)
    if patch % P:
        raise ValueError(f"patch must be a multiple of {P}")
    np.random.seed(seed)
    model = build_model(base_ch, num_module, seed, device, channels_last=variant != "reference")
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    noisy = make_batch(batch, patch, seed, device)
    step = _make_step(variant, model, opt, device)
    for _ in range(warmup):
        step(noisy)
    _sync(device)
    times, loss = [], None
    for _ in range(steps):
        _sync(device)
        t0 = time.perf_counter()
        loss = step(noisy)
        _sync(device)
        times.append(time.perf_counter() - t0)
    mean = float(np.mean(times))
    return {"variant": variant, "s_per_step": mean, "it_per_s": 1.0 / mean, "times": times,
            "s_per_step_median": float(np.median(times)), "s_per_step_min": float(np.min(times)),
            "loss": float(loss.detach()) if loss is not None else None}


def time_sampler(kind: str, *, device: torch.device | str = "cpu", batch: int = 16, patch: int = 160,
                 repeats: int = 3, seed: int = 0) -> dict:
    """Time the sampler alone: ``kind`` is 'reference' (masks + 25 extractions) or 'ours'
    (``rsg_sample`` + the (25B, C, h, w) channels_last copy that ``sdap_loss`` makes)."""
    device = torch.device(device)
    np.random.seed(seed)
    noisy = make_batch(batch, patch, seed, device)
    gen = torch.Generator(device=device).manual_seed(seed)
    if kind == "reference":
        def run():
            return ref_sample(noisy, P)
    elif kind == "ours":
        def run():
            subs = rsg_sample(noisy, P, generator=gen)
            k, b, c, h, w = subs.shape
            return subs.reshape(k * b, c, h, w).contiguous(memory_format=torch.channels_last)
    else:
        raise ValueError(f"unknown sampler {kind!r}")
    run()                                            # warm-up
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        run()
        _sync(device)
        times.append(time.perf_counter() - t0)
    mean = float(np.mean(times))
    return {"sampler": kind, "s_per_call": mean, "times": times}


# --------------------------------------------------------------------------------------------------
# Faithfulness check
# --------------------------------------------------------------------------------------------------

def check_equivalence(*, device: torch.device | str = "cpu", base_ch: int = 8, num_module: int = 1,
                      batch: int = 2, patch: int = 20, seed: int = 0, rtol: float = 1e-5) -> dict:
    """Port vs ours for identical permutations; raises ``AssertionError`` on mismatch.

    The permutations come from ``rsg_permutations`` with a seeded generator. The same array is
    given to the port (instead of its numpy shuffle) and to ``rsg_sample(perm=...)``. A generator
    with the same seed is given to ``sdap_loss``, which therefore draws the same permutations.
    """
    device = torch.device(device)
    model = build_model(base_ch, num_module, seed, device)
    noisy = make_batch(batch, patch, seed, device)
    h = w = patch // P
    perm_t = rsg_permutations(batch, h, w, P, generator=torch.Generator(device=device).manual_seed(seed + 7),
                              device=device)
    perm = perm_t.cpu().numpy()                                       # (n, H/5, W/5, 25)

    # 1. sub-images: identical (pure indexing)
    ref_subs = torch.stack(ref_sample(noisy, P, perm))
    our_subs = rsg_sample(noisy, P, perm=torch.from_numpy(perm).to(device))
    assert torch.equal(ref_subs, our_subs), "port and rsg_sample select different pixels"

    # 2. fp32 losses and gradients
    model.zero_grad()
    loss_ref, _ = ref_loss(model, noisy, P, perm)
    loss_ref.backward()
    grads_ref = [q.grad.detach().clone() for q in model.parameters()]

    k, b, c, hh, ww = our_subs.shape
    out = model(our_subs.reshape(k * b, c, hh, ww).contiguous(memory_format=torch.channels_last))
    loss_perm = cyclic_l1(out.float().reshape(k, b, c, hh, ww), our_subs)

    model.zero_grad()
    loss_sdap = sdap_loss(model, noisy, P, generator=torch.Generator(device=device).manual_seed(seed + 7),
                          precision="fp32")
    loss_sdap.backward()
    grads_sdap = [q.grad.detach().clone() for q in model.parameters()]

    lr_, lp, ls = (float(t.detach()) for t in (loss_ref, loss_perm, loss_sdap))
    rel_perm = abs(lp - lr_) / abs(lr_)
    rel_sdap = abs(ls - lr_) / abs(lr_)
    gmax = max(float(g.abs().max()) for g in grads_ref)
    grad_rel = max(float((a - b_).abs().max()) for a, b_ in zip(grads_ref, grads_sdap)) / gmax
    assert rel_perm <= rtol, f"loss mismatch (rsg_sample perm): ref {lr_!r} vs ours {lp!r} (rel {rel_perm:.2e})"
    assert rel_sdap <= rtol, f"loss mismatch (sdap_loss): ref {lr_!r} vs ours {ls!r} (rel {rel_sdap:.2e})"
    assert grad_rel <= 1e-3, f"gradient mismatch: max |diff| / max |grad| = {grad_rel:.2e}"
    return {"loss_reference": lr_, "loss_rsg_perm": lp, "loss_sdap_loss": ls,
            "rel_err_rsg_perm": rel_perm, "rel_err_sdap_loss": rel_sdap, "grad_rel_err": grad_rel}


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    # None -> the paper size for timing (128, 9, 16, 160) or a tiny size for --check (8, 1, 2, 20)
    ap.add_argument("--base-ch", type=int, default=None, help="DBSNl width (default 128; 8 with --check)")
    ap.add_argument("--num-module", type=int, default=None, help="DCl blocks per branch (default 9; 1 with --check)")
    ap.add_argument("--batch", type=int, default=None, help="batch size (default 16; 2 with --check)")
    ap.add_argument("--patch", type=int, default=None, help="patch size, multiple of 5 (default 160; 20 with --check)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--sampler-repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    ap.add_argument("--variants", default=None,
                    help=f"comma-separated subset of {','.join(VARIANTS)} (default: all available)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--check", action="store_true",
                    help="only check port == ours for identical permutations (tiny model unless sizes given)")
    return ap


def main(argv: list[str] | None = None) -> dict:
    args = _parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda requested but CUDA is not available")

    defaults = (8, 1, 2, 20) if args.check else (128, 9, 16, 160)
    for name, d in zip(("base_ch", "num_module", "batch", "patch"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, d)

    if args.check:
        sizes = dict(base_ch=args.base_ch, num_module=args.num_module, batch=args.batch, patch=args.patch)
        res = check_equivalence(device=device, seed=args.seed, **sizes)
        print(f"check OK ({sizes}): reference loss {res['loss_reference']:.8f}, "
              f"rsg_sample(perm) {res['loss_rsg_perm']:.8f} (rel {res['rel_err_rsg_perm']:.1e}), "
              f"sdap_loss {res['loss_sdap_loss']:.8f} (rel {res['rel_err_sdap_loss']:.1e}), "
              f"grad rel {res['grad_rel_err']:.1e}")
        out = {"check": res, "config": sizes}
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=2))
        return out

    variants = available_variants(device)
    if args.variants:
        wanted = [v.strip() for v in args.variants.split(",") if v.strip()]
        variants = [v for v in wanted if v in variants]
    cfg = dict(device=device, base_ch=args.base_ch, num_module=args.num_module, batch=args.batch,
               patch=args.patch, seed=args.seed)
    print(f"SDAP train step: DBSNl(base_ch={args.base_ch}, num_module={args.num_module}), "
          f"batch {args.batch} x 3 x {args.patch}^2 -> 25 x {args.batch} x 3 x {args.patch // P}^2, "
          f"device {device}, threads {torch.get_num_threads()}, torch {torch.__version__}, "
          f"warmup {args.warmup}, steps {args.steps}"
          + ("" if "ours-bf16" in variants else " (bf16 unsupported/skipped)"), flush=True)

    results = []
    for v in variants:
        t0 = time.perf_counter()
        r = time_train_step(v, warmup=args.warmup, steps=args.steps, **cfg)
        r["wall_s"] = time.perf_counter() - t0
        results.append(r)
        print(f"  {v}: {r['s_per_step']:.3f} s/step  (times {', '.join(f'{t:.3f}' for t in r['times'])})",
              flush=True)
    samplers = [time_sampler(k, device=device, batch=args.batch, patch=args.patch,
                             repeats=args.sampler_repeats, seed=args.seed) for k in ("reference", "ours")]

    ref = next((r for r in results if r["variant"] == "reference"), None)
    print()
    print(f"{'variant':<12} {'s/step':>9} {'it/s':>8} {'speedup vs ref':>15} {'min s/step':>11} {'speedup(min)':>13}")
    for r in results:
        r["speedup_vs_reference"] = ref["s_per_step"] / r["s_per_step"] if ref else None
        r["speedup_vs_reference_min"] = ref["s_per_step_min"] / r["s_per_step_min"] if ref else None
        sp = f"{r['speedup_vs_reference']:.2f}x" if ref else "-"
        spm = f"{r['speedup_vs_reference_min']:.2f}x" if ref else "-"
        print(f"{r['variant']:<12} {r['s_per_step']:>9.3f} {r['it_per_s']:>8.3f} {sp:>15} "
              f"{r['s_per_step_min']:>11.3f} {spm:>13}")
    print("(s/step, it/s: mean over the timed steps; min: fastest step, less sensitive to background load)")
    print()
    print(f"{'sampler only':<12} {'s/call':>9} {'speedup':>8} {'% of ref step':>15}")
    for s in samplers:
        s["speedup_vs_reference"] = samplers[0]["s_per_call"] / s["s_per_call"]
        share = f"{100 * s['s_per_call'] / ref['s_per_step']:.1f}%" if ref else "-"
        s["share_of_reference_step"] = s["s_per_call"] / ref["s_per_step"] if ref else None
        print(f"{s['sampler']:<12} {s['s_per_call']:>9.4f} {s['speedup_vs_reference']:>7.1f}x {share:>15}")

    out = {
        "config": {k: (str(v) if isinstance(v, torch.device) else v) for k, v in cfg.items()}
        | {"warmup": args.warmup, "steps": args.steps, "threads": torch.get_num_threads(), "lr": LR},
        "env": {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
                "machine": platform.machine(), "cpu_count": os.cpu_count(),
                "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
                "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                "bf16_supported": bf16_supported(device)},
        "train_step": results,
        "sampler": samplers,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
        print(f"\nwrote {args.json}")
    return out


if __name__ == "__main__":
    main()
