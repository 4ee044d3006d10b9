"""The calibrated PSF bank (--psf bank:PATH): format, interpolation, and its references."""

from pathlib import Path

import numpy as np
import pytest

from defocuskit import RenderSettings, render
from defocuskit.blur.psf import disc_kernel
from defocuskit.blur.shapes import gaussian_kernel, load_bank
from defocuskit.errors import ConfigError

EXAMPLE = Path(__file__).parents[1] / "samples" / "psf_bank_example.npz"


def _psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2))


def _image(h=48, w=64, seed=1):
    return np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)


def _save_bank(path, kernel_of, coc):
    ks = [kernel_of(c / 4.0) for c in coc]
    S = max(k.shape[0] for k in ks)
    out = np.zeros((len(ks), S, S), np.float32)
    for n, k in enumerate(ks):
        o = (S - k.shape[0]) // 2
        out[n, o:o + k.shape[0], o:o + k.shape[0]] = k
    np.savez(path, kernels=out, coc_px=np.asarray(coc, np.float64))
    return f"bank:{path}"


def _ramp(img, top=5.0):
    return np.tile(np.linspace(0.0, top, img.shape[1], dtype=np.float32), (img.shape[0], 1))


@pytest.mark.parametrize("mode", ["gather", "scatter"])
def test_bank_of_discs_reproduces_disc(tmp_path, mode):
    # CoC every 0.4 px (sigma every 0.1 px), interpolated linearly between: > 45 dB
    psf = _save_bank(tmp_path / "discs.npz", disc_kernel, np.arange(0.0, 20.01, 0.4))
    img = _image()
    sig = _ramp(img)
    got = render(img, sig, mode=mode, psf=psf)
    assert _psnr(got, render(img, sig, mode=mode, psf="disc")) > 45.0


def test_bank_of_gaussians_reproduces_gaussian_gather(tmp_path):
    psf = _save_bank(tmp_path / "gauss.npz", gaussian_kernel, np.arange(0.0, 20.01, 0.4))
    img = _image()
    for s in (0.0, 1.2, 3.6):  # on a stored level: the same kernel, to rounding
        sig = np.full(img.shape[:2], s, np.float32)
        np.testing.assert_allclose(render(img, sig, mode="gather", psf=psf),
                                   render(img, sig, mode="gather"), atol=1e-5)
    sig = _ramp(img)
    assert _psnr(render(img, sig, mode="gather", psf=psf), render(img, sig, mode="gather")) > 50


def test_interpolation_is_linear_between_levels(tmp_path):
    psf = _save_bank(tmp_path / "discs.npz", disc_kernel, [0.0, 4.0, 8.0])
    img = _image(24, 24)
    at = {s: render(img, np.full((24, 24), s, np.float32), mode="gather", psf=psf)
          for s in (1.0, 1.25, 2.0)}  # CoC 4, 5 (a quarter of the way to 8), 8
    np.testing.assert_allclose(at[1.25], 0.75 * at[1.0] + 0.25 * at[2.0], atol=1e-6)


def test_per_channel_bank(tmp_path):
    red, blue = disc_kernel(1.0), np.pad(disc_kernel(0.5), 1)
    k = np.stack([red, red, blue], axis=-1)[None]
    np.savez(tmp_path / "rgb.npz", kernels=k, coc_px=np.array([4.0]))
    img = _image(20, 20)
    sig = np.full((20, 20), 1.0, np.float32)
    out = render(img, sig, mode="gather", psf=f"bank:{tmp_path / 'rgb.npz'}")
    ref_r = render(img, sig, mode="gather", psf="disc")
    ref_b = render(img, np.full((20, 20), 0.5, np.float32), mode="gather", psf="disc")
    np.testing.assert_allclose(out[..., 0], ref_r[..., 0], atol=1e-6)
    np.testing.assert_allclose(out[..., 2], ref_b[..., 2], atol=1e-6)


def test_signed_bank_uses_the_front_kernels(tmp_path):
    # behind: light moves one pixel right; in front: one pixel down (stored at CoC -4)
    right = np.zeros((3, 3), np.float32)
    right[1, 2] = 1
    down = np.zeros((3, 3), np.float32)
    down[2, 1] = 1
    np.savez(tmp_path / "s.npz", kernels=np.stack([down, right]), coc_px=np.array([-4.0, 4.0]))
    img = _image(10, 10)
    sig = np.ones((10, 10), np.float32)
    psf = f"bank:{tmp_path / 's.npz'}"
    behind = render(img, sig, mode="gather", psf=psf, depth=np.full((10, 10), 3.0),
                    focus_distance=2.0)
    front = render(img, sig, mode="gather", psf=psf, depth=np.full((10, 10), 1.0),
                   focus_distance=2.0)
    np.testing.assert_array_equal(behind[:, 1:], img[:, :-1])
    np.testing.assert_array_equal(front[1:], img[:-1])


def test_example_bank_loads_and_renders():
    bank = load_bank(EXAMPLE)
    assert bank.signed and bank.kernels.shape[1] % 2 == 1
    np.testing.assert_allclose(bank.kernels.sum(axis=(1, 2)), 1.0, atol=1e-5)
    img = _image()
    out = render(img, _ramp(img), mode="scatter", psf=f"bank:{EXAMPLE}")
    assert out.shape == img.shape and np.isfinite(out).all()


@pytest.mark.parametrize("arrays,why", [
    ({"kernels": np.ones((2, 4, 4)), "coc_px": np.array([1.0, 2.0])}, "odd"),
    ({"kernels": -np.ones((1, 3, 3)), "coc_px": np.array([1.0])}, ">= 0"),
    ({"kernels": np.ones((2, 3, 3)), "coc_px": np.array([1.0])}, "coc_px has shape"),
    ({"kernels": np.ones((2, 3, 3))}, "not a bank"),
])
def test_bad_banks(tmp_path, arrays, why):
    np.savez(tmp_path / "b.npz", **arrays)
    with pytest.raises(ConfigError, match=why):
        load_bank(tmp_path / "b.npz")


def test_bank_refused_with_layered_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="gather or scatter"):
        RenderSettings(camera="2hded", focus="fixed:2", mode="layered", psf=f"bank:{EXAMPLE}")
    with pytest.raises(ConfigError, match="cannot read"):
        RenderSettings(camera="2hded", focus="fixed:2", mode="gather",
                       psf=f"bank:{tmp_path / 'none.npz'}")


def test_example_bank_is_what_its_script_makes():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_psf_bank",
                                                  EXAMPLE.with_name("make_psf_bank.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fresh = mod.example_bank()
    with np.load(EXAMPLE) as z:
        np.testing.assert_array_equal(z["coc_px"], fresh["coc_px"])
        np.testing.assert_allclose(z["kernels"], fresh["kernels"], atol=1e-6)
