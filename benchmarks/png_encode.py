"""How OpenCV's PNG settings trade time for bytes on a denoised and a noisy photo (``io.codecs.PNG_PARAMS``).

Usage:
    python benchmarks/png_encode.py DENOISED.png [NOISY.png ...] [--runs 3]

Every setting writes the same pixels (checked by decoding each result); only time and size differ. Prints,
per image and setting, the best encode time of ``--runs`` and the file size.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

SETTINGS = {
    "level 3, all filters (libpng default; sdap before)": [cv2.IMWRITE_PNG_COMPRESSION, 3],
    "level 1, all filters": [cv2.IMWRITE_PNG_COMPRESSION, 1],
    "level 3, RLE, Sub": [cv2.IMWRITE_PNG_COMPRESSION, 3, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE,
                          cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB],
    "level 3, RLE, Paeth (sdap now)": [cv2.IMWRITE_PNG_COMPRESSION, 3, cv2.IMWRITE_PNG_STRATEGY,
                                       cv2.IMWRITE_PNG_STRATEGY_RLE, cv2.IMWRITE_PNG_FILTER,
                                       cv2.IMWRITE_PNG_FILTER_PAETH],
    "level 3, RLE, all filters": [cv2.IMWRITE_PNG_COMPRESSION, 3, cv2.IMWRITE_PNG_STRATEGY,
                                  cv2.IMWRITE_PNG_STRATEGY_RLE],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images", nargs="+")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    for path in a.images:
        im = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        print(f"{path} ({im.shape[1]}x{im.shape[0]})")
        for name, params in SETTINGS.items():
            best, enc = float("inf"), None
            for _ in range(a.runs):
                t0 = time.perf_counter()
                ok, enc = cv2.imencode(".png", im, params)
                best = min(best, time.perf_counter() - t0)
            assert np.array_equal(cv2.imdecode(enc, cv2.IMREAD_UNCHANGED), im)
            print(f"  {name:52s} {best * 1000:7.0f} ms {len(enc) / 1e6:7.2f} MB")


if __name__ == "__main__":
    main()
