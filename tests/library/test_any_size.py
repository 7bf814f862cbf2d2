"""Any size: samples stay in their file type and are converted per tile; images that cannot fit are
refused before decoding, with one line naming the file and the numbers."""

from __future__ import annotations

import io
import resource
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest
import tifffile
import torch
from typer.testing import CliRunner

from sdap_cli.cli import app
from sdap_cli.errors import InputError
from sdap_cli.inference import memory
from sdap_cli.inference.denoiser import Denoiser
from sdap_cli.inference.tiling import padded_window
from sdap_cli.io import images
from sdap_cli.io.formats import sniff
from sdap_cli.io.samples import copy_samples, from_unit, to_unit
from sdap_cli.io.sniff import probe
from sdap_cli.method.pd import pad_to_multiple
from tests.helpers import tiny_weights

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_integer_samples_round_trip_exactly(dtype):
    a = RNG.integers(0, np.iinfo(dtype).max + 1, (13, 7, 3)).astype(dtype)
    u = to_unit(a)
    assert u.dtype == np.float32 and u.min() >= 0 and u.max() <= 1
    assert np.array_equal(from_unit(u, dtype), a)
    assert np.array_equal(copy_samples(a, np.empty_like(a), band=4), a)


@pytest.mark.parametrize("channels_in,channels_out", [(3, 3), (1, 1), (1, 3), (3, 1)])
def test_copy_samples_equals_the_float_round_trip(channels_in, channels_out):
    a = RNG.integers(0, 256, (9, 5, channels_in)).astype(np.uint8)
    ref = from_unit(to_unit(a), np.uint8, 1 if channels_out == 1 else None)
    got = copy_samples(a, np.empty((9, 5, channels_out), np.uint8), band=4)
    assert np.array_equal(got, np.broadcast_to(ref, got.shape))     # RGB into gray: the channel mean


def test_float_samples_are_clipped_and_gray_is_the_mean():
    x = np.array([[[np.nan, -1.0, 2.0]], [[0.25, 0.5, 0.75]]], np.float32)
    assert to_unit(x).tolist() == [[[0.0, 0.0, 1.0]], [[0.25, 0.5, 0.75]]]
    assert from_unit(to_unit(x), np.uint8, 1)[..., 0].tolist() == [[85], [128]]
    assert from_unit(to_unit(x), np.float16).dtype == np.float16


@pytest.mark.parametrize("h,w,f", [(5, 7, 2), (1, 9, 2), (9, 1, 4), (2, 2, 8), (33, 17, 8)])
def test_padded_window_is_a_window_of_the_padded_image(h, w, f):
    a = RNG.integers(0, 255, (h, w, 3)).astype(np.uint8)
    whole, _ = pad_to_multiple(torch.from_numpy(a).permute(2, 0, 1)[None].float(), f)
    whole = whole[0].permute(1, 2, 0).numpy()
    H, W = whole.shape[:2]
    for y0, y1, x0, x1 in [(0, H, 0, W), (0, min(H, f), 0, W), (H - f, H, W - f, W)]:
        assert np.array_equal(padded_window(a, y0, y1, x0, x1, f), whole[y0:y1, x0:x1])


@pytest.mark.parametrize("dtype,channels", [(np.uint8, 3), (np.uint16, 3), (np.uint8, 1), (np.float16, 3)])
def test_denoising_samples_equals_denoising_floats(tiny_model, dtype, channels):
    """Samples in, samples out, tile by tile == the float image denoised whole, then converted."""
    d = Denoiser(tiny_model, refine="e")
    src = from_unit(RNG.random((53, 61, 3), dtype=np.float32), dtype, 1 if channels == 1 else None)
    colour = np.broadcast_to(src, (53, 61, 3)) if channels == 1 else src
    ref = from_unit(d.denoise(to_unit(colour), tile=4096), dtype, 1 if channels == 1 else None)
    for tile in (4096, 2 * d.margin + 8):
        out = d.denoise(colour, tile=tile, out=np.empty(src.shape, dtype))
        assert out.dtype == dtype and out.shape == src.shape
        step = 1.0 if dtype in (np.uint8, np.uint16) else 1e-3
        assert np.abs(out.astype(np.float64) - ref.astype(np.float64)).max() <= step


def _png(a: np.ndarray) -> bytes:
    return cv2.imencode(".png", a)[1].tobytes()


@pytest.mark.parametrize("make", [
    lambda: _png(RNG.integers(0, 255, (9, 11, 3)).astype(np.uint8)),
    lambda: _png(RNG.integers(0, 65535, (9, 11)).astype(np.uint16)),
    lambda: _png(RNG.integers(0, 255, (9, 11, 4)).astype(np.uint8)),
    lambda: cv2.imencode(".jpg", RNG.integers(0, 255, (9, 11, 3)).astype(np.uint8))[1].tobytes(),
    lambda: cv2.imencode(".webp", RNG.integers(0, 255, (9, 11, 4)).astype(np.uint8))[1].tobytes(),
    lambda: cv2.imencode(".bmp", RNG.integers(0, 255, (9, 11, 3)).astype(np.uint8))[1].tobytes(),
    lambda: _tiff(RNG.random((9, 11, 3)).astype(np.float32)),
    lambda: _tiff(RNG.integers(0, 255, (9, 11, 2)).astype(np.uint8)),
])
def test_probe_reads_what_decoding_will_produce(make, tmp_path):
    data = make()
    h, w, c, b = probe(data, sniff(data))
    p = tmp_path / ("x." + sniff(data).replace("jpeg", "jpg").replace("tiff", "tif"))
    p.write_bytes(data)
    img = images.read_image(p)
    decoded = img.pixels.size * img.pixels.itemsize + (0 if img.alpha is None else img.alpha.size * b)
    assert (h, w) == (img.height, img.width) and b == img.pixels.itemsize
    assert h * w * c * b >= decoded


def _tiff(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, a, photometric="minisblack" if a.shape[2] <= 2 else "rgb", planarconfig="contig",
                     extrasamples=("unassalpha",) if a.shape[2] == 2 else None)
    return buf.getvalue()


def huge_png_header(path, width: int, height: int, depth: int = 16, colour: int = 6) -> None:
    """A PNG whose IHDR claims ``width`` x ``height`` (its pixel data is one empty IDAT)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([depth, colour, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b""))
                     + chunk(b"IEND", b""))


def test_too_large_is_refused_before_decoding(tmp_path, monkeypatch):
    src = tmp_path / "pano.png"
    cv2.imwrite(str(src), RNG.integers(0, 255, (300, 400, 3)).astype(np.uint8))
    need = memory.denoise_need(300 * 400 * 3, 10 << 20)
    monkeypatch.setattr(memory, "available_memory", lambda: need - 1)
    decoded = []
    monkeypatch.setattr(cv2, "imdecode", lambda *a: decoded.append(1))
    with pytest.raises(InputError) as e:
        images.read_image(src, fits=memory.denoise_fits)
    msg = str(e.value)
    assert msg.startswith(f"{src}: 400x300 pixels") and "MiB of memory" in msg and "\n" not in msg
    assert decoded == []                                         # refused before decoding
    monkeypatch.setattr(memory, "available_memory", lambda: need + (1 << 30))
    with pytest.raises(InputError, match="corrupt or truncated"):   # now it is decoded (by the stub)
        images.read_image(src, fits=memory.denoise_fits)


def test_cli_refuses_the_huge_file_and_goes_on(tmp_path):
    """A header claiming 100000 x 100000 RGBA 16-bit (80 GB decoded) is refused with one line; the
    small file beside it is denoised; exit code 1."""
    huge_png_header(tmp_path / "huge.png", 100_000, 100_000)
    cv2.imwrite(str(tmp_path / "small.png"), RNG.integers(0, 255, (40, 48, 3)).astype(np.uint8))
    w = tiny_weights(tmp_path / "w.safetensors")
    r = CliRunner().invoke(app, ["denoise", str(tmp_path / "huge.png"), str(tmp_path / "small.png"),
                                 "-o", str(tmp_path / "out"), "-w", str(w), "-q"])
    assert r.exit_code == 1
    line = [ln for ln in r.output.splitlines() if "huge.png" in ln]
    assert len(line) == 1 and "100000x100000 pixels" in line[0] and "available" in line[0]
    assert (tmp_path / "out" / "small.png").exists() and not (tmp_path / "out" / "huge.png").exists()
    assert "Traceback" not in r.output


def test_available_memory_honours_ulimit_v():
    code = "from sdap_cli.inference.memory import available_memory; print(available_memory())"
    limit = 3 << 30
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
    assert 0 <= int(out.stdout) < limit


@pytest.mark.parametrize("dtype,channels", [(np.uint8, 3), (np.uint16, 1), (np.uint8, 4)])
def test_encoding_samples_equals_encoding_floats_and_leaves_the_buffer(tmp_path, dtype, channels):
    a = RNG.integers(0, np.iinfo(dtype).max + 1, (20, 30, channels)).astype(dtype)
    p = tmp_path / "a.png"
    cv2.imwrite(str(p), a)
    like = images.read_image(p)
    buf = like.output_buffer()
    buf[:] = like.pixels[..., ::-1] if buf.shape[2] == 3 else like.pixels   # some other picture
    kept = buf.copy()
    from_samples = images.encode_image(buf, like, "png")
    assert np.array_equal(buf, kept)                               # the RGB -> BGR swap was undone
    assert from_samples == images.encode_image(to_unit(like.colour)[..., ::-1] if buf.shape[2] == 3
                                               else to_unit(like.colour), like, "png")
