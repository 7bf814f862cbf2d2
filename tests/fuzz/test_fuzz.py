"""A short fuzzing pass in the suite (issue 36 item 6; the harness and its long run: tests/fuzz/harness.py)."""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from typer.testing import CliRunner

from sdap_cli.cli import app
from tests.fuzz.harness import SUFFIXES, mutate, options_target, read_target, seeds
from tests.helpers import noisy_rgb, write_png

SEEDS = seeds()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 4096), st.binary(max_size=8)), max_size=5),
       st.sampled_from(SUFFIXES), st.integers(0, 48))
def test_reading_mutated_files_gives_an_image_or_one_line(seed, edits, suffix, cut):
    assert read_target(mutate(seed[1], edits, cut), suffix) in ("image", "error")


@pytest.mark.parametrize("suffix,data", SEEDS)
def test_the_seeds_are_read(suffix, data):
    assert read_target(data, suffix) == "image"


WORDS = st.sampled_from(["--tile", "--tile-overlap", "--precision", "--strength", "--pd", "--refine", "--format",
                         "--quality", "--shard", "--model", "--suffix", "--auto", "--no-auto", "-r", "--json",
                         "-1", "0", "1", "7", "1e9", "nan", "inf", "bf16", "fp8", "none", "e", "r3", "png", "jpg",
                         "1/2", "3/2", "0/0", "x", "", "--", "-", "--weights", "/nonexistent"])


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
@given(st.lists(WORDS, max_size=4))
def test_fuzzed_options_exit_0_1_or_2_without_a_traceback(tmp_path_factory, words):
    d = tmp_path_factory.mktemp("o")
    image = write_png(d / "a.png", noisy_rgb(24, 20))
    before = image.read_bytes()
    options_target(words, image, d / "out")
    assert image.read_bytes() == before


FINDINGS = sorted((Path(__file__).parent / "findings").iterdir())


@pytest.mark.parametrize("path", FINDINGS, ids=lambda p: p.name)
def test_files_the_long_run_found_are_read_or_refused_in_one_line(path, tmp_path):
    """What the long run found (2026-12-06, 5.2 M reads): mutated TIFFs that OpenCV decodes to 32-bit integer
    samples (cvtColor raised cv2.error: now one line, 'unsupported sample type uint32'), as sdap denoise sees
    them: exit 1, one error line, no traceback. (A third, a header of 65118 x 45575 pixels, was the harness's
    own float copy of a decodable image, not a fault of sdap: the harness no longer copies.)"""
    assert read_target(path.read_bytes(), path.suffix) == "error"
    r = CliRunner().invoke(app, ["denoise", str(path), "-o", str(tmp_path / "out"), "--device", "cpu"])
    assert r.exit_code == 1 and "Traceback" not in r.output and "unexpected" not in r.output.lower(), r.output
    assert "unsupported sample type uint32" in r.output
