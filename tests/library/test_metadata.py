"""EXIF, ICC and XMP go from input to output (io/metadata.py), orientation 1 after rotation on reading."""

import io

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage
from PIL import ImageCms

from sdap_cli.io import images
from sdap_cli.io.metadata import read_metadata

ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Label="sdap"/></rdf:RDF>'
       b'</x:xmpmeta>')
SUFFIX = {"jpeg": ".jpg", "png": ".png", "tiff": ".tif", "webp": ".webp", "heic": ".heic"}


def camera_jpeg(path, orientation=6, h=10, w=16):
    """A JPEG with an ICC profile, XMP and EXIF: camera, date, lens and exposure (sub-IFD), orientation."""
    e = PILImage.Exif()
    e[271], e[272], e[274], e[306] = "Canon", "EOS R5", orientation, "2024:01:02 03:04:05"
    e[0x8769] = {0xA434: "RF24-105mm", 0x829A: (1, 100)}
    rgb = (np.random.default_rng(0).random((h, w, 3)) * 255).astype(np.uint8)
    PILImage.fromarray(rgb).save(path, exif=e.tobytes(), icc_profile=ICC, xmp=XMP, quality=95)
    return path


@pytest.mark.parametrize("fmt", ["jpeg", "png", "tiff", "webp", "heic"])
def test_metadata_reaches_every_format_that_holds_it(tmp_path, fmt):
    if fmt == "heic":
        pytest.importorskip("pillow_heif")
    src = images.read_image(camera_jpeg(tmp_path / "in.jpg"))
    assert src.rgb.shape[:2] == (16, 10)  # orientation 6 was applied on reading
    out = tmp_path / f"out{SUFFIX[fmt]}"
    images.write_image(out, src.rgb, src, metadata=src.metadata)
    meta = images.read_image(out).metadata
    tags = dict(meta.tags)
    assert meta.icc == ICC
    assert meta.xmp == XMP or (fmt == "tiff" and b'xmp:Label="sdap"' in meta.xmp)    # exiv2 re-serialises it
    assert tags[271] == "Canon" and tags[272] == "EOS R5" and tags[306] == "2024:01:02 03:04:05"
    assert tags[274] == 1  # the pixels are upright now
    if fmt != "tiff" or pytest.importorskip("pyexiv2"):      # TIFF: the sub-IFD is written by exiv2
        exif = PILImage.Exif()
        exif.load(meta.exif)
        assert exif.get_ifd(0x8769)[0xA434] == "RF24-105mm"


def test_bmp_and_no_metadata_write_nothing(tmp_path):
    src = images.read_image(camera_jpeg(tmp_path / "in.jpg"))
    images.write_image(tmp_path / "o.bmp", src.rgb, src, metadata=src.metadata)
    assert images.read_image(tmp_path / "o.bmp").metadata is None
    plain = images.png_like((np.random.default_rng(1).random((9, 7, 3)) * 255).astype(np.uint8))
    for fmt in ("png", "tiff"):
        assert images.encode_image(plain.rgb, plain, fmt, metadata=None) == \
            images.encode_image(plain.rgb, plain, fmt, metadata=read_metadata(b"not an image"))


def test_orientation_kept_when_pixels_were_not_rotated(tmp_path):
    e = PILImage.Exif()
    e[274], e[271] = 6, "Nikon"
    buf = io.BytesIO()
    PILImage.new("RGB", (8, 4)).save(buf, "PNG", exif=e.tobytes())
    meta = read_metadata(buf.getvalue(), rotated=False)
    assert dict(meta.tags)[274] == 6 and read_metadata(buf.getvalue(), rotated=True).tags[0] == (271, "Nikon")
    assert dict(read_metadata(buf.getvalue(), rotated=True).tags)[274] == 1


def test_tiff_source_layout_tags_are_not_copied(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((4, 5, 3), np.uint16), extratags=[(271, "s", 0, "Sony", True)])
    meta = images.read_image(tmp_path / "a.tif").metadata
    assert meta.tags == ((271, "Sony"),)  # no strips, sizes, tifffile description or software


def test_cli_keeps_metadata_and_strip_metadata_drops_it(tmp_path):
    from typer.testing import CliRunner

    from sdap_cli.cli import app
    from tests.helpers import tiny_weights

    w = tiny_weights(tmp_path / "w.safetensors")
    src = camera_jpeg(tmp_path / "in.jpg", h=40, w=48)
    r = CliRunner().invoke(app, ["denoise", str(src), "-o", str(tmp_path / "kept"), "-w", str(w), "-q"])
    assert r.exit_code == 0, r.output
    kept = PILImage.open(tmp_path / "kept" / "in.jpg")
    assert kept.info["icc_profile"] == ICC and kept.getexif()[271] == "Canon" and kept.getexif()[274] == 1
    r = CliRunner().invoke(app, ["denoise", str(src), "-o", str(tmp_path / "bare"), "-w", str(w), "-q",
                                 "--strip-metadata"])
    assert r.exit_code == 0, r.output
    bare = PILImage.open(tmp_path / "bare" / "in.jpg")
    assert "icc_profile" not in bare.info and "xmp" not in bare.info and len(bare.getexif()) == 0


def test_tiff_output_carries_the_exif_sub_ifd(tmp_path):
    """A JPEG's lens and exposure (Exif sub-IFD) reach a TIFF output (written by exiv2), pixels unchanged."""
    from PIL.TiffImagePlugin import IFDRational

    pyexiv2 = pytest.importorskip("pyexiv2")
    e = PILImage.Exif()
    e[271], e[272], e[274] = "Canon", "EOS R5", 1
    e[0x8769] = {0xA434: "RF24-105mm", 0x829A: IFDRational(1, 100)}
    PILImage.fromarray(np.full((24, 32, 3), 99, np.uint8)).save(tmp_path / "in.jpg", exif=e.tobytes(), xmp=XMP)
    src = images.read_image(tmp_path / "in.jpg")
    rgb = src.rgb.astype(np.float32) / 255
    images.write_image(tmp_path / "out.tif", rgb, src, "tiff", metadata=src.metadata)
    images.write_image(tmp_path / "bare.tif", rgb, src, "tiff")
    img = pyexiv2.Image(str(tmp_path / "out.tif"))
    try:
        exif = img.read_exif()
    finally:
        img.close()
    assert exif["Exif.Image.Make"] == "Canon" and exif["Exif.Photo.LensModel"] == "RF24-105mm"
    assert exif["Exif.Photo.ExposureTime"] == "1/100" and exif.get("Exif.Image.Orientation", "1") == "1"
    assert np.array_equal(tifffile.imread(tmp_path / "out.tif"), tifffile.imread(tmp_path / "bare.tif"))
    assert b'xmp:Label="sdap"' in read_metadata((tmp_path / "out.tif").read_bytes()).xmp


def test_raw_output_has_make_model_exposure_and_srgb_icc(tmp_path):
    """colorchart.dng (Canon EOS Kiss X4): its TIFF output names the camera and carries an sRGB profile."""
    from tests.conftest import shared_data

    pytest.importorskip("rawpy")
    pyexiv2 = pytest.importorskip("pyexiv2")
    raw = shared_data("raw_samples", "colorchart.dng")
    src = images.read_image(raw)
    assert src.metadata.raw and src.metadata.icc
    images.write_image(tmp_path / "out.tif", src.rgb, src, "tiff", metadata=src.metadata)
    img = pyexiv2.Image(str(tmp_path / "out.tif"))
    try:
        exif, icc = img.read_exif(), img.read_icc()
    finally:
        img.close()
    assert exif["Exif.Image.Make"] == "Canon" and exif["Exif.Image.Model"] == "Canon EOS Kiss X4"
    assert "Exif.Photo.ExposureTime" in exif
    assert ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip().startswith("sRGB")
