"""A PSF bank as a folder of 16-bit PNGs plus index.json: the same bank as its .npz."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from defocuskit import render
from defocuskit.blur.bank_png import write_png_bank
from defocuskit.blur.shapes import load_bank
from defocuskit.errors import ConfigError

EXAMPLE = Path(__file__).parents[1] / "samples" / "psf_bank_example.npz"


def _rgb_npz(path):
    """A three-channel bank: each channel a differently sized disc-like blob, one CoC
    value per kernel (unsigned: the front side is mirrored)."""
    yy, xx = np.mgrid[-7:8, -7:8]
    ks = []
    for r in (1.5, 3.0, 5.5):
        ch = [np.clip(r * s + 0.5 - np.hypot(yy, xx + 0.7 * s), 0, 1) for s in (0.8, 1.0, 1.2)]
        ks.append(np.stack(ch, axis=-1))
    np.savez(path, kernels=np.asarray(ks), coc_px=np.array([3.0, 6.0, 11.0]))
    return path


@pytest.mark.parametrize("make", ["example", "rgb"])
def test_png_folder_equals_its_npz(tmp_path, make):
    npz = EXAMPLE if make == "example" else _rgb_npz(tmp_path / "rgb.npz")
    write_png_bank(npz, tmp_path / "bank")
    a, b = load_bank(npz), load_bank(tmp_path / "bank")
    np.testing.assert_array_equal(a.coc_px, b.coc_px)
    assert a.kernels.shape == b.kernels.shape and a.signed == b.signed
    # 16-bit quantisation: relative to each kernel's (channel's) largest tap, every tap
    # within half a step of the 16 bits (plus float32 rounding)
    def peak_scaled(k):
        return k / k.max(axis=(1, 2), keepdims=True)

    assert np.abs(peak_scaled(a.kernels) - peak_scaled(b.kernels)).max() <= 0.5 / 65535 + 1e-6
    assert np.abs(a.kernels - b.kernels).max() > 0  # really read from the PNGs
    img = np.random.default_rng(0).random((40, 52, 3)).astype(np.float32)
    depth = np.tile(np.linspace(0.8, 5.0, 52), (40, 1))
    sigma = (3.0 * np.abs(depth - 2.0) / depth).astype(np.float32)
    ra = render(img, sigma, mode="gather", psf=f"bank:{npz}", depth=depth, focus_distance=2.0)
    rb = render(img, sigma, mode="gather", psf=f"bank:{tmp_path / 'bank'}", depth=depth,
                focus_distance=2.0)
    np.testing.assert_allclose(ra, rb, atol=1e-4)
    prov = b.provenance()
    assert prov["n_kernels"] == len(a.coc_px) and len(prov["sha256"]) == 64


def test_png_values_and_index(tmp_path):
    index = write_png_bank(EXAMPLE, tmp_path / "bank")
    meta = json.loads(index.read_text())
    with np.load(EXAMPLE) as z:
        raw, coc = z["kernels"], z["coc_px"]
    assert meta["coc_px"] == coc.tolist()
    png = cv2.imread(str(tmp_path / "bank" / meta["files"][2]), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint16 and png.max() == 65535
    np.testing.assert_array_equal(png, np.rint(raw[2] / raw[2].max() * 65535))


def test_bad_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="index.json"):
        load_bank(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "index.json").write_text(json.dumps({"coc_px": [1.0], "files": ["../x.png"]}))
    with pytest.raises(ConfigError, match="outside the bank folder"):
        load_bank(bad)
    (bad / "index.json").write_text(json.dumps({"coc_px": [1.0], "files": ["k.png"]}))
    cv2.imwrite(str(bad / "k.png"), np.ones((3, 3), np.uint8))
    with pytest.raises(ConfigError, match="not a 16-bit PNG"):
        load_bank(bad)
    with pytest.raises(FileExistsError):
        write_png_bank(EXAMPLE, bad)  # never writes into a folder that holds files
