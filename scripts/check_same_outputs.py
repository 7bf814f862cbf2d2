"""Check that `sdap denoise` gives byte-identical outputs in this tree and at a git REF.

    python scripts/check_same_outputs.py REF          # e.g. main, or a commit hash
    python scripts/check_same_outputs.py 950b25c --here=--no-auto   # this tree's fixed path vs REF's default

REF is checked out into a temporary `git worktree`; `python -m sdap_cli denoise` then runs there and in
this tree (the working tree as it is, uncommitted changes included) on:

* the bundled ``samples/`` with the default model;
* the 5 SIDD validation blocks of ``../shared/data/sidd_val_blocks`` (their noisy PNGs) with
  ``--model teacher`` (skipped when ``../shared`` is absent);
* a 16-bit PNG generated here from a fixed seed.

The sha256 of every output is compared; the exit code is 1 on any difference or missing output, 0
otherwise. The temporary worktree is always removed. Runs single-threaded (OMP_NUM_THREADS=1) so both
sides compute in the same order.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIDD = ROOT.parent / "shared" / "data" / "sidd_val_blocks"


def sixteen_bit_png(path: Path) -> None:
    """A deterministic 16-bit RGB PNG (97 x 131, a ramp plus seeded noise)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(1234)
    h, w = 97, 131
    ramp = np.linspace(0.1, 0.9, w, dtype=np.float64)[None, :, None] * np.ones((h, 1, 3))
    img = np.clip(ramp + rng.normal(0, 0.05, (h, w, 3)), 0, 1)
    cv2.imwrite(str(path), np.rint(img * 65535).astype(np.uint16))


def cases(inputs: Path) -> list[tuple[str, list[str], list[str]]]:
    """(name, input paths, extra flags) of each denoise run."""
    out = [("samples", [str(ROOT / "samples")], []),
           ("sixteen_bit", [str(inputs / "sixteen_bit.png")], [])]
    noisy = sorted(SIDD.rglob("SIDD_noisy/*.png")) if SIDD.is_dir() else []
    if noisy:
        out.append(("sidd_teacher", [str(p) for p in noisy], ["--model", "teacher"]))
    else:
        print(f"skipping the SIDD blocks: {SIDD} not found")
    return out


def denoise_all(tree: Path, inputs: Path, out_root: Path, extra: list[str]) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for name, paths, flags in cases(inputs):
        out = out_root / name
        cmd = [sys.executable, "-m", "sdap_cli", "denoise", *paths, "-o", str(out), "-q", *flags, *extra]
        subprocess.run(cmd, cwd=tree, env=env, check=True)


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ref", help="git ref to compare against (e.g. main or a commit)")
    ap.add_argument("--here", action="append", default=[], metavar="FLAG",
                    help="a flag added to this tree's denoise runs only (repeatable), e.g. --here=--no-auto")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sdap-same-") as tmp:
        tmp = Path(tmp)
        ref_tree, inputs = tmp / "ref", tmp / "inputs"
        inputs.mkdir()
        sixteen_bit_png(inputs / "sixteen_bit.png")
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(ref_tree), args.ref], cwd=ROOT, check=True)
        try:
            denoise_all(ref_tree, inputs, tmp / "out_ref", [])
            denoise_all(ROOT, inputs, tmp / "out_here", args.here)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(ref_tree)], cwd=ROOT, check=False)
        before, after = digests(tmp / "out_ref"), digests(tmp / "out_here")
    bad = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    for k in bad:
        print(f"DIFFERENT: {k} ({before.get(k, 'missing')[:12]} at {args.ref}, {after.get(k, 'missing')[:12]} here)")
    print(f"{len(before.keys() | after.keys()) - len(bad)} outputs identical, {len(bad)} different "
          f"(against {args.ref})")
    return 1 if bad or not before else 0


if __name__ == "__main__":
    sys.exit(main())
