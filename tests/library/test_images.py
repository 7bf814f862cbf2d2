"""Tests for sdap_cli.io.images: bit-exact round trips, bad inputs, atomic writes, RAW."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import sys
import time
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

from sdap_cli.errors import InputError, OutputError
from sdap_cli.io import images
from sdap_cli.io.images import Image, encode_image, read_image, write_image

RAW_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "raw_samples"
RNG = np.random.default_rng(1234)


def rand(shape, dtype):
    return RNG.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype, endpoint=True)


def source(arr: np.ndarray, fmt: str = "png") -> Image:
    """An Image as read_image would make it from an integer array (H, W[, C])."""
    return images.image_from_array(arr, "test", fmt)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def png_bytes(arr: np.ndarray) -> bytes:
    return encode_image(source(arr).rgb, source(arr), "png")


@pytest.mark.parametrize("fmt", ["png", "tiff"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_rgb_round_trip_is_exact(tmp_path, fmt, dtype):
    arr = rand((7, 5, 3), dtype)
    arr[0, 0] = 0
    arr[0, 1] = np.iinfo(dtype).max
    src = source(arr)
    out = tmp_path / f"x{images.suffix_for_format(fmt)}"
    write_image(out, src.rgb, src)
    back = read_image(out)
    assert back.dtype == dtype and back.channels == 3 and back.alpha is None
    assert back.format == fmt and (back.height, back.width) == (7, 5)
    assert back.rgb.dtype == np.float32 and back.rgb.shape == (7, 5, 3)
    assert np.array_equal(np.rint(back.rgb * np.iinfo(dtype).max).astype(dtype), arr)


@pytest.mark.parametrize("fmt", ["png", "tiff"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_gray_stays_gray(tmp_path, fmt, dtype):
    arr = rand((16, 16), dtype)
    src = source(arr)
    assert src.channels == 1 and np.array_equal(src.rgb[..., 0], src.rgb[..., 2])
    out = tmp_path / f"g{images.suffix_for_format(fmt)}"
    write_image(out, src.rgb, src)
    back = read_image(out)
    assert back.channels == 1 and back.dtype == dtype
    if fmt == "png":
        raw = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    else:
        raw = tifffile.imread(out)
    assert raw.shape == (16, 16) and np.array_equal(raw, arr)


@pytest.mark.parametrize("fmt", ["png", "tiff"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_rgba_alpha_passes_through(tmp_path, fmt, dtype):
    arr = rand((7, 5, 4), dtype)
    src = read_image(_write_raw_png(tmp_path / "in.png", arr)) if fmt == "png" else source(arr)
    assert src.channels == 4 and np.array_equal(src.alpha, arr[..., 3])
    denoised = np.clip(src.rgb + 0.25, 0, 1)  # the denoiser changes colour, never alpha
    out = tmp_path / f"o{images.suffix_for_format(fmt)}"
    write_image(out, denoised, src)
    back = read_image(out)
    assert back.channels == 4 and back.dtype == dtype
    assert back.alpha.dtype == dtype and np.array_equal(back.alpha, arr[..., 3])
    scale = np.iinfo(dtype).max
    assert np.array_equal(np.rint(back.rgb * scale), np.rint(denoised * scale))


def _write_raw_png(path: Path, rgba: np.ndarray) -> Path:
    path.write_bytes(cv2.imencode(".png", rgba[..., [2, 1, 0, 3]])[1].tobytes())
    return path


def test_big_endian_and_lzw_tiff(tmp_path):
    arr = rand((7, 5, 3), np.uint16)
    tifffile.imwrite(tmp_path / "be.tif", arr, byteorder=">")
    (tmp_path / "lzw.tif").write_bytes(cv2.imencode(".tif", arr[..., ::-1])[1].tobytes())  # LZW
    for name in ("be.tif", "lzw.tif"):
        im = read_image(tmp_path / name)
        assert im.dtype == np.uint16 and im.dtype.isnative
        assert np.array_equal(np.rint(im.rgb * 65535).astype(np.uint16), arr)


def test_planar_tiff(tmp_path):
    arr = rand((7, 5, 3), np.uint8)
    tifffile.imwrite(tmp_path / "p.tif", np.moveaxis(arr, -1, 0), photometric="rgb", planarconfig="separate")
    im = read_image(tmp_path / "p.tif")
    assert im.channels == 3 and np.array_equal(np.rint(im.rgb * 255).astype(np.uint8), arr)


def test_float64_tiff_rejected(tmp_path):
    tifffile.imwrite(tmp_path / "f.tif", np.zeros((4, 4), np.float64))
    with pytest.raises(InputError, match=r"f\.tif: unsupported sample type float64"):
        read_image(tmp_path / "f.tif")


def test_jpeg_exif_orientation_is_applied(tmp_path):
    jpg = cv2.imencode(".jpg", np.zeros((8, 16, 3), np.uint8))[1].tobytes()
    ifd = b"II*\0" + struct.pack("<IHHHIHHI", 8, 1, 0x0112, 3, 1, 6, 0, 0)  # orientation 6
    app1 = b"Exif\0\0" + ifd
    (tmp_path / "r.jpg").write_bytes(jpg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpg[2:])
    assert read_image(tmp_path / "r.jpg").rgb.shape == (16, 8, 3)


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".webp", ".bmp", ".JPG"])
def test_eight_bit_formats(tmp_path, suffix):
    arr = rand((16, 16, 3), np.uint8)
    src = source(arr)
    out = tmp_path / f"x{suffix}"
    write_image(out, src.rgb, src)
    back = read_image(out)
    assert back.dtype == np.uint8 and back.rgb.shape == (16, 16, 3)
    assert back.format == images.format_for_suffix(suffix)
    if suffix == ".bmp":
        assert np.array_equal(np.rint(back.rgb * 255).astype(np.uint8), arr)


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "bmp"])
def test_sixteen_bit_into_eight_bit_format_refused(tmp_path, fmt):
    src = source(rand((7, 5, 3), np.uint16))
    out = tmp_path / f"x{images.suffix_for_format(fmt)}"
    with pytest.raises(OutputError) as err:
        write_image(out, src.rgb, src)
    msg = str(err.value)
    assert msg.startswith(str(out)) and fmt in msg and "png" in msg and "tiff" in msg
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_alpha_into_jpeg_refused():
    src = source(rand((7, 5, 4), np.uint8))
    with pytest.raises(OutputError, match="alpha"):
        encode_image(src.rgb, src, "jpeg")


def test_encode_clips_and_rounds():
    src = source(np.zeros((1, 3, 3), np.uint8))
    rgb = np.array([[[-0.5, np.nan, 2.0], [0.5, 1 / 255 * 0.49, 1 / 255 * 0.51], [1, 1, 1]]], np.float32)
    back = cv2.imdecode(np.frombuffer(encode_image(rgb, src, "png"), np.uint8), cv2.IMREAD_UNCHANGED)
    assert back[..., ::-1].tolist() == [[[0, 0, 255], [128, 0, 1], [255, 255, 255]]]


def test_formats_and_suffixes():
    assert images.format_for_suffix(".JPG") == "jpeg" and images.format_for_suffix(".tiff") == "tiff"
    assert [images.suffix_for_format(f) for f in ("jpeg", "tiff", "png", "bmp", "webp")] == [
        ".jpg", ".tif", ".png", ".bmp", ".webp"]
    for bad in (".txt", ".dng", ""):
        with pytest.raises(OutputError):
            images.format_for_suffix(bad)
    assert images.is_image_path("a/B.PNG") and images.is_image_path(Path("x.NEF"))
    assert not images.is_image_path("notes.txt") and not images.is_image_path("noext")


def _bad_inputs(tmp_path: Path) -> dict[str, Path]:
    good = png_bytes(rand((16, 16, 3), np.uint8))
    files = {
        "file is empty": ("empty.png", b""),
        "corrupt or truncated": ("half.png", good[: len(good) // 2]),
        "not a readable image": ("noise.png", RNG.integers(0, 256, 300, dtype=np.uint8).tobytes()),
        "unsupported file type '.txt'": ("notes.txt", b"hello\n"),
        "unrecognised": ("text.jpg", b"not an image at all"),
    }
    paths = {}
    for reason, (name, data) in files.items():
        (tmp_path / name).write_bytes(data)
        paths[reason] = tmp_path / name
    (tmp_path / "folder.png").mkdir()
    paths["is a folder"] = tmp_path / "folder.png"
    paths["no such file"] = tmp_path / "missing.png"
    return paths


def test_bad_inputs_raise_one_line_input_error(tmp_path):
    for reason, path in _bad_inputs(tmp_path).items():
        before = sha(path) if path.is_file() else None
        with pytest.raises(InputError) as err:
            read_image(path)
        msg = str(err.value)
        assert msg.startswith(f"{path}: "), msg
        assert "\n" not in msg and reason in msg, msg
        if before is not None:
            assert sha(path) == before


def test_truncated_png_never_partially_decodes(tmp_path):
    good = png_bytes(rand((16, 16, 3), np.uint16))
    for cut in (8, 40, len(good) - 12, len(good) - 1):
        (tmp_path / "t.png").write_bytes(good[:cut])
        with pytest.raises(InputError, match="corrupt or truncated"):
            read_image(tmp_path / "t.png")


def test_png_without_iend_rejected_even_if_decoder_is_lenient(tmp_path, monkeypatch):
    good = png_bytes(rand((16, 16, 3), np.uint8))
    monkeypatch.setattr(cv2, "imdecode", lambda *_a: np.zeros((16, 16, 3), np.uint8))  # like older OpenCV
    for cut in (12, 1):  # no IEND chunk / IEND without its whole CRC
        (tmp_path / "t.png").write_bytes(good[:-cut])
        with pytest.raises(InputError, match="corrupt or truncated"):
            read_image(tmp_path / "t.png")
    (tmp_path / "ok.png").write_bytes(good)
    assert read_image(tmp_path / "ok.png").rgb.shape == (16, 16, 3)


def test_write_is_atomic_and_leaves_no_temp(tmp_path):
    src = source(rand((7, 5, 3), np.uint8))
    out = tmp_path / "out.png"
    write_image(out, src.rgb, src)
    write_image(out, 1 - src.rgb, src)  # overwrite
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    assert np.allclose(read_image(out).rgb, 1 - src.rgb, atol=0.5 / 255)
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(out).st_mode & 0o777 == 0o666 & ~mask  # not NamedTemporaryFile's 0600


def test_write_into_missing_folder(tmp_path):
    src = source(rand((7, 5, 3), np.uint8))
    with pytest.raises(OutputError) as err:
        write_image(tmp_path / "nope" / "out.png", src.rgb, src)
    assert str(err.value).startswith(str(tmp_path / "nope" / "out.png") + ": cannot write")
    assert list(tmp_path.iterdir()) == []


def test_unknown_output_suffix(tmp_path):
    src = source(rand((7, 5, 3), np.uint8))
    with pytest.raises(OutputError, match=r"^.*out\.xyz: unsupported output file type"):
        write_image(tmp_path / "out.xyz", src.rgb, src)
    assert list(tmp_path.iterdir()) == []


def test_failed_replace_keeps_old_file(tmp_path, monkeypatch):
    src = source(rand((7, 5, 3), np.uint8))
    out = tmp_path / "out.png"
    out.write_bytes(b"old content")

    def boom(*_args, **_kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OutputError, match=r"out\.png: cannot write \(No space left on device\)"):
        write_image(out, src.rgb, src)
    assert out.read_bytes() == b"old content"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_stdin_and_stdout(monkeypatch):
    arr = rand((7, 5, 3), np.uint16)
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(png_bytes(arr))))
    im = read_image("-")
    assert im.format == "png" and im.dtype == np.uint16
    assert np.array_equal(np.rint(im.rgb * 65535).astype(np.uint16), arr)

    out = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", types.SimpleNamespace(buffer=out))
    write_image("-", im.rgb, im)
    data = out.getvalue()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and np.array_equal(back[..., ::-1], arr)

    out2 = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", types.SimpleNamespace(buffer=out2))
    write_image("-", im.rgb, im, fmt="tiff")
    assert tifffile.imread(io.BytesIO(out2.getvalue())).shape == (7, 5, 3)

    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(b"")))
    with pytest.raises(InputError, match=r"^<stdin>: .*empty"):
        read_image("-")
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(b"garbage" * 10)))
    with pytest.raises(InputError, match=r"^<stdin>: not a readable image"):
        read_image("-")


def test_raw_dng():
    pytest.importorskip("rawpy")
    path = RAW_DIR / "canon_eos_6d.dng"
    if not path.is_file():
        pytest.skip(f"RAW sample not found: {path}")
    before = sha(path)
    t0 = time.perf_counter()
    im = read_image(path)
    assert time.perf_counter() - t0 < 10
    assert im.format == "raw" and im.dtype == np.uint16 and im.channels == 3 and im.alpha is None
    assert 100 <= im.height <= 10000 and 100 <= im.width <= 10000
    assert im.rgb.dtype == np.float32 and 0.01 < im.rgb.mean() < 0.99 and im.rgb.max() <= 1
    assert sha(path) == before


def test_raw_without_rawpy(tmp_path, monkeypatch):
    (tmp_path / "x.dng").write_bytes(b"II*\0" + b"\0" * 64)
    monkeypatch.setitem(sys.modules, "rawpy", None)  # makes `import rawpy` fail
    with pytest.raises(InputError, match=r"x\.dng: camera RAW needs the rawpy package \(pip install rawpy\)"):
        read_image(tmp_path / "x.dng")
