"""Fuzzing harness (issue 36 item 6): file reading over every supported format, and option parsing.

Two targets, each a function of bytes that must either succeed or raise the project's one-line
``SdapError``; any other exception is a finding:

* :func:`read_target`: the bytes written to a file and read by ``io.images.read_image`` (the decoders of
  OpenCV, Pillow, tifffile, rawpy, pillow-heif and exiv2 behind it), with each file's suffix;
* :func:`options_target`: the bytes split into command-line words for ``sdap denoise`` (Typer, pydantic):
  the exit code must be 0, 1 or 2 and the output must hold no traceback.

Seeds are valid small files of each format (:func:`seeds`), so mutations reach past the magic bytes.

    python -m tests.fuzz.harness --seconds 3600 [--findings DIR]   # a long run of random mutations
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
                        (".tif", rgb), (".tif", rgb.astype(np.float32) / 255)):
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


def read_target(data: bytes, suffix: str) -> str:
    """Read ``data`` as a file named with ``suffix``: 'image' (an Image of 3 channels) or 'error' (a
    one-line SdapError); anything else raises."""
    from sdap_cli.inference.memory import denoise_fits
    from sdap_cli.io.images import read_image

    fd, path = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        before = Path(path).read_bytes()
        try:
            img = read_image(path, fits=denoise_fits)   # as sdap denoise reads: the size checked first
        except SdapError as e:
            msg = str(e)
            assert msg and "\n" not in msg.strip(), f"not one line: {msg!r}"
            return "error"
        finally:
            assert Path(path).read_bytes() == before, "the input was modified"
        assert img.colour.ndim == 3 and img.colour.shape[2] == 3 and min(img.colour.shape[:2]) >= 1   # no copy
        return "image"
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
    """The long run: random mutations of the seeds (positions, chunks and cuts drawn from a seeded
    generator, as the suite's hypothesis pass draws them), each read as every suffix in turn; counts printed
    every minute; a finding (any exception but the one-line SdapError, or an assertion) is saved under
    ``--findings`` with its suffix and reason, and the run goes on."""
    import argparse
    import time
    import traceback

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--findings", type=Path, default=Path("runs/fuzz_findings"))
    ap.add_argument("--target", choices=("read", "options"), default="read")
    a = ap.parse_args()
    if a.target == "options":
        return _options_run(a)
    pool = seeds()
    rng = np.random.default_rng(a.seed)
    t0 = time.time()
    n = found = 0
    last = t0
    while time.time() - t0 < a.seconds:
        _, seed = pool[int(rng.integers(len(pool)))]
        edits = [(int(rng.integers(0, 4097)), rng.bytes(int(rng.integers(0, 9)))) for _ in range(int(rng.integers(0, 7)))]
        data = mutate(seed, edits, int(rng.integers(0, 65)))
        suffix = SUFFIXES[int(rng.integers(len(SUFFIXES)))]
        n += 1
        try:
            read_target(data, suffix)
        except Exception:                                   # noqa: BLE001 - a finding, kept and counted
            found += 1
            a.findings.mkdir(parents=True, exist_ok=True)
            (a.findings / f"finding_{found}{suffix}").write_bytes(data)
            (a.findings / f"finding_{found}.txt").write_text(traceback.format_exc())
        if time.time() - last > 60:
            last = time.time()
            print(f"{n} executions, {found} findings, {last - t0:.0f} s", flush=True)
    print(f"{n} executions, {found} findings, {time.time() - t0:.0f} s (done)", flush=True)


WORDS = ("--tile", "--tile-overlap", "--precision", "--strength", "--pd", "--refine", "--format", "--quality",
         "--shard", "--model", "--suffix", "--auto", "--no-auto", "-r", "--json", "--skip-existing", "--metadata",
         "-1", "0", "1", "7", "1e9", "nan", "inf", "bf16", "fp8", "none", "e", "r3", "png", "jpg", "tif", "1/2",
         "3/2", "0/0", "x", "", "--", "-", "--weights", "/nonexistent", "--device", "cuda", "mps", "\x00")


def _options_run(a) -> None:
    """The long run of :func:`options_target`: 0-5 words drawn from ``WORDS`` per call."""
    import tempfile
    import time
    import traceback

    import cv2

    rng = np.random.default_rng(a.seed)
    d = Path(tempfile.mkdtemp())
    image = d / "a.png"
    cv2.imwrite(str(image), rng.integers(0, 256, (24, 20, 3), dtype=np.uint8))
    t0, n, found = time.time(), 0, 0
    while time.time() - t0 < a.seconds:
        words = [WORDS[int(i)] for i in rng.integers(0, len(WORDS), int(rng.integers(0, 6)))]
        n += 1
        try:
            options_target(words, image, d / "out")
        except Exception:                                   # noqa: BLE001 - a finding, kept and counted
            found += 1
            a.findings.mkdir(parents=True, exist_ok=True)
            (a.findings / f"options_{found}.txt").write_text(f"{words!r}\n{traceback.format_exc()}")
    print(f"{n} executions, {found} findings, {time.time() - t0:.0f} s (done)", flush=True)


if __name__ == "__main__":
    main()
