"""The banded PNG encoder of large images (io/codecs.encode_png_bands): what a decoder reads back is the image, for
every sample type and channel count sdap writes, whatever the number of bands; the zlib stream is one valid
stream (its Adler-32 joined from the bands'); and sdap's writer uses it from BANDS_FROM samples on, with the
metadata chunks after IHDR."""

import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage

from sdap_cli.io import codecs
from sdap_cli.io.images import image_from_array, read_image, write_image
from sdap_cli.io.metadata import Metadata
from sdap_cli.io.codecs import _adler_join, encode_png_bands


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    out, i = [], 8
    while i < len(png):
        n = struct.unpack(">I", png[i:i + 4])[0]
        kind, body = png[i + 4:i + 8], png[i + 8:i + 8 + n]
        assert struct.unpack(">I", png[i + 8 + n:i + 12 + n])[0] == zlib.crc32(kind + body)
        out.append((kind, body))
        i += 12 + n
    return out


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("workers", [1, 2, 5])
def test_decoders_read_back_the_image(dtype, channels, workers):
    rng = np.random.default_rng(channels * 10 + workers)
    for h, w in ((1, 1), (3, 1), (13, 7), (40, 33)):
        x = rng.integers(0, np.iinfo(dtype).max + 1, (h, w, channels)).astype(dtype)
        x[: h // 2] //= 7                                      # runs and smooth parts, not only noise
        png = encode_png_bands(x, workers)
        y = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
        want = x[..., 0] if channels == 1 else x[..., [2, 1, 0, 3][:channels]] if channels == 4 else x[..., ::-1]
        assert y.dtype == dtype and np.array_equal(y, want), (h, w)
        idat = b"".join(body for kind, body in _chunks(png) if kind == b"IDAT")
        rows = np.frombuffer(zlib.decompress(idat), np.uint8)   # raises on a wrong Adler-32
        assert rows.size == h * (1 + w * channels * x.dtype.itemsize)
        if dtype == np.uint8 and channels == 3:
            assert np.array_equal(np.asarray(PILImage.open(__import__("io").BytesIO(png))), x)


def test_adler32_of_joined_pieces():
    data = np.random.default_rng(0).integers(0, 256, 200_001).astype(np.uint8).tobytes()
    for cuts in ((0, 200_001), (0, 1, 200_001), (0, 5, 77_777, 199_999, 200_001)):
        pieces = [data[a:b] for a, b in zip(cuts, cuts[1:])]
        assert _adler_join([(zlib.adler32(p), len(p)) for p in pieces]) == zlib.adler32(data)


def test_sdap_writes_large_pngs_in_bands_with_their_metadata(tmp_path, monkeypatch):
    monkeypatch.setattr("sdap_cli.io.codecs.BANDS_FROM", 1000)        # the rule, on a small image
    calls = []
    real = codecs.encode_png_bands
    monkeypatch.setattr("sdap_cli.io.codecs.encode_png_bands", lambda a, *k: calls.append(a.shape) or real(a, *k))
    rng = np.random.default_rng(1)
    for dtype, ch in ((np.uint8, 3), (np.uint16, 3), (np.uint8, 4), (np.uint16, 1), (np.uint8, 2)):
        x = rng.integers(0, np.iinfo(dtype).max + 1, (30, 40, ch)).astype(dtype)
        like = image_from_array(x, "x.png", "png")
        meta = Metadata(icc=b"\0" * 40, exif=b"Exif\0\0II*\0\x08\0\0\0\0\0", xmp=b"<x/>")
        path = tmp_path / f"o{np.dtype(dtype).itemsize}{ch}.png"
        write_image(path, like.pixels, like, metadata=meta)
        back = read_image(path)
        assert back.pixels.dtype == dtype and np.array_equal(back.pixels[..., :like.pixels.shape[2]], like.pixels)
        assert (back.alpha is None) == (like.alpha is None)
        if like.alpha is not None:
            assert np.array_equal(back.alpha, like.alpha)
        kinds = [k for k, _ in _chunks(path.read_bytes())]
        assert kinds[:4] == [b"IHDR", b"iCCP", b"eXIf", b"iTXt"] and kinds[-1] == b"IEND"
    assert len(calls) == 5
