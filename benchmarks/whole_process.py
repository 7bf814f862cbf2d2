"""`sdap denoise` as a whole process against `sdap benchmark`'s in-process time, in one run (issues 25, 34).

Usage:
    python benchmarks/whole_process.py [--runs 5] [--work DIR] [--json out.json] [--runtime auto|torch|...]

Makes two inputs from the real noisy SIDD crops of ../shared/data (a mosaic of 256x256 pieces, so the
noise and the PNG sizes are a real photo's): one 4000x3000 (12 MP) PNG and a folder of six 1632x1224
(2 MP) PNGs. Then, in turn, ``runs`` times each:

* ``sdap benchmark --sizes 12mp --json`` (the default network, in-process, after its warm-up), and
* ``sdap denoise photo.png -o out --overwrite -q`` and ``sdap denoise six/ -o out6 --overwrite -q``, each
  timed from start to exit (the interpreter, imports, reading, the network, writing),

* ``cat small.png | sdap denoise - -o - > out.png`` on a 512x512 PNG of the same crops (goal <= 1.0 s) and
  ``sdap --version`` (goal <= 0.3 s),

and prints the medians and the two ratios the issue bounds: whole / in-process (goal <= 1.4) and
six 2 MP / (1.3 x in-process 12 MP + 1.5 s) (goal <= 1). Before the timed runs, one untimed
``sdap denoise`` fills the runtime's graph cache (``inference/runtime.py``; the first use builds it with
torch), as any use after the first finds it. Nothing else should run meanwhile.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
CROPS = REPO.parent / "shared" / "data" / "sidd_medium_crops_yilmazdoga" / "Noisy_Images"


def mosaic(h: int, w: int, seed: int, files: list[Path] | None = None) -> np.ndarray:
    """An h x w image of random 256x256 pieces of ``files`` (default: the real noisy SIDD crops)."""
    files = sorted(CROPS.glob("*.png")) if files is None else files
    crops = [c for c in (cv2.imread(str(p)) for p in files) if c is not None]
    if not crops:
        sys.exit(f"no noisy images among {len(files)} files (default: {CROPS})")
    rng = np.random.default_rng(seed)
    out = np.zeros((h, w, 3), np.uint8)
    for y in range(0, h, 256):
        for x in range(0, w, 256):
            c = crops[rng.integers(len(crops))]
            oy, ox = rng.integers(0, c.shape[0] - 255), rng.integers(0, c.shape[1] - 255)
            out[y:y + 256, x:x + 256] = c[oy:oy + 256, ox:ox + 256][:min(256, h - y), :min(256, w - x)]
    return out


def timed(cmd: list[str] | str) -> float:
    """Wall seconds of ``cmd`` from start to exit (a string runs in the shell: pipes)."""
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, shell=isinstance(cmd, str))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--runtime", default="auto", help="sdap's --runtime for every command (auto: as installed)")
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="sdap_whole_"))
    photo, six, small = work / "photo12.png", work / "six", work / "small.png"
    six.mkdir(parents=True, exist_ok=True)
    if not photo.exists():
        cv2.imwrite(str(photo), mosaic(3000, 4000, 0))
        for i in range(6):
            cv2.imwrite(str(six / f"p{i}.png"), mosaic(1224, 1632, i + 1))
    if not small.exists():
        cv2.imwrite(str(small), mosaic(512, 512, 7))
    sdap = [sys.executable, "-m", "sdap_cli"]
    rt = ["--runtime", a.runtime]
    subprocess.run(sdap + ["denoise", str(small), "-o", str(work / "warm.png"), "--overwrite", "-q"] + rt, check=True)
    pipe = f"cat {small} | sdap denoise - -o - --runtime {a.runtime} > {work / 'small_out.png'}"
    inproc, whole, folder, piped, version = [], [], [], [], []
    for _ in range(a.runs):
        piped.append(timed(pipe))
        version.append(timed(["sdap", "--version"]))
        j = work / "bench.json"
        subprocess.run(sdap + ["benchmark", "--sizes", "12mp", "--json", str(j)] + rt, check=True,
                       stdout=subprocess.DEVNULL)
        data = json.loads(j.read_text())
        inproc.append(data["rows"][0]["ms"] / 1000)
        whole.append(timed(sdap + ["denoise", str(photo), "-o", str(work / "out"), "--overwrite", "-q"] + rt))
        folder.append(timed(sdap + ["denoise", str(six), "-o", str(work / "out6"), "--overwrite", "-q"] + rt))
    m_in, m_whole, m_six, m_pipe, m_ver = (statistics.median(v) for v in (inproc, whole, folder, piped, version))
    print(f"512x512 PNG through a pipe:        {' '.join(f'{t:.2f}' for t in piped)} s, median {m_pipe:.2f}"
          f"  (goal <= 1.0)")
    print(f"sdap --version:                    {' '.join(f'{t:.2f}' for t in version)} s, median {m_ver:.2f}"
          f"  (goal <= 0.3)")
    roof = data["rows"][0].get("roof")
    print(f"runtime: {data['rows'][0].get('runtime')} {data['rows'][0]['precision']}")
    print(f"in-process 12 MP (sdap benchmark): {' '.join(f'{t:.2f}' for t in inproc)} s, median {m_in:.2f}"
          + (f"  (last run: {data['rows'][0]['gmac_per_s']:.0f} GMAC/s, {roof:.2f} of the roofline)" if roof else ""))
    print(f"whole process, one 12 MP PNG:      {' '.join(f'{t:.2f}' for t in whole)} s, median {m_whole:.2f}"
          f"  -> {m_whole / m_in:.2f} x in-process (goal <= 1.4)")
    bound = 1.3 * m_in + 1.5
    print(f"whole process, six 2 MP PNGs:      {' '.join(f'{t:.2f}' for t in folder)} s, median {m_six:.2f}"
          f"  -> {m_six / bound:.2f} of 1.3 x in-process + 1.5 s = {bound:.2f} s (goal <= 1)")
    if a.json:
        a.json.write_text(json.dumps({"in_process_s": inproc, "whole_12mp_s": whole, "six_2mp_s": folder,
                                      "pipe_512_s": piped, "version_s": version, "whole_ratio": m_whole / m_in,
                                      "six_bound_s": bound, "runtime": data["rows"][0].get("runtime")},
                                     indent=2) + "\n")


if __name__ == "__main__":
    main()
