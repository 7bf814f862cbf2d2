"""The format table (io/formats.py) against the config and the files it writes; HEIC (pillow-heif extra),
float TIFF and --quality (io/pillow_codec.py, io/images.py)."""

import importlib.util
import io

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage
from PIL import JpegImagePlugin

from sdap_cli.errors import InputError, OutputError
from sdap_cli.io import images


def test_heic_8_and_10_bit_round_trip(tmp_path):
    heif = pytest.importorskip("pillow_heif")
    rgb8 = np.full((12, 14, 3), 120, np.uint8)
    heif.from_bytes(mode="RGB", size=(14, 12), data=rgb8.tobytes()).save(tmp_path / "a.heic", quality=95)
    im = images.read_image(tmp_path / "a.heic")
    assert im.format == "heic" and im.dtype == np.uint8 and abs(im.rgb.mean() * 255 - 120) < 3
    rgb16 = np.full((12, 14, 3), 40000, np.uint16)
    heif.from_bytes(mode="RGB;16", size=(14, 12), data=rgb16.tobytes()).save(tmp_path / "b.heic", quality=95)
    im16 = images.read_image(tmp_path / "b.heic")
    assert im16.dtype == np.uint16 and abs(im16.rgb.mean() * 65535 - 40000) < 600
    images.write_image(tmp_path / "c.heic", im16.rgb, im16)
    f = heif.open_heif(tmp_path / "c.heic", convert_hdr_to_8bit=False)
    assert f.info["bit_depth"] == 10


def test_corrupt_heic_is_one_line(tmp_path):
    pytest.importorskip("pillow_heif")
    (tmp_path / "bad.heic").write_bytes(b"\0\0\0\x18ftypheic" + b"\0" * 40)
    with pytest.raises(InputError, match=r"^\S*bad\.heic: not a readable HEIC"):
        images.read_image(tmp_path / "bad.heic")


def test_heic_without_pillow_heif_names_the_extra(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pillow_heif", None)
    (tmp_path / "x.heic").write_bytes(b"\0\0\0\x18ftypheic" + b"\0" * 40)
    with pytest.raises(InputError, match=r"x\.heic: HEIC/HEIF needs pillow-heif \(pip install pillow-heif\)"):
        images.read_image(tmp_path / "x.heic")


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_float_tiff_keeps_dtype_and_out_of_range_samples(tmp_path, dtype):
    arr = np.full((5, 6, 3), 0.25, dtype)
    arr[0, 0] = (-0.5, 0.5, 2.0)
    arr[1, 1, 1] = np.nan
    tifffile.imwrite(tmp_path / "f.tif", arr, photometric="rgb")
    im = images.read_image(tmp_path / "f.tif")
    assert im.dtype == dtype and im.rgb.min() >= 0 and im.rgb.max() <= 1  # the network sees [0, 1]
    out = tifffile.imread(io.BytesIO(images.encode_image(np.full_like(im.rgb, 0.3), im, "tiff")))
    assert out.dtype == dtype
    assert out[0, 0, 0] == dtype(-0.5) and out[0, 0, 2] == dtype(2.0) and np.isnan(out[1, 1, 1])
    assert out[0, 0, 1] == dtype(0.3) and out[2, 2, 0] == dtype(0.3)  # in-range samples: denoised
    with pytest.raises(OutputError, match="png cannot store float samples"):
        images.encode_image(im.rgb, im, "png")


def test_quality_and_444_chroma():
    src = images.png_like((np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8))
    hi, lo = (images.encode_image(src.rgb, src, "jpeg", q) for q in (95, 30))
    assert len(lo) < len(hi)
    assert JpegImagePlugin.get_sampling(PILImage.open(io.BytesIO(hi))) == 0  # 4:4:4
    assert len(images.encode_image(src.rgb, src, "webp", 30)) < len(images.encode_image(src.rgb, src, "webp", 95))


def test_the_format_table_agrees_with_the_config_and_with_the_files_it_writes(tmp_path):
    """Every writable format of ``FORMATS`` is a --format choice (and no other is); each writes every
    sample type it declares, with and without alpha as declared, and reads back as itself (sniffed from
    the bytes) with that type and the metadata blocks it declares; each refuses what it does not declare."""
    from PIL import ImageCms

    from sdap_cli.config import DenoiseConfig
    from sdap_cli.io.formats import FORMATS, format_for_suffix, sniff, writable
    from sdap_cli.io.metadata import Metadata
    from sdap_cli.io.samples import Image
    from sdap_cli.options import choices

    assert set(choices(DenoiseConfig, "format")) == {"same", *writable()}
    exif = PILImage.Exif()
    exif[271] = "Canon"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    meta = Metadata(exif=exif.tobytes(), icc=icc, xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>', tags=((271, "Canon"),))
    rgb = np.random.default_rng(0).random((16, 20, 3)).astype(np.float32)
    for name in writable():
        f = FORMATS[name]
        if name == "heic" and importlib.util.find_spec("pillow_heif") is None:
            continue
        assert all(format_for_suffix(s) == name for s in f.suffixes)
        for dtype in ("uint8", "uint16", "float16", "float32"):
            for alpha in (None, np.full((16, 20), 7, dtype)):
                like = Image(pixels=np.zeros((16, 20, 3), dtype), dtype=np.dtype(dtype), channels=3 + (alpha is not None),
                             alpha=alpha, format="png")
                out = tmp_path / f"{name}_{dtype}_{alpha is not None}{f.suffixes[0]}"
                if dtype not in f.samples or (alpha is not None and not f.alpha):
                    with pytest.raises(OutputError):
                        images.write_image(out, rgb, like, metadata=meta)
                    continue
                images.write_image(out, rgb, like, metadata=meta)
                data = out.read_bytes()
                back = images.read_image(out)
                assert sniff(data) == name and back.format == name and back.dtype == np.dtype(dtype), out.name
                assert (back.alpha is not None) == (alpha is not None), out.name
                m = back.metadata or Metadata()
                got = {k for k, v in (("exif", m.exif or m.exif_keys or m.tags), ("icc", m.icc), ("xmp", m.xmp)) if v}
                assert got == set(f.metadata), (out.name, got)
