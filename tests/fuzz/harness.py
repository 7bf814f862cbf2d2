"""Fuzzing harness (issue 36 item 6): file reading over every supported format, and option parsing.

Two targets, each a function of bytes that must either succeed or raise the project's one-line
``SdapError``; any other exception is a finding:

* :func:`read_target`: the bytes written to a file and read by ``io.images.read_image`` (the decoders of
  OpenCV, Pillow, tifffile, rawpy, pillow-heif and exiv2 behind it), with each file's suffix;
* :func:`options_target`: the bytes split into command-line words for ``sdap denoise`` (Typer, pydantic):
  the exit code must be 0, 1 or 2 and the output must hold no traceback.

Seeds are valid small files of each format (:func:`seeds`), so mutations reach past the magic bytes.

    python -m tests.fuzz.harness --seconds 600            # a long run (hypothesis, coverage-guided by its
                                                          # own shrinking and targeting; atheris where installed)
The suite runs a short pass (``tests/fuzz/test_fuzz.py``).
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np

from sdap_cli.errors import SdapError

SUFFIXES = (".png", ".jpg", ".tif", ".bmp", ".webp", ".heic", ".dng", ".exr", ".pgm")


def seeds() -> list[tuple[str, bytes]]:
    """(suffix, bytes) of small valid images of each writable format (8-bit, 16-bit, gray, alpha)."""
    import cv2
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    out = []
    for suffix, arr in ((".png", rgb), (".png", (rgb.astype(np.uint16) * 257)), (".png", rgb[..., 0]),
                        (".png", np.dstack([rgb, rgb[..., :1]])), (".jpg", rgb), (".bmp", rgb),
                        (".tif", rgb), (".tif", rgb.astype(np.float32) / 255), (".pgm", rgb[..., 0])):
        ok, buf = cv2.imencode(suffix, arr)
        if ok:
            out.append((suffix, buf.tobytes()))
    b = io.BytesIO()
    Image.fromarray(rgb).save(b, "WEBP", lossless=True)
    out.append((".webp", b.getvalue()))
    return out


def mutate(seed: bytes, edits: list[tuple[int, bytes]], cut: int) -> bytes:
    """``seed`` with each ``(position, chunk)`` written over it (positions wrap) and ``cut`` bytes cut off."""
    data = bytearray(seed)
    for pos, chunk in edits:
        p = pos % (len(data) + 1)
        data[p:p + len(chunk)] = chunk
    return bytes(data[:max(0, len(data) - cut)] if cut else data)


def read_target(data: bytes, suffix: str) -> None:
    """Read ``data`` as a file named with ``suffix``: an Image, or an SdapError; nothing else."""
    from sdap_cli.io.images import read_image

    fd, path = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        before = Path(path).read_bytes()
        try:
            img = read_image(path)
        except SdapError as e:
            msg = str(e)
            assert msg and "\n" not in msg.strip(), f"not one line: {msg!r}"
            return
        finally:
            assert Path(path).read_bytes() == before, "the input was modified"
        assert img.rgb.ndim == 3 and img.rgb.shape[2] == 3 and min(img.rgb.shape[:2]) >= 1
    finally:
        os.unlink(path)


def options_target(words: list[str], image: Path, out: Path) -> None:
    """``sdap denoise IMAGE -o OUT`` with fuzzed extra words: exit 0, 1 or 2, no traceback."""
    from typer.testing import CliRunner

    from sdap_cli.cli import app

    r = CliRunner().invoke(app, ["denoise", str(image), "-o", str(out), "--overwrite", "-q", "--device", "cpu",
                                 *words])
    assert r.exit_code in (0, 1, 2), (words, r.exit_code, r.output)
    assert "Traceback" not in r.output, (words, r.output)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise AssertionError(f"{words}: {type(r.exception).__name__}: {r.exception}")


def main() -> None:
    import argparse
    import time

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60)
    a = ap.parse_args()
    pool = seeds()
    t_end = time.time() + a.seconds
    n = [0]

    @settings(max_examples=10**9, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.sampled_from(pool), st.lists(st.tuples(st.integers(0, 4096), st.binary(min_size=0, max_size=8)),
                                           max_size=6), st.sampled_from(SUFFIXES), st.integers(0, 64))
    def fuzz(seed, edits, suffix, cut):
        if time.time() > t_end:
            return
        n[0] += 1
        read_target(mutate(seed[1], edits, cut), suffix)

    try:
        fuzz()
    finally:
        print(f"{n[0]} executions in {a.seconds:.0f} s")


if __name__ == "__main__":
    main()
