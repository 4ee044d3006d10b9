"""`defocuskit deconvolve`: from an image + .npy sigma map and from a dataset sample."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from cli.defocuskit_cmd import main
from defocuskit import deconvolve, render

GOLDEN = Path(__file__).resolve().parent / "data" / "golden_v2.zarr"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def image_and_sigma(tmp_path):
    rng = np.random.default_rng(0)
    aif = (rng.random((40, 48, 3)) * 255).astype(np.uint8)
    sigma = np.full((40, 48), 1.5, np.float32)
    blurred = render(aif, sigma, mode="gather")
    img = tmp_path / "blurred.png"
    cv2.imwrite(str(img), blurred[..., ::-1])
    np.save(tmp_path / "sigma.npy", sigma)
    return img, tmp_path / "sigma.npy", blurred, sigma


def test_image_and_sigma_writes_the_library_result(image_and_sigma, tmp_path):
    img, sig, blurred, sigma = image_and_sigma
    out = tmp_path / "out.png"
    r = run("deconvolve", img, "--sigma", sig, "--output", out)
    assert r.exit_code == 0, r.output
    got = cv2.imread(str(out))[..., ::-1]
    np.testing.assert_array_equal(got, deconvolve(blurred, sigma))


def test_refuses_to_overwrite_without_flag(image_and_sigma, tmp_path):
    img, sig, _, _ = image_and_sigma
    out = tmp_path / "out.png"
    out.write_bytes(b"mine")
    r = run("deconvolve", img, "--sigma", sig, "--output", out)
    assert r.exit_code == 1 and "--overwrite" in r.output
    assert out.read_bytes() == b"mine"
    r = run("deconvolve", img, "--sigma", sig, "--output", out, "--overwrite")
    assert r.exit_code == 0 and out.read_bytes() != b"mine"


@pytest.mark.parametrize("extra,match", [
    ((), "needs --sigma"),
    (("--sigma", "nope.txt"), "expected a .npy"),
    (("--sample", "train/0", "--sigma", "SIG"), "takes no"),
])
def test_image_input_errors(image_and_sigma, tmp_path, extra, match):
    img, sig, _, _ = image_and_sigma
    extra = [str(sig) if a == "SIG" else a for a in extra]
    r = run("deconvolve", img, *extra, "--output", tmp_path / "o.png")
    assert r.exit_code != 0 and match in r.output


def test_sigma_of_wrong_size(image_and_sigma, tmp_path):
    img, _, _, _ = image_and_sigma
    np.save(tmp_path / "small.npy", np.ones((4, 4), np.float32))
    r = run("deconvolve", img, "--sigma", tmp_path / "small.npy", "--output", tmp_path / "o.png")
    assert r.exit_code == 1 and "expected float (H, W) = (40, 48)" in r.output


def test_dataset_sample(tmp_path):
    from defocuskit.store import open_dataset

    out = tmp_path / "ds.png"
    r = run("deconvolve", GOLDEN, "--sample", "train/1", "--output", out)
    assert r.exit_code == 0, r.output
    sp = open_dataset(GOLDEN)["train"]
    want = deconvolve(sp.read_array("defocused", 1), sp.read_array("sigma", 1))
    np.testing.assert_array_equal(cv2.imread(str(out))[..., ::-1], want)


@pytest.mark.parametrize("extra,match", [
    (("--sample", "nosuch/0"), "no split 'nosuch'"),
    (("--sample", "train"), "SPLIT/INDEX"),
    (("--sample", "train/99"), "not a usable sample"),
    (("--sigma", "x.npy"), "leave out --sigma"),
])
def test_dataset_errors(tmp_path, extra, match):
    r = run("deconvolve", GOLDEN, *extra, "--output", tmp_path / "o.png")
    assert r.exit_code == 1 and match in r.output, r.output


def test_output_inside_the_dataset_is_refused(tmp_path):
    import shutil

    ds = tmp_path / "copy.zarr"
    shutil.copytree(GOLDEN, ds)
    r = run("deconvolve", ds, "--output", ds / "x.png")
    assert r.exit_code == 1 and "inside the Zarr store" in r.output
