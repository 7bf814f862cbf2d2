"""Time `sdap`'s denoising against the official SDAP test.py path on the same machine, in one run.

Usage:
    python benchmarks/compare_reference.py --reference PATH_TO_SDAP_CHECKOUT [--sizes 256,512]
        [--threads N] [--runs 2] [--probe 4000x3000 --probe-limit-gib 20] [--json out.json]

PATH_TO_SDAP_CHECKOUT is a checkout of p1y2z3/SDAP kept outside this repository (never commit its
code). Used read-only: its ``model/DBSNl.py`` and the ``pixel_unshuffle``/``pixel_shuffle`` functions
of its ``test.py`` (taken out with ``ast``, because test.py parses the command line at import). The
official weights are unavailable, so both sides share one random initialisation; the outputs must agree.

The reference runs in a child process of its own (its allocator as `python test.py` has it); ours in
this process set up as `sdap denoise` sets itself up (``inference.memory.reuse_freed_memory``).

Reference path (test.py): whole image, fp32, ``torch.no_grad``: pixel_unshuffle(2) -> DBSNl ->
pixel_shuffle(2) -> DBSNl (E) -> clamp. Ours, the same network and weights: ``Denoiser(refine='e')`` with
automatic tiling in fp32 and bf16, each eager and with ``compile=True`` (``sdap denoise --compile``:
inductor with frozen weights). Every variant is warmed up once on the full frame (compiling happens
there), then timed best-of-``--runs``. ``--student`` adds the shipped CPU default, the distilled one-pass
student (``sdap denoise`` with no options; a different network, so no max-diff: its quality is in
weights/README.md). ``--probe WxH`` runs the reference once on a larger frame in a child process under an
address-space limit, to show which sizes it cannot do at all.
"""

from __future__ import annotations

import argparse
import ast
import json
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sdap_cli.inference.checkpoints import load_weights, shipped_student_path  # noqa: E402
from sdap_cli.inference.denoiser import Denoiser, make_denoiser  # noqa: E402
from sdap_cli.inference.memory import reuse_freed_memory  # noqa: E402
from sdap_cli.method.dbsnl import DBSNl  # noqa: E402


def load_reference(ref: Path):
    """The official DBSNl class and the two PD functions of test.py."""
    sys.path.insert(0, str(ref))
    from model.DBSNl import DBSNl as RefDBSNl  # type: ignore

    tree = ast.parse((ref / "test.py").read_text())
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in ("pixel_unshuffle", "pixel_shuffle")]
    ns: dict = {"torch": torch}
    exec(compile(ast.Module(body=funcs, type_ignores=[]), str(ref / "test.py"), "exec"), ns)
    return RefDBSNl, ns["pixel_unshuffle"], ns["pixel_shuffle"]


def reference_denoise(model, unshuffle, shuffle, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = shuffle(model(unshuffle(x, 2)), 2)
        out = model(out)
    return out.clamp_(0.0, 1.0)


def _timed(fn, runs: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def _probe(args):
    ref, h, w, limit, threads = args
    torch.set_num_threads(threads)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    RefDBSNl, unshuffle, shuffle = load_reference(Path(ref))
    torch.manual_seed(0)
    model = RefDBSNl().eval()
    try:
        t0 = time.perf_counter()
        reference_denoise(model, unshuffle, shuffle, torch.rand(1, 3, h, w))
        return f"finished in {time.perf_counter() - t0:.0f} s"
    except (RuntimeError, MemoryError) as e:
        return f"failed: {type(e).__name__}: {str(e).splitlines()[0][:100]}"


def _reference_child(args):
    """The reference on one frame in a fresh process, as `python test.py` runs (the allocator as it comes):
    warm-up, then best of ``runs``; returns (seconds, output)."""
    ref, state, img, runs, threads = args
    torch.set_num_threads(threads)
    RefDBSNl, unshuffle, shuffle = load_reference(Path(ref))
    model = RefDBSNl().eval()
    model.load_state_dict(state)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()
    reference_denoise(model, unshuffle, shuffle, x)
    t, out = _timed(lambda: reference_denoise(model, unshuffle, shuffle, x), runs)
    return t, out[0].permute(1, 2, 0).numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", type=Path, required=True)
    ap.add_argument("--sizes", default="256,512")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--probe", default=None, help="WxH frame for the reference under a memory limit")
    ap.add_argument("--probe-limit-gib", type=float, default=20.0)
    ap.add_argument("--variants", default="fp32,bf16,fp32-compile,bf16-compile",
                    help="ours: comma list of fp32, bf16, fp32-compile, bf16-compile")
    ap.add_argument("--student", action="store_true", help="also time the shipped student (bf16)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    reuse_freed_memory()            # as `sdap denoise` sets itself up; the reference runs in its own process
    if a.threads:
        torch.set_num_threads(a.threads)
    RefDBSNl, unshuffle, shuffle = load_reference(a.reference)
    torch.manual_seed(0)
    ref_model = RefDBSNl().eval()
    state = {k: v.clone() for k, v in ref_model.state_dict().items()}
    ours = {}
    for v in a.variants.split(","):
        net = DBSNl()
        net.load_state_dict(state)
        ours[v] = Denoiser(net, refine="e", precision=v.split("-")[0], compile=v.endswith("-compile"))
    if a.student:
        ours["student"] = make_denoiser(load_weights(shipped_student_path()).model, precision="bf16")
    rows = []
    print(f"threads {torch.get_num_threads()}, torch {torch.__version__}; PD-2 + E, DBSNl 128/9 (random weights)")
    print(f"{'size':>9} {'variant':>12} {'s/image':>9} {'MP/s':>8} {'vs ref':>7} {'max|diff|':>10}")
    for s in a.sizes.split(","):
        h = w = int(s)
        img = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
        with mp.get_context("spawn").Pool(1) as pool:
            t_ref, out_ref = pool.apply(_reference_child, ((str(a.reference), state, img, a.runs,
                                                            torch.get_num_threads()),))
        res = {"size": s, "reference_s": t_ref}
        print(f"{s:>9} {'reference':>12} {t_ref:9.2f} {h * w / 1e6 / t_ref:8.4f} {1.0:7.2f} {'':>10}", flush=True)
        for p, d in ours.items():
            d.denoise(img)                                              # warm-up (and compile)
            t, out = _timed(lambda: d.denoise(img), a.runs)
            diff = float(np.abs(out - out_ref).max()) if p != "student" else float("nan")
            res[f"{p}_s"], res[f"{p}_ratio"], res[f"{p}_maxdiff"] = t, t_ref / t, diff
            print(f"{s:>9} {p:>12} {t:9.2f} {h * w / 1e6 / t:8.4f} {t_ref / t:7.2f} {diff:10.2e}", flush=True)
        rows.append(res)
    out = {"threads": torch.get_num_threads(), "rows": rows}
    if a.probe:
        w, h = (int(v) for v in a.probe.lower().split("x"))
        limit = int(a.probe_limit_gib * 2**30)
        with mp.get_context("spawn").Pool(1) as pool:
            msg = pool.apply(_probe, ((str(a.reference), h, w, limit, torch.get_num_threads()),))
        print(f"reference on {w}x{h} under a {a.probe_limit_gib:g} GiB address-space limit: {msg}")
        out["probe"] = {"size": a.probe, "limit_gib": a.probe_limit_gib, "result": msg}
    if a.json:
        a.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
